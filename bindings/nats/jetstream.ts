/**
 * JetStream (nats.js 2): the client a connection's `jetstream()` makes, and the consumers it hands
 * out. Publishing needs nothing here (`js.publish` publishes through the connection); a JetStream
 * message is recorded when its consumer's subscription delivers it (delivery.ts), and these wrappers
 * give that subscription its consumer and the caller the message's context:
 *
 * - `js.consumers.get(stream, name)`: the consumer's `consume()`, `fetch()` and `next()` (pull),
 *   which subscribe while they run: the subscription learns the consumer's durable name then; the
 *   messages' iterator, and `next()`'s message, hand each context on.
 * - the legacy API: `js.subscribe` (push, with queue groups), `js.pullSubscribe`, `js.fetch` and
 *   `js.pull`: the subscription's `info` names its consumer; iterators and `pull` hand contexts on.
 */
import { types } from 'node:util'
import { wrapMethod } from '../instrument/instrumentation.js'
import { read } from '../common/input.js'
import { handOverContexts, receiving, whileMaking, type NatsHooks } from './delivery.js'
import { fail } from './log.js'

// JetStream's objects are nats.js's shapes: `any` at this boundary, checked where read.
type AnyFn = (...args: any[]) => any
type Target = Record<string, any>

/** The JetStream clients and consumers instrumented already (process-wide: the automatic mode's copy of pathwise and the application's meet here). */
const CLAIMED = Symbol.for('pathwise.nats.jetstream')
const claimed = ((globalThis as Record<symbol, unknown>)[CLAIMED] ??= new WeakSet<object>()) as WeakSet<object>

function claim(target: unknown): target is Target {
  if (target === null || typeof target !== 'object' || claimed.has(target)) return false
  claimed.add(target)
  return true
}

/** Instruments a JetStream client (`nc.jetstream()`); never throws. */
export function instrumentJetStream(js: unknown, hooks: NatsHooks): void {
  try {
    if (!claim(js)) return
    const consumers = read(js, 'consumers')
    if (claim(consumers)) {
      wrapMethod(consumers, 'get', (get: AnyFn) =>
        function (this: unknown, ...args: unknown[]) {
          const result = get.apply(this, args)
          return hooks.active() ? thenInstrument(result, (consumer) => instrumentConsumer(consumer, hooks)) : result
        },
      )
    }
    for (const method of ['subscribe', 'pullSubscribe'] as const) {
      wrapMethod(js, method, (subscribe: AnyFn) =>
        function (this: unknown, ...args: unknown[]) {
          const result = subscribe.apply(this, args)
          return hooks.active() ? thenInstrument(result, (sub) => handOverContexts(hooks, sub)) : result
        },
      )
    }
    wrapMethod(js, 'fetch', (fetch: AnyFn) =>
      function (this: unknown, stream: unknown, durable: unknown, ...rest: unknown[]) {
        if (!hooks.active()) return fetch.call(this, stream, durable, ...rest)
        const messages = whileMaking(nameOf(durable), () => fetch.call(this, stream, durable, ...rest))
        handOverContexts(hooks, messages)
        return messages
      },
    )
    wrapMethod(js, 'pull', (pull: AnyFn) =>
      function (this: unknown, stream: unknown, durable: unknown, ...rest: unknown[]) {
        if (!hooks.active()) return pull.call(this, stream, durable, ...rest)
        return receiving(hooks, () => whileMaking(nameOf(durable), () => pull.call(this, stream, durable, ...rest)), (message) => message)
      },
    )
  } catch (err) {
    fail('instrument jetstream', err)
  }
}

/** A consumer of `js.consumers.get`: a durable's, an ephemeral's or an ordered one's. */
function instrumentConsumer(consumer: unknown, hooks: NatsHooks): void {
  if (!claim(consumer)) return
  // The ConsumerInfo nats.js fetched to make it (no round trip of pathwise's); ordered consumers have none.
  const durable = nameOf(read(read(read(consumer, '_info'), 'config'), 'durable_name'))
  for (const method of ['consume', 'fetch'] as const) {
    wrapMethod(consumer, method, (make: AnyFn) =>
      function (this: unknown, ...args: unknown[]) {
        if (!hooks.active()) return make.apply(this, args)
        const result = whileMaking(durable, () => make.apply(this, args))
        return thenInstrument(result, (messages) => handOverContexts(hooks, messages))
      },
    )
  }
  wrapMethod(consumer, 'next', (next: AnyFn) =>
    function (this: unknown, ...args: unknown[]) {
      if (!hooks.active()) return next.apply(this, args)
      return receiving(hooks, () => whileMaking(durable, () => next.apply(this, args)), (message) => message)
    },
  )
}

function nameOf(value: unknown): string {
  return typeof value === 'string' ? value : ''
}

/** Runs `instrument` on what a promise resolves to, and resolves to it unchanged; anything else is returned as it is. */
function thenInstrument(result: unknown, instrument: (value: unknown) => void): unknown {
  if (!types.isPromise(result)) return result
  try {
    return Promise.prototype.then.call(result, (value: unknown) => {
      try {
        instrument(value)
      } catch (err) {
        fail('instrument jetstream', err)
      }
      return value
    })
  } catch (err) {
    fail('instrument jetstream', err)
    return result
  }
}
