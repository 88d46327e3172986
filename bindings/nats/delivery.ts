/**
 * A NATS message delivered to a subscription, the consume side of its journey: one consume
 * checkpoint per message (`direction:in, topic:<the message's own subject>, type:nats`, with
 * `group:<queue group>` for a queue subscription, or `group:<durable consumer>` for a JetStream
 * message of a durable consumer, whose num_pending is then tracked). A callback runs with the
 * message's context current; an iterator hands each message's context on by the receive-then-send
 * rule (instrument/received-messages.ts). Skipped: replies and JetStream's own status messages (on
 * the connection's inbox subjects), heartbeats and flow control (a status code), NATS's `$` subjects.
 */
import { Buffer } from 'node:buffer'
import { types } from 'node:util'
import type { PathwayContext } from '../pathway/context.js'
import type { CheckpointNode, DataStreams } from '../api/data-streams.js'
import { TransportNodes, isLive } from '../instrument/transport-nodes.js'
import { beginReceive, contextOf, rememberMessageContext } from '../instrument/received-messages.js'
import { read, viewBytes } from '../common/input.js'
import { contextFromHeaders } from './headers.js'
import { fail } from './log.js'

/** What every wrapper of one instrumentation shares: its DataStreams, its off switch, its prepared nodes. */
export interface NatsHooks {
  dsm: DataStreams
  active(): boolean
  /** Produce nodes by subject. */
  out: TransportNodes<CheckpointNode | null>
  /** Consume nodes by group and subject. */
  in: TransportNodes<CheckpointNode | null>
}

export function natsHooks(dsm: DataStreams, active: () => boolean): NatsHooks {
  return {
    dsm,
    active,
    out: new TransportNodes((subject) => dsm.node(['direction:out', `topic:${subject}`, 'type:nats']), isLive),
    in: new TransportNodes((key) => {
      const cut = key.indexOf('\u0000')
      const group = key.slice(0, cut)
      const topic = `topic:${key.slice(cut + 1)}`
      return dsm.node(group === '' ? ['direction:in', topic, 'type:nats'] : ['direction:in', `group:${group}`, topic, 'type:nats'])
    }, isLive),
  }
}

/**
 * Whether a subject's messages are checkpointed: not the connection's inboxes (replies, and the
 * subjects JetStream answers pull requests on), not NATS's own `$` subjects (the JetStream API,
 * acks, key-value and object stores, the system account).
 */
export function isRecorded(subject: string, inboxPrefix: string): boolean {
  return subject.length > 0 && subject.charCodeAt(0) !== 36 /* $ */ && !(subject.startsWith(inboxPrefix) && subject.charCodeAt(inboxPrefix.length) === 46) /* . */
}

/** The inbox prefix of a connection (nats.js `inboxPrefix`, `_INBOX` by default). */
export function inboxPrefixOf(nc: unknown): string {
  const prefix = read(read(nc, 'options'), 'inboxPrefix')
  return typeof prefix === 'string' && prefix !== '' ? prefix : '_INBOX'
}

/**
 * The JetStream consumer whose subscription is being made right now, set around the synchronous
 * part of a consumer's `consume`, `fetch` and `next` (jetstream.ts): its messages arrive on an
 * inbox subscription that knows nothing of it. Its durable name, or '' for an ephemeral one.
 */
let making: string | undefined

export function whileMaking<T>(durable: string, make: () => T): T {
  const outer = making
  making = durable
  try {
    return make()
  } finally {
    making = outer
  }
}

/** A JetStream message's consumer and num_pending, from its ack subject. */
interface JetStreamInfo {
  stream: string
  consumer: string
  pending: number
}

/**
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`, or with
 * `<domain>.<account hash>.` after `$JS.ACK.` and a token after the pending count (servers ≥ 2.9
 * may send either). Undefined for anything else.
 */
export function jetStreamInfo(reply: string): JetStreamInfo | undefined {
  if (!reply.startsWith('$JS.ACK.')) return undefined
  const t = reply.split('.')
  const at = t.length === 9 ? 2 : t.length >= 12 ? 4 : -1
  if (at < 0) return undefined
  const pending = Number(t[at + 6])
  return Number.isSafeInteger(pending) && pending >= 0 ? { stream: t[at], consumer: t[at + 1], pending } : undefined
}

/** One subscription's deliveries. */
export class Delivery {
  /** The subscription, once made: a legacy JetStream subscription states its consumer in `info`. */
  sub: unknown
  private readonly consumer = making
  private readonly inboxPrefix: string
  private readonly queue: string

  constructor(
    private readonly hooks: NatsHooks,
    nc: unknown,
    queue: unknown,
  ) {
    this.inboxPrefix = inboxPrefixOf(nc)
    this.queue = typeof queue === 'string' ? queue : ''
  }

