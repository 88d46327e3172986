/**
 * The journey of an AMQP 0-9-1 message through an amqplib channel (the promise and the callback
 * API share these wrappers; amqplib.ts puts them on a channel, or on the classes):
 *
 * - Publish: `sendMessage`, which `publish`, `sendToQueue` and confirm channels all end in, records a
 *   produce checkpoint (dd-trace's tags: `topic:<queue>` to the default exchange, else
 *   `exchange:<name>`) and adds the `dd-pathway-ctx-base64` header to the header table amqplib made
 *   for this publish (a fresh object whose prototype is the caller's headers: the caller's object
 *   is never touched). Where the header would not fit (the table's 64 KiB encoding buffer, the
 *   connection's frame_max) the message goes without it; where amqplib refuses the table anyway,
 *   the message goes again as the application sent it; both are counted as contexts left out.
 *   A publish that throws after its checkpoint (a closed connection) counts as a failed send, and
 *   what amqplib throws is the application's.
 * - Consume: the callback given to `consume` records a consume checkpoint per delivery (parent:
 *   the header, or the AMQP 1.0 sections of carriers.ts; none: a new pathway) and runs with that
 *   message's context current, so concurrent handlers (prefetch > 1, async) each keep their own.
 * - Get: `get` records one per message it returns. Its callback (callback API) runs with the
 *   message's context; a promise's caller links by received-messages.ts's rule, or `withMessageContext`.
 * - Queue depth: what the broker already says, at no extra round trip: `get`'s messageCount (the
 *   messages left after this one; an empty get, 0) and the messageCount of `assertQueue` and
 *   `checkQueue` replies: the messages ready for delivery (not those delivered and unacknowledged),
 *   as `queue_depth` backlogs (`queue_type:rabbitmq`, `state:ready`), which the agent shows as lag.
 */
import { Buffer } from 'node:buffer'
import type { PathwayContext } from '../pathway/context.js'
import { PATHWAY_KEY, encodePathwayContext } from '../pathway/context.js'
import type { CheckpointNode, DataStreams } from '../api/data-streams.js'
import { undoAll, wrapMethod } from '../instrument/instrumentation.js'
import { beginReceive, parentForSend, rememberMessageContext } from '../instrument/received-messages.js'
import { contextsLeftOut, sendsFailed } from '../instrument/send-outcomes.js'
import { isRecord, read } from '../common/input.js'
import { headersContext } from './carriers.js'
import { PATHWAY_ENTRY_BYTES, PublishNodes, TYPE, bytesOf, consumeNodes, recordChain } from './edges.js'
import { fail } from './log.js'

// Channels are amqplib's shapes: `any` at this boundary, checked where read.
type AnyFn = (...args: any[]) => any

/** What the wrappers need: the DataStreams, and whether to act on a call. */
export interface ChannelHooks {
  dsm: DataStreams
  /** False once the instrumentation is undone: the wrappers then pass everything through. */
  active(): boolean
  /** True for a channel another instrumentation holds (the class wrappers leave explicitly instrumented channels to theirs). */
  standAside(channel: unknown): boolean
}

/** Wraps `sendMessage` (on a channel, or on lib/channel.js's Channel class). Returns the undo. */
export function wrapPublish(target: object, hooks: ChannelHooks): () => void {
  const { dsm } = hooks
  const nodes = new PublishNodes(dsm)
  return wrapMethod(target as Record<string, AnyFn>, 'sendMessage', (sendMessage) =>
    function (this: unknown, fields: unknown, properties: unknown) {
      const args = arguments as unknown as unknown[]
      if (!hooks.active() || hooks.standAside(this)) return sendMessage.apply(this, args)
      let publish: Publish | undefined
      try {
        publish = publishCheckpoint(dsm, nodes, this, fields, properties, args[2])
      } catch (err) {
        fail('publish', err)
      }
      try {
        return sendMessage.apply(this, args)
      } catch (err) {
        // amqplib encodes the header table before it writes anything: refused with ours, the message goes again as the application made it.
        const table = publish?.table
        if (table !== undefined && err instanceof RangeError && delete table[PATHWAY_KEY]) {
          contextsLeftOut(dsm, 1, publish!.destination, 'amqplib refused the header table with the pathway header')
          return sendMessage.apply(this, args)
        }
        // Checkpointed, then not sent (a connection closed under the channel): counted, and amqplib's error is the application's.
        if (publish !== undefined) sendsFailed(dsm, publish.node, 1)
        throw err
      }
    },
  )
}

