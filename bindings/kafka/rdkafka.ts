/**
 * The node-rdkafka-style API of @confluentinc/kafka-javascript, the whole journey of a message:
 *
 * - Produce: `Producer#produce(topic, partition, value, key, timestamp, opaque, headers)` records
 *   a produce checkpoint and appends the pathway header to a copy of the headers list. With
 *   delivery reports on (`dr_cb` / `dr_msg_cb`), each report's offset is a `kafka_produce`
 *   backlog, and a report that the broker refused the headers makes pathwise produce the
 *   caller's own message once more (the application sees only that second report).
 * - Consume: in flowing (`consume()`) and non-flowing (`consume(n, cb)`) mode alike, every
 *   message passes through a 'data' event: there pathwise records the consume checkpoint and
 *   runs the listeners with the message's context current; the `consume` callback runs with the
 *   context of its (first) message (see message-context.ts).
 * - Commit: librdkafka reports every commit, automatic or not, to an `offset_commit_cb`. When the
 *   application set none, pathwise adds its own at `connect()` (it emits nothing); otherwise it
 *   reads the 'offset.commit' events. Either way: `kafka_commit` backlogs, and the committed
 *   partitions' high watermarks (watermarks.ts).
 * - The binding does not expose the cluster id: no `kafka_cluster_id` tag.
 *
 * The KafkaJS-compatible API drives internal clients of these same classes; confluent.ts marks
 * them, and the wrappers here leave them alone.
 */
import { encodePathwayContext, type PathwayContext } from '../pathway/context.js'
import type { DataStreams } from '../api/data-streams.js'
import { undoAll, wrapMethod } from '../instrument/instrumentation.js'
import { PATHWAY_HEADER_BYTES, TopicNodes, bytesOf, headerListSize } from './edges.js'
import { headerListWithPathway, pathwayFromHeaderList } from './headers.js'
import { headerInjectionOn, headersRefused, isHeaderRejection, setHeaderInjection } from './injection.js'
import { isClaimed } from './claims.js'
import { trackCommittedWatermarks } from './watermarks.js'
import { fail, log } from './log.js'
import { noteProduce } from './message-context.js'
import { LIBRDKAFKA_MAX_MESSAGE_BYTES, PATHWAY_HEADER_WIRE, RECORD_OVERHEAD, RefusedSizes, isSizeRejection, maxMessageBytes, recordExtraBytes } from './size-limits.js'
import { contextsLeftOut, sendsFailed } from '../instrument/send-outcomes.js'
import { contextOf, rememberMessageContext } from '../instrument/received-messages.js'
import { classPrototype, items, numberOf, read } from '../common/input.js'

// Client objects are shapes of the binding: `any` at this boundary, checked where read.
type AnyFn = (...args: any[]) => any

const INTERNAL = Symbol.for('pathwise.kafka.internalClients')
const internal: WeakSet<object> = ((globalThis as Record<symbol, unknown>)[INTERNAL] ??= new WeakSet<object>()) as WeakSet<object>

/** A client that the KafkaJS-compatible API drives: instrumented at that level, not at this one. */
export function markInternal(client: object): void {
  internal.add(client)
}

/** Where the wrappers are installed: on the classes' prototypes (the automatic mode) or on one client. */
interface Target {
  /** Whether a client is left alone at this level. */
  standsAside(client: object): boolean
  active(): boolean
}

/**
 * The opaque pathwise gives librdkafka for a message it added a header to, while it cannot yet
 * tell whether the broker takes headers on that topic: what it needs to produce the message once
 * more without the header. The delivery report hands the caller's own opaque back.
 */
class PendingDelivery {
  constructor(
    /** Bytes of the message with its header (size-limits.ts's count). */
    readonly size: number,
    readonly topic: string,
    readonly partition: unknown,
    readonly message: unknown,
    readonly key: unknown,
    readonly timestamp: unknown,
    readonly opaque: unknown,
    readonly headers: unknown,
  ) {}
}

interface ProducerState {
  nodes: TopicNodes
  /**
   * Per topic, the largest message with the header its broker took: the header is then known to
   * pass, and only larger messages are kept for a resend (a broker may refuse them for their size).
   */
  confirmed: Map<string, number>
  refused: RefusedSizes
}

/**
 * Producer wrappers on `target` (Producer.prototype, or one producer). `produceName` is `produce`,
 * or `_oldProduce` on a HighLevelProducer, whose own `produce` has another signature and ends there.
 * `inject` is the header switch of each producer when first seen.
 */
