/**
 * amqplib 2.x (AMQP 0-9-1): the wrappers of amqplib-channel.ts on the channels of one module,
 * connection or channel (instrumentAmqplib), or on amqplib's classes (the automatic mode).
 */
import type { DataStreams } from '../api/data-streams.js'
import { undoAll, withOffSwitch, wrapMethod, type Instrumentation } from '../instrument/instrumentation.js'
import { classPrototype, read } from '../common/input.js'
import { wrapPublish, wrapReceive, type ChannelHooks } from './amqplib-channel.js'
import { claim, isClaimed } from './claims.js'
import { fail } from './log.js'

// amqplib's objects: `any` at this boundary, checked where read.
type AnyFn = (...args: any[]) => any

/**
 * Instruments what amqplib hands out from `target`: the module (`import amqplib from 'amqplib'`,
 * `require('amqplib')` or `'amqplib/callback_api'`: the connections `connect` makes from now
 * on), a connection (the channels it creates from now on, confirm channels too), or a channel.
 * Returns the undo: the methods it wrapped are restored, and the channels instrumented meanwhile
 * pass everything through. With DSM disabled nothing is changed.
 */
export function instrumentAmqplib(target: object, dsm: DataStreams): () => void {
  return withOffSwitch(dsm, (dsm, active) => {
    const hooks: ChannelHooks = { dsm, active, standAside: () => false }
    try {
      return instrumentTarget(target, hooks)
    } catch (err) {
      fail('instrument', err)
      return () => {}
    }
  })
}

function instrumentTarget(target: unknown, hooks: ChannelHooks): () => void {
  if (target === null || typeof target !== 'object' || !claim(target)) return () => {}
  if (typeof read(target, 'sendMessage') === 'function') return undoAll([wrapPublish(target, hooks), wrapReceive(target, hooks)])
  const methods = target as Record<string, AnyFn>
  if (typeof read(target, 'createChannel') === 'function') {
    const instrumentChannel = (channel: unknown) => void instrumentTarget(channel, hooks)
    return undoAll([onCreate(methods, 'createChannel', hooks, instrumentChannel), onCreate(methods, 'createConfirmChannel', hooks, instrumentChannel)])
  }
  return onCreate(methods, 'connect', hooks, (connection) => void instrumentTarget(connection, hooks))
}

/**
 * Wraps a method that makes a connection or a channel, in every shape amqplib has: a promise of
 * it, the object itself (the callback API's createChannel), or a callback given it.
 */
function onCreate(target: Record<string, AnyFn>, name: string, hooks: ChannelHooks, instrument: (made: unknown) => void): () => void {
  const safely = (made: unknown) => {
    try {
      if (hooks.active() && made !== null && typeof made === 'object') instrument(made)
    } catch (err) {
      fail(`instrument ${name}`, err)
    }
  }
  return wrapMethod(target, name, (create) =>
    function (this: unknown) {
      const args = Array.prototype.slice.call(arguments) as unknown[]
      if (!hooks.active()) return create.apply(this, args)
      const at = lastFunction(args)
      if (at >= 0) {
        const callback = args[at] as AnyFn
        args[at] = function (this: unknown, err: unknown, made: unknown) {
          if (err === null || err === undefined) safely(made)
          return Reflect.apply(callback, this, arguments)
        }
      }
      const result = create.apply(this, args)
      if (typeof read(result, 'then') === 'function') (result as Promise<unknown>).then(safely, () => {})
      else safely(result)
      return result
    },
  )
}

function lastFunction(args: unknown[]): number {
  for (let i = args.length - 1; i >= 0; i--) if (typeof args[i] === 'function') return i
  return -1
}

/** The class wrappers stand aside for channels instrumented explicitly (claims.ts). */
function classHooks(dsm: DataStreams, active: () => boolean): ChannelHooks {
  return { dsm, active, standAside: isClaimed }
}

const AMQPLIB_VERSIONS = '>=2.0.0 <3'

/** The automatic mode, publishing: lib/channel.js's Channel, the base of both APIs' channels. */
export const amqplibPublishInstrumentation: Instrumentation = {
  module: 'amqplib/lib/channel',
  supportedVersions: AMQPLIB_VERSIONS,
  patch(exports, dsm) {
    const proto = classPrototype(exports, 'Channel')
    return proto === undefined ? () => {} : withOffSwitch(dsm, (dsm, active) => wrapPublish(proto, classHooks(dsm, active)))
  },
}

/** The automatic mode, consuming: the Channel of the promise API and of the callback API (their confirm channels inherit it). */
export const amqplibReceiveInstrumentations: Instrumentation[] = ['amqplib/lib/channel_model', 'amqplib/lib/callback_model'].map((module) => ({
  module,
  supportedVersions: AMQPLIB_VERSIONS,
  patch(exports, dsm) {
    const proto = classPrototype(exports, 'Channel')
    return proto === undefined ? () => {} : withOffSwitch(dsm, (dsm, active) => wrapReceive(proto, classHooks(dsm, active)))
  },
}))