/** A publish pathwise checkpointed: where to, and the header table it added the context to, if it did. */
interface Publish {
  node: CheckpointNode
  destination: string
  table?: Record<string, unknown>
}

/** The produce checkpoint of one publish. */
function publishCheckpoint(
  dsm: DataStreams,
  nodes: PublishNodes,
  channel: unknown,
  fields: unknown,
  properties: unknown,
  content: unknown,
): Publish | undefined {
  const exchange = read(fields, 'exchange')
  const routingKey = read(fields, 'routingKey')
  // Anything else makes amqplib throw the application's own error: nothing to record.
  if (typeof exchange !== 'string' || !(routingKey === undefined || routingKey === null || typeof routingKey === 'string') || !Buffer.isBuffer(content)) return undefined
  const node = nodes.get(exchange, routingKey ?? undefined)
  if (node === null) return undefined
  const headers = read(properties, 'headers')
  // A table is a record: binary data or an array (whose every index amqplib would encode as a key) gets no context.
  const table = isRecord(headers) ? (headers as Record<string, unknown>) : undefined
  const footprint = tableFootprint(table)
  // A table that cannot be read makes amqplib throw the application's error: nothing to record.
  if (footprint === null) return undefined
  const destination = exchange === '' && typeof routingKey === 'string' ? `RabbitMQ queue ${routingKey}` : `RabbitMQ exchange ${exchange}`
  const room = table !== undefined && fits(channel, properties, footprint.encoded)
  const add = room && Object.isExtensible(table)
  const size = bytesOf(content) + footprint.bytes + (add ? PATHWAY_ENTRY_BYTES : 0)
  const ctx = dsm.setCheckpoint(node, parentForSend(dsm), size)
  if (ctx === null) return undefined
  if (table !== undefined && !room) contextsLeftOut(dsm, 1, destination, "the header would have pushed the message's properties past the connection's frame_max or amqplib's 64 KiB header buffer")
  if (!add) return { node, destination }
  // An own property of amqplib's table, shadowing any the caller's headers forward; defined, so that a setter up the chain is not run.
  Object.defineProperty(table, PATHWAY_KEY, { value: encodePathwayContext(ctx), enumerable: true, writable: true, configurable: true })
  return { node, destination, table }
}

/** RabbitMQ's name for what messageCount counts: messages ready for delivery. */
const READY = 'ready'

/** amqplib encodes header tables into a buffer of this many bytes (lib/defs.js's SCRATCH). */
const TABLE_BUFFER = 65_536
/** The protocol's smallest frame_max, which every broker takes: assumed when the connection's cannot be read. */
const FRAME_MIN = 4096
/** The pathway entry in a table: key length, key, type, value length, and a value of at most 36 characters. */
const ENTRY_ENCODED = 1 + PATHWAY_KEY.length + 1 + 4 + 36
/** A properties frame beside its table: frame header and end (8), class, weight, body size, flags (14), deliveryMode, priority, timestamp (10). */
const FRAME_FIXED = 32
/** The short-string properties of a publish, each encoded as a length byte and at most 255 bytes. */
const SHORT_STRINGS = ['contentType', 'contentEncoding', 'correlationId', 'replyTo', 'expiration', 'messageId', 'type', 'userId', 'appId', 'clusterId'] as const

/** Whether the table with the pathway entry still fits amqplib's buffer and the connection's frame_max. */
function fits(channel: unknown, properties: unknown, tableBytes: number): boolean {
  const frameMax = read(read(channel, 'connection'), 'frameMax')
  const limit = typeof frameMax === 'number' && frameMax >= FRAME_MIN ? frameMax : FRAME_MIN
  const table = tableBytes + ENTRY_ENCODED
  if (table > TABLE_BUFFER) return false
  // Most publishes: even with every short string at its longest, the frame fits.
  if (table + FRAME_FIXED + SHORT_STRINGS.length * 256 <= limit) return true
  let frame = table + FRAME_FIXED
  for (const name of SHORT_STRINGS) {
    const value = read(properties, name)
    if (typeof value === 'string') frame += 1 + Buffer.byteLength(value)
  }
  return frame <= limit
}