function instrumentProducer(
  target: Record<string, any>,
  produceName: string,
  dsm: DataStreams,
  where: Target,
  inject: boolean,
): () => void {
  const states = new WeakMap<object, ProducerState>()
  const stateOf = (producer: unknown): ProducerState | null => {
    if (!where.active() || !isClient(producer) || where.standsAside(producer)) return null
    let state = states.get(producer)
    if (state === undefined) {
      state = { nodes: new TopicNodes(dsm), confirmed: new Map(), refused: new RefusedSizes() }
      states.set(producer, state)
      if (!inject) setHeaderInjection(producer, false)
    }
    return state
  }
  let produceRaw: AnyFn | undefined
  // Opaques pathwise swapped and has not handed back yet: the undo keeps the emit wrapper until
  // they are all back, so that no application sees a PendingDelivery.
  let pending = 0
  let undoWhenIdle = false

  /** The caller's own message produced once more, without the header the broker refused (its format, or the size it gave). */
  const resend = (producer: any, refused: PendingDelivery, err: unknown): boolean => {
    try {
      if (isHeaderRejection(err)) headersRefused(producer)
      else {
        stateOf(producer)?.refused.refused(refused.topic, refused.size)
        contextsLeftOut(dsm, 1, `Kafka topic ${refused.topic}`, REFUSED_FOR_SIZE)
      }
      const { topic, partition, message, key, timestamp, opaque, headers } = refused
      produceRaw!.call(producer, topic, partition, message, key, timestamp, opaque, headers)
      return true
    } catch (err) {
      fail('resend', err)
      return false
    }
  }

  const undoProduce = wrapMethod(target, produceName, (produce: AnyFn) => {
    produceRaw = produce
    return function (this: any, topic: unknown, partition: unknown, message: unknown, key: unknown, timestamp: unknown, opaque: unknown, headers: unknown) {
      const state = stateOf(this)
      if (state === null || typeof topic !== 'string') return produce.apply(this, arguments as unknown as unknown[])
      let args: unknown[] | undefined
      // Whether the opaque handed on is pathwise's (not an instanceof check: the caller's opaque may be a Proxy).
      let watched = false
      try {
        const node = state.nodes.get(topic)
        if (node !== null) {
          // Headers that are no list are the caller's to send as they are: no pathway header then.
          let injecting = headerInjectionOn(this) && (headers === undefined || headers === null || items(headers) !== undefined)
          const bare = bytesOf(message) + bytesOf(key) + headerListSize(headers)
          if (injecting) {
            const why = sizeLimitMet(this, state, topic, headers, bare)
            if (why !== undefined) {
              injecting = false
              contextsLeftOut(dsm, 1, `Kafka topic ${topic}`, why)
            }
          }
          const size = bare + (injecting ? PATHWAY_HEADER_BYTES : 0)
          noteProduce(dsm.currentContext())
          const ctx = dsm.setCheckpoint(node, undefined, size)
          const withPathway = injecting && ctx !== null ? headerListWithPathway(headers, encodePathwayContext(ctx)) : undefined
          if (withPathway !== undefined) {
            // Only with delivery reports on does librdkafka hand an opaque back (and release it).
            const watch = size > (state.confirmed.get(topic) ?? -1) && deliveryReportsOn(this)
            const sentOpaque = watch ? new PendingDelivery(size, topic, partition, message, key, timestamp, opaque, headers) : opaque
            args = [topic, partition, message, key, timestamp, sentOpaque, withPathway]
            if (watch) {
              pending++
              watched = true
            }
          } else if (ctx !== null) {
            args = arguments as unknown as unknown[]
          }
        }
      } catch (err) {
        fail('produce', err)
      }
      if (args === undefined) return produce.apply(this, arguments as unknown as unknown[])
      try {
        return produce.apply(this, args)
      } catch (err) {
        // Refused at once (a full queue): no report will hand this opaque back, and the checkpointed message is not sent.
        if (watched) pending--
        sendsFailed(dsm, state.nodes.get(topic), 1)
        throw err
      }
    }
  })

  const undoEmit = wrapMethod(target, 'emit', (emit: AnyFn) =>
    function (this: any, event: unknown, err: unknown, report: any) {
      if (event === 'delivery-report' && report !== null && typeof report === 'object') {
        try {
          const swapped = read(report, 'opaque')
          if (swapped instanceof PendingDelivery) {
            report.opaque = swapped.opaque
            if (--pending === 0 && undoWhenIdle) undoEmit()
            // The failed attempt's report is not the application's: the resend's report follows.
            if (err && (isHeaderRejection(err) || isSizeRejection(err)) && resend(this, swapped, err)) return this.listenerCount('delivery-report') > 0
          }
          const state = stateOf(this)
          const topic = read(report, 'topic')
          if (state !== null && typeof topic === 'string') {
            if (err) sendsFailed(dsm, state.nodes.get(topic), 1)
            else {
              if (swapped instanceof PendingDelivery) state.confirmed.set(topic, Math.max(swapped.size, state.confirmed.get(topic) ?? -1))
              dsm.trackKafkaProduce(topic, numberOf(read(report, 'partition')), read(report, 'offset') as number)
            }
          }
        } catch (e) {
          fail('delivery report', e)
        }
      }
      return emit.apply(this, arguments as unknown as unknown[])
    },
  )

  return () => {
    undoProduce()
    if (pending === 0) undoEmit()
    else undoWhenIdle = true
  }
}