  /** The consume checkpoint of a delivered message; null for one that is not recorded. */
  checkpoint(msg: unknown): PathwayContext | null {
    const subject = read(msg, 'subject')
    if (typeof subject !== 'string' || !isRecorded(subject, this.inboxPrefix)) return null
    const headers = read(msg, 'headers')
    const code = read(headers, 'code')
    if (typeof code === 'number' && code > 0) return null
    const { dsm } = this.hooks
    let group = this.queue
    const reply = read(msg, 'reply')
    const js = typeof reply === 'string' ? jetStreamInfo(reply) : undefined
    if (js !== undefined) {
      // Only a durable consumer's name is a group: an ephemeral one's is new at every start.
      group = this.durable() === js.consumer ? js.consumer : ''
      if (group !== '') dsm.trackNatsPending(js.stream, group, js.pending)
    }
    const node = this.hooks.in.get(`${group}\u0000${subject}`)
    if (node === null) return null
    const ctx = dsm.setCheckpoint(node, contextFromHeaders(headers), sizeOf(msg, subject, reply))
    if (ctx !== null && msg !== null && typeof msg === 'object') rememberMessageContext(msg, ctx)
    return ctx
  }

  /** The durable consumer the subscription's JetStream messages come from; '' for an ephemeral one. */
  private durable(): string {
    if (this.consumer !== undefined) return this.consumer
    const durable = read(read(read(this.sub, 'info'), 'config'), 'durable_name')
    return typeof durable === 'string' ? durable : ''
  }

  /**
   * A subscription callback that records each message, then calls `callback`: with the message's
   * context current (`withContext`: the user's callback, or a JetStream consumer's that calls the
   * user's), or as it is (the callback that queues a message for an iterator).
   */
  wrapCallback(callback: (...args: unknown[]) => unknown, withContext: boolean): (...args: unknown[]) => unknown {
    const delivery = this
    return function (this: unknown, err: unknown, msg: unknown) {
      let ctx: PathwayContext | null = null
      if ((err === null || err === undefined) && delivery.hooks.active()) {
        try {
          ctx = delivery.checkpoint(msg)
        } catch (error) {
          fail('consume', error)
        }
      }
      if (ctx === null || !withContext) return callback.apply(this, arguments as unknown as unknown[])
      const args = arguments
      return delivery.hooks.dsm.runWithContext(ctx, () => callback.apply(this, args as unknown as unknown[]))
    }
  }
}

/**
 * data + headers of a delivered message: nats.js's `size()` (subject, reply, headers and data on
 * the wire) without the subject and reply; the data alone where there is no `size()`.
 */
function sizeOf(msg: unknown, subject: string, reply: unknown): number {
  const size = read(msg, 'size')
  if (typeof size === 'function') {
    try {
      const n: unknown = size.call(msg)
      if (typeof n === 'number' && n >= 0) return Math.max(0, n - subject.length - (typeof reply === 'string' ? reply.length : 0))
    } catch {
      // a stand-in message: its data is counted
    }
  }
  const data = read(msg, 'data')
  return ArrayBuffer.isView(data) ? viewBytes(data) : typeof data === 'string' ? Buffer.byteLength(data) : 0
}

/**
 * Makes the iterator of `iterable` (a subscription, a consumer's messages) hand each message's
 * context on: a send after `await` of the loop's next message links to it, as after an SQS
 * receive. The iterable keeps its own iterator; pathwise's passes its results through unchanged.
 */
export function handOverContexts(hooks: NatsHooks, iterable: unknown): void {
  if (iterable === null || typeof iterable !== 'object') return
  const iterate = read(iterable, Symbol.asyncIterator)
  if (typeof iterate !== 'function') return
  try {
    Object.defineProperty(iterable, Symbol.asyncIterator, {
      configurable: true,
      writable: true,
      value(this: unknown) {
        const iterator: unknown = iterate.call(this)
        return hooks.active() ? handingOver(hooks, iterator) : iterator
      },
    })
  } catch (err) {
    fail('iterator', err)
  }
}

function handingOver(hooks: NatsHooks, iterator: unknown): unknown {
  const next = read(iterator, 'next')
  if (typeof next !== 'function') return iterator
  const passOn = (name: 'return' | 'throw') =>
    function (this: unknown, ...args: unknown[]) {
      const method = read(iterator, name)
      return typeof method === 'function' ? method.apply(iterator, args) : Promise.resolve({ value: args[0], done: true })
    }
  return {
    next(...args: unknown[]) {
      return receiving(hooks, () => next.apply(iterator, args), (result) => (read(result, 'done') === true ? undefined : read(result, 'value')))
    },
    return: passOn('return'),
    throw: passOn('throw'),
    [Symbol.asyncIterator]() {
      return this
    },
  }
}

/**
 * A receive the caller awaits (an iterator's next message, a consumer's `next()`): entered in the
 * caller's flow now, handed the context of the message `messageOf(result)` once it arrives. The
 * caller gets the client's own result.
 */
export function receiving<T>(hooks: NatsHooks, receive: () => T, messageOf: (result: unknown) => unknown): T {
  let handOff: ((ctxs: readonly PathwayContext[]) => void) | undefined
  try {
    if (hooks.active()) handOff = beginReceive(hooks.dsm)
  } catch (err) {
    fail('receive', err)
  }
  const result = receive()
  if (handOff === undefined || !types.isPromise(result)) return result
  const hand = handOff
  try {
    return Promise.prototype.then.call(result, (value) => {
      try {
        const message = messageOf(value)
        const ctx = message !== null && typeof message === 'object' ? contextOf(message) : undefined
        if (ctx !== undefined) hand([ctx])
      } catch (err) {
        fail('receive', err)
      }
      return value
    }) as T
  } catch (err) {
    fail('receive', err)
    return result
  }
}