/** A header table's bytes as a payload size counts them, and an upper bound of its AMQP encoding. */
interface Footprint {
  bytes: number
  encoded: number
}

const MAX_PARTS = 10_000
const MAX_DEPTH = 8

/**
 * Both in one pass, which reads each entry once (amqplib encodes the table's enumerable keys,
 * inherited ones included, whose value is not undefined). The bound is Infinity for a table too
 * big or deep to walk: the pathway entry is then not added. Null for a table that cannot be read.
 */
function tableFootprint(table: Record<string, unknown> | undefined): Footprint | null {
  if (table === undefined) return { bytes: 0, encoded: 0 }
  const budget = { parts: MAX_PARTS }
  let bytes = 0
  let encoded = 4
  try {
    // Inheriting binary data or an array (a publish's `headers: buffer`): its every index is a key, too many to walk.
    if (!recordChain(table)) return { bytes: 0, encoded: Infinity }
    for (const key in table) {
      const value = table[key]
      if (value === undefined) continue
      const keyBytes = Buffer.byteLength(key)
      bytes += keyBytes + bytesOf(value)
      encoded += 1 + keyBytes + valueBound(value, 0, budget)
      if (encoded === Infinity) break
    }
  } catch {
    return null
  }
  return { bytes, encoded }
}

/** Length prefix, then per entry: key length byte, key, value. */
function tableBound(table: object, depth: number, budget: { parts: number }): number {
  let n = 4
  for (const key in table) {
    const value = (table as Record<string, unknown>)[key]
    if (value !== undefined) n += 1 + Buffer.byteLength(key) + valueBound(value, depth, budget)
    if (n === Infinity) break
  }
  return n
}

/** A value's type byte and its encoding at most: a number or date 8 bytes, a string or buffer its length and bytes, an array or table its parts. */
function valueBound(value: unknown, depth: number, budget: { parts: number }): number {
  if (--budget.parts < 0 || depth > MAX_DEPTH) return Infinity
  if (typeof value === 'string') return 5 + Buffer.byteLength(value)
  if (value === null || typeof value !== 'object') return 9
  if (ArrayBuffer.isView(value)) return 5 + value.byteLength
  if (value instanceof Date) return 9
  if (Array.isArray(value)) {
    // Walked while the budget lasts: a sparse array of 2^32 - 1 holes must not be.
    let n = 5
    for (let i = 0; i < value.length && n !== Infinity; i++) n += valueBound(value[i], depth + 1, budget)
    return n
  }
  // amqplib's typed value, { '!': type, value }: at most a string's or a number's encoding.
  if (Object.prototype.hasOwnProperty.call(value, '!')) return 9 + valueBound(read(value, 'value'), depth + 1, budget)
  return 1 + tableBound(value, depth + 1, budget)
}