const REFUSED_FOR_SIZE = 'the broker refused a message with the pathway header for its size (MESSAGE_TOO_LARGE): it was produced again without it'

/** How a size limit leaves the header out of this message, or undefined when none does (size-limits.ts). */
function sizeLimitMet(producer: unknown, state: ProducerState, topic: string, headers: unknown, bare: number): string | undefined {
  const max = maxMessageBytes(read(producer, 'globalConfig')) ?? LIBRDKAFKA_MAX_MESSAGE_BYTES
  // Far from the limit, the exact count (the headers' length varints) is not needed.
  if (bare + RECORD_OVERHEAD + PATHWAY_HEADER_WIRE + 64 > max && bare + recordExtraBytes(headers) + PATHWAY_HEADER_WIRE > max) {
    return `the header would have pushed a message past the producer's message.max.bytes (${max})`
  }
  const refusedAt = state.refused.at(topic)
  if (bare + PATHWAY_HEADER_BYTES >= refusedAt) return `a message to it as large with the pathway header (${refusedAt} bytes) was refused for its size before`
  return undefined
}

/** Only an object is a client: a call on anything else is handed on, for the client to refuse. */
function isClient(value: unknown): value is object {
  return value !== null && typeof value === 'object'
}

function deliveryReportsOn(producer: any): boolean {
  return typeof read(read(read(producer, '_cb_configs'), 'event'), 'delivery_cb') === 'function'
}

interface ConsumerState {
  nodes: TopicNodes
  group: string
}

/** KafkaConsumer wrappers on `target` (KafkaConsumer.prototype, or one consumer). */
function instrumentConsumer(target: Record<string, any>, dsm: DataStreams, where: Target): () => void {
  const states = new WeakMap<object, ConsumerState>()
  const stateOf = (consumer: unknown): ConsumerState | null => {
    if (!where.active() || !isClient(consumer) || where.standsAside(consumer)) return null
    let state = states.get(consumer)
    if (state === undefined) {
      const group = read(read(consumer, 'globalConfig'), 'group.id')
      state = { nodes: new TopicNodes(dsm, typeof group === 'string' ? group : ''), group: typeof group === 'string' ? group : '' }
      states.set(consumer, state)
    }
    return state
  }

  const checkpoint = (state: ConsumerState, message: unknown): PathwayContext | null => {
    const topic = read(message, 'topic')
    if (typeof topic !== 'string') return null
    const node = state.nodes.get(topic)
    if (node === null) return null
    const headers = read(message, 'headers')
    const size = bytesOf(read(message, 'value')) + bytesOf(read(message, 'key')) + headerListSize(headers)
    // A missing or malformed header reads as no parent: the message starts a new pathway.
    const ctx = dsm.setCheckpoint(node, pathwayFromHeaderList(headers), size)
    if (ctx !== null) rememberMessageContext(message as object, ctx)
    return ctx
  }

  /** The consume callback, run with the context of its message (flowing) or first message (a batch). */
  const inMessageContext = (callback: AnyFn) =>
    function (this: unknown, _err: unknown, messages: unknown) {
      const list = items(messages)
      const ctx = contextOf((list === undefined ? messages : read(list, '0')) as object)
      const args = arguments as unknown as unknown[]
      return ctx === undefined ? callback.apply(this, args) : dsm.runWithContext(ctx, () => callback.apply(this, args))
    }

  return undoAll([
    wrapMethod(target, 'emit', (emit: AnyFn) =>
      function (this: any, event: unknown, a: unknown, b: unknown) {
        if (event === 'data') {
          const state = stateOf(this)
          if (state !== null) {
            let ctx: PathwayContext | null = null
            try {
              ctx = checkpoint(state, a)
            } catch (err) {
              fail('consume', err)
            }
            if (ctx !== null) {
              const args = arguments as unknown as unknown[]
              return dsm.runWithContext(ctx, () => emit.apply(this, args))
            }
          }
        } else if (event === 'offset.commit' && !a) {
          const state = stateOf(this)
          if (state !== null) {
            trackCommitted(dsm, state.group, b)
            trackCommittedWatermarks(dsm, this, b)
          }
        }
        return emit.apply(this, arguments as unknown as unknown[])
      },
    ),
    wrapMethod(target, 'consume', (consume: AnyFn) =>
      function (this: any, number: unknown, callback: unknown) {
        if (stateOf(this) !== null) {
          if (typeof callback === 'function') return consume.call(this, number, inMessageContext(callback as AnyFn))
          if (typeof number === 'function') return consume.call(this, inMessageContext(number as AnyFn), callback)
        }
        return consume.apply(this, arguments as unknown as unknown[])
      },
    ),
    wrapMethod(target, 'connect', (connect: AnyFn) =>
      function (this: any) {
        try {
          const state = stateOf(this)
          if (state !== null) addCommitCallback(this, state.group, dsm, where)
        } catch (err) {
          fail('commit callback', err)
        }
        return connect.apply(this, arguments as unknown as unknown[])
      },
    ),
  ])
}

/**
 * Has librdkafka report commits to pathwise, for a consumer whose application set no
 * offset_commit_cb: one added to the callbacks the client registers at connect() (silent: the
 * application sees no 'offset.commit' event it did not ask for).
 */
function addCommitCallback(consumer: any, group: string, dsm: DataStreams, where: Target): void {
  const callbacks = read(read(consumer, '_cb_configs'), 'global') as { offset_commit_cb?: unknown } | null | undefined
  if (callbacks === null || typeof callbacks !== 'object' || typeof callbacks.offset_commit_cb === 'function') return
  callbacks.offset_commit_cb = (err: unknown, offsets: unknown) => {
    if (err || !where.active()) return
    trackCommitted(dsm, group, offsets)
    trackCommittedWatermarks(dsm, consumer, offsets)
  }
}

/** `kafka_commit` backlogs from a commit report: the partitions that have an offset (the next one to read). */
export function trackCommitted(dsm: DataStreams, group: string, offsets: unknown): void {
  try {
    for (const tp of items(offsets) ?? []) {
      const topic = read(tp, 'topic')
      const offset = read(tp, 'offset')
      if (read(tp, 'error') || typeof topic !== 'string') continue
      if (typeof offset === 'number' && offset >= 0) dsm.trackKafkaCommit(group, topic, numberOf(read(tp, 'partition')), offset)
    }
  } catch (err) {
    fail('commit offsets', err)
  }
}

/** The automatic mode: the prototypes of Producer (HighLevelProducer inherits it) and KafkaConsumer. */
export function patchRdKafka(exports: unknown, dsm: DataStreams, active: () => boolean, inject: boolean): () => void {
  const where: Target = { active, standsAside: (client) => internal.has(client) || isClaimed(client) }
  const undos: (() => void)[] = []
  const producer = classPrototype(exports, 'Producer')
  const consumer = classPrototype(exports, 'KafkaConsumer')
  if (producer !== undefined) undos.push(instrumentProducer(producer, 'produce', dsm, where, inject))
  if (consumer !== undefined) undos.push(instrumentConsumer(consumer, dsm, where))
  return undoAll(undos)
}

/** One Producer or HighLevelProducer; `inject` applies to it now, so that `setHeaderInjection` can change it afterwards. */
export function instrumentRdProducer(producer: Record<string, any>, dsm: DataStreams, active: () => boolean, inject: boolean): () => void {
  if (!inject) setHeaderInjection(producer, false)
  const where: Target = { active, standsAside: (client) => internal.has(client) }
  const produceName = typeof read(producer, '_oldProduce') === 'function' ? '_oldProduce' : 'produce'
  return instrumentProducer(producer, produceName, dsm, where, true)
}

/** One KafkaConsumer. Its commits are seen if it is instrumented before connect(), or if it reports them itself (offset_commit_cb). */
export function instrumentRdConsumer(consumer: Record<string, any>, dsm: DataStreams, active: () => boolean): () => void {
  if (read(consumer, '_isConnected') === true && typeof read(read(read(consumer, '_cb_configs'), 'global'), 'offset_commit_cb') !== 'function') {
    log.warnOnce('kafka:commits-unseen', 'a KafkaConsumer instrumented after connect() without offset_commit_cb: its commits are not recorded')
  }
  return instrumentConsumer(consumer, dsm, { active, standsAside: (client) => internal.has(client) })
}