/** Wraps `consume`, `get`, `assertQueue` and `checkQueue` (on a channel, or on a model's Channel class). Returns the undo. */
export function wrapReceive(target: object, hooks: ChannelHooks): () => void {
  const { dsm } = hooks
  const nodes = consumeNodes(dsm)
  const methods = target as Record<string, AnyFn>

  /** The consume checkpoint of one message; its context, remembered on the message. */
  const checkpoint = (queue: unknown, message: unknown): PathwayContext | null => {
    if (message === null || typeof message !== 'object') return null
    // dd-trace's name: the queue consumed from, else the routing key the message was published with.
    const name = typeof queue === 'string' && queue !== '' ? queue : read(read(message, 'fields'), 'routingKey')
    if (typeof name !== 'string') return null
    const node = nodes.get(name)
    if (node === null) return null
    const headers = read(read(message, 'properties'), 'headers')
    const ctx = dsm.setCheckpoint(node, headersContext(headers), bytesOf(read(message, 'content')) + bytesOf(headers))
    if (ctx !== null) rememberMessageContext(message, ctx)
    return ctx
  }

  /** The queue's depth from a reply's messageCount. */
  const depth = (queue: unknown, count: unknown): void => {
    if (typeof queue === 'string' && queue !== '' && typeof count === 'number') dsm.trackQueueDepth(TYPE, queue, READY, count)
  }

  /** A message `get` returned (false: the queue was empty): its checkpoint, and the depth it tells. */
  const got = (queue: unknown, message: unknown): PathwayContext | null => {
    try {
      if (message === false) {
        depth(queue, 0)
        return null
      }
      depth(queue, read(read(message, 'fields'), 'messageCount'))
      return checkpoint(queue, message)
    } catch (err) {
      fail('get', err)
      return null
    }
  }

  // The application's callbacks are called with Reflect.apply, as amqplib calls them: reading their `apply` could run a Proxy's trap.
  /** A delivery callback that records the message's checkpoint and runs with its context current. */
  const delivered = (queue: unknown, callback: AnyFn): AnyFn =>
    function (this: unknown, message: unknown) {
      if (!hooks.active()) return Reflect.apply(callback, this, arguments)
      let ctx: PathwayContext | null = null
      try {
        ctx = checkpoint(queue, message)
      } catch (err) {
        fail('consume', err)
      }
      const args = arguments as unknown as unknown[]
      return ctx === null ? Reflect.apply(callback, this, args) : dsm.runWithContext(ctx, () => Reflect.apply(callback, this, args))
    }

  /** `get`'s callback (the callback API): runs with the message's context current. */
  const gotByCallback = (queue: unknown, callback: AnyFn): AnyFn =>
    function (this: unknown, err: unknown, message: unknown) {
      const args = arguments as unknown as unknown[]
      const ctx = hooks.active() && err === null ? got(queue, message) : null
      return ctx === null ? Reflect.apply(callback, this, args) : dsm.runWithContext(ctx, () => Reflect.apply(callback, this, args))
    }

  /** A reply of assertQueue or checkQueue: `{ queue, messageCount, consumerCount }`. */
  const declared = (ok: unknown): void => {
    try {
      if (hooks.active()) depth(read(ok, 'queue'), read(ok, 'messageCount'))
    } catch (err) {
      fail('queue depth', err)
    }
  }

  const acting = (channel: unknown): boolean => hooks.active() && !hooks.standAside(channel)

  return undoAll([
    wrapMethod(methods, 'consume', (consume) =>
      function (this: unknown, queue: unknown, callback: unknown) {
        const args = Array.prototype.slice.call(arguments) as unknown[]
        if (acting(this) && typeof callback === 'function') args[1] = delivered(queue, callback as AnyFn)
        return consume.apply(this, args)
      },
    ),
    wrapMethod(methods, 'get', (get) =>
      function (this: unknown, queue: unknown) {
        const args = Array.prototype.slice.call(arguments) as unknown[]
        if (!acting(this)) return get.apply(this, args)
        if (typeof args[2] === 'function') {
          args[2] = gotByCallback(queue, args[2] as AnyFn)
          return get.apply(this, args)
        }
        // The promise API: the caller's flow takes the message's context by the receive rule.
        const handOff = beginReceive(dsm)
        const result = get.apply(this, args)
        // A reaction of its own, registered before the caller's await: it runs first, and the caller gets amqplib's promise.
        if (isThenable(result)) {
          result.then(
            (message: unknown) => {
              const ctx = got(queue, message)
              if (ctx !== null) handOff([ctx])
            },
            () => {},
          )
        }
        return result
      },
    ),
    ...(['assertQueue', 'checkQueue'] as const).map((name, i) =>
      wrapMethod(methods, name, (declare) =>
        function (this: unknown) {
          const args = Array.prototype.slice.call(arguments) as unknown[]
          if (!acting(this)) return declare.apply(this, args)
          // The callback API's callback: assertQueue(queue, options, cb), checkQueue(queue, cb).
          const at = i === 0 ? 2 : 1
          const callback = args[at]
          if (typeof callback === 'function') {
            args[at] = function (this: unknown, err: unknown, ok: unknown) {
              if (err === null) declared(ok)
              return Reflect.apply(callback as AnyFn, this, arguments)
            }
          }
          const result = declare.apply(this, args)
          if (isThenable(result)) result.then(declared, () => {})
          return result
        },
      ),
    ),
  ])
}

function isThenable(value: unknown): value is Promise<unknown> {
  return typeof read(value, 'then') === 'function'
}
