/**
 * The KafkaJS API, the whole journey of a message: kafkajs 2.x (kafkajs.ts) and the confluent
 * client's KafkaJS-compatible API (confluent.ts), whose producers and consumers have the same
 * surface, get these wrappers; the header's two shapes are in headers.ts.
 *
 * - Produce: `producer.send` and `sendBatch` (a kafkajs transaction's too) record a produce
 *   checkpoint per message and hand the client copies of the messages with the pathway header
 *   added; the offsets of the result become `kafka_produce` backlogs. A broker that refuses the
 *   headers gets the caller's own messages once more, and the producer sends no header from then on.
 * - Consume: `consumer.run({ eachMessage })` records a consume checkpoint per message (parent:
 *   the message's header) and runs the handler with its context current; `eachBatch` records
 *   the batch in one pass and follows the rule of message-context.ts.
 * - Commit: kafkajs reports every commit (auto-commit, `commitOffsets`, `resolveOffset` + commit)
 *   as the consumer's COMMIT_OFFSETS event: `kafka_commit` backlogs. (The confluent consumer has
 *   no events: confluent.ts reads its internal client's.)
 */
import { PATHWAY_KEY, type PathwayContext } from '../pathway/context.js'
import type { CheckpointNode, DataStreams } from '../api/data-streams.js'
import { wrapMethod } from '../instrument/instrumentation.js'
import { PATHWAY_HEADER_BYTES, TopicNodes, messageSize } from './edges.js'
import { messageWithHeaders, pathwayFromHeaders, pathwayHeaderBytes, pathwayHeaderValue, withPathwayHeader } from './headers.js'
import { headerInjectionOn, headersRefused, isHeaderRejection } from './injection.js'
import { PATHWAY_HEADER_WIRE, RECORD_OVERHEAD, RefusedSizes, isSizeRejection, recordExtraBytes } from './size-limits.js'
import { contextsLeftOut, sendsFailed } from '../instrument/send-outcomes.js'
import { fail } from './log.js'
import { BatchFollower, noteProduce } from './message-context.js'
import { rememberMessageContext } from '../instrument/received-messages.js'
import { checkpointHeaders, contextList, type BatchContexts } from '../instrument/batch-checkpoints.js'
import { copyOf, copyWith, isRecord, items, numberOf, read } from '../common/input.js'

// Client objects are shapes of two libraries: `any` at this boundary, checked where read.
type AnyFn = (...args: any[]) => any
type Message = { key?: unknown; value?: unknown; headers?: unknown; offset?: unknown }

/** What the producer wrappers need from a client. */
export interface ProducerHooks {
  dsm: DataStreams
  /** False once the instrumentation is undone: the wrappers then pass everything through. */
  active(): boolean
  clusterId(): string | undefined
  /** Something to wait for before the first checkpoints (kafkajs learning the cluster id); undefined when nothing. */
  ready?(): Promise<unknown> | undefined
  /** The `message.max.bytes` the client itself enforces (the confluent client's librdkafka), if any. */
  maxMessageBytes?(): number | undefined
}

interface TopicMessages {
  topic?: unknown
  messages?: unknown
}

/** One send or sendBatch after pathwise's part. */
interface Plan {
  entries: TopicMessages[]
  injected: boolean
  /** Messages per topic, to place the last offset when a topic's messages all went to one partition, and to count failed sends. */
  counts: Map<string, number>
}

/** The sizes each producer's topics refused (size-limits.ts), shared by the producer and its transactions. */
const refusedSizes = new WeakMap<object, RefusedSizes>()

/**
 * Wraps `send` and `sendBatch` of a producer (or of a kafkajs transaction, `owner` being its
 * producer: the header switch is the producer's).
 */
export function wrapProducer(target: Record<string, any>, hooks: ProducerHooks, owner: object = target): void {
  const { dsm } = hooks
  const nodes = new TopicNodes(dsm)
  let refused = refusedSizes.get(owner)
  if (refused === undefined) refusedSizes.set(owner, (refused = new RefusedSizes()))
  const sizes = refused

  const plan = (entries: readonly TopicMessages[]): Plan => {
    const inject = headerInjectionOn(owner)
    const clusterId = hooks.clusterId()
    const max = inject ? hooks.maxMessageBytes?.() : undefined
    const counts = new Map<string, number>()
    const out = entries.map((entry) => {
      const topic = read(entry, 'topic')
      const messages = items(read(entry, 'messages'))
      if (typeof topic !== 'string' || messages === undefined) return entry
      // Only where a limit is known (none for kafkajs until a broker refuses a size): nothing more on the usual path.
      const refusedAt = sizes.at(topic)
      const fit: Fit | undefined = inject && (max !== undefined || refusedAt !== Infinity) ? { max, refusedAt, leftOut: 0, why: '' } : undefined
      const copy = entryWithMessages(entry, checkpointMessages(dsm, nodes.get(topic, clusterId), messages, inject, fit))
      if (copy === undefined) return entry
      counts.set(topic, (counts.get(topic) ?? 0) + messages.length)
      if (fit !== undefined && fit.leftOut > 0) contextsLeftOut(dsm, fit.leftOut, `Kafka topic ${topic}`, fit.why)
      return copy
    })
    return { entries: out, injected: inject, counts }
  }

  /**
   * A send the broker refused for its size with headers pathwise added: per topic, the bytes it
   * weighed with them are remembered (size-limits.ts). False when no message carried a header.
   */
  const refusedForSize = (p: Plan): boolean => {
    const carried = new Map<string, { count: number; bytes: number }>()
    for (const entry of p.entries) {
      const topic = read(entry, 'topic')
      if (typeof topic !== 'string') continue
      for (const m of items(read(entry, 'messages')) ?? []) {
        if (read(read(m, 'headers'), PATHWAY_KEY) === undefined) continue
        const seen = carried.get(topic) ?? { count: 0, bytes: 0 }
        seen.count++
        seen.bytes += messageSize(m)
        carried.set(topic, seen)
      }
    }
    for (const [topic, { count, bytes }] of carried) {
      sizes.refused(topic, bytes)
      contextsLeftOut(dsm, count, `Kafka topic ${topic}`, 'the broker refused a send with the pathway headers for its size (MESSAGE_TOO_LARGE or RECORD_LIST_TOO_LARGE): it was sent again without them')
    }
    return carried.size > 0
  }

  const track = (result: unknown, p: Plan): unknown => {
    try {
      trackProduced(dsm, result, p.counts, hooks.clusterId())
    } catch (err) {
      fail('produce offsets', err)
    }
    return result
  }

  /** A send that finally failed: its messages were checkpointed, so they count as failed sends. */
  const failed = (err: unknown, p: Plan): never => {
    try {
      const clusterId = hooks.clusterId()
      for (const [topic, count] of p.counts) sendsFailed(dsm, nodes.get(topic, clusterId), count)
    } catch (e) {
      fail('failed sends', e)
    }
    throw err
  }

  /**
   * The client's promise, with the offsets recorded; if the broker refused the headers, or the
   * size the headers gave a send, the caller's own messages sent once more.
   */
  const settle = (result: unknown, p: Plan, resend: () => unknown): unknown => {
    if (!isThenable(result)) return result
    return result.then(
      (value) => track(value, p),
      (err: unknown) => {
        if (!p.injected) return failed(err, p)
        if (isHeaderRejection(err)) headersRefused(owner)
        else if (!isSizeRejection(err) || !refusedForSize(p)) return failed(err, p)
        let again: unknown
        try {
          again = resend()
        } catch (e) {
          return failed(e, p)
        }
        return Promise.resolve(again).then(
          (value) => track(value, p),
          (e: unknown) => failed(e, p),
        )
      },
    )
  }

  /** Runs send after hooks.ready, if the client has something to learn first. */
  const whenReady = (send: () => unknown): unknown => {
    const pending = hooks.ready?.()
    return pending === undefined ? send() : pending.then(send)
  }

  wrapMethod(target, 'send', (send: AnyFn) =>
    function (this: unknown, record: unknown) {
      const messages = read(record, 'messages')
      const more = extra(arguments)
      if (!hooks.active() || items(messages) === undefined || read(messages, PREPARED) === true) return handOn(send, this, record, more)
      return whenReady(() => {
        let p: Plan | undefined
        let copy: unknown
        try {
          p = plan([record as TopicMessages])
          copy = p.entries[0]
        } catch (err) {
          fail('produce', err)
        }
        if (p === undefined || copy === record) return handOn(send, this, record, more)
        return settle(handOn(send, this, copy, more), p, () => handOn(send, this, record, more))
      })
    },
  )

  wrapMethod(target, 'sendBatch', (sendBatch: AnyFn) =>
    function (this: unknown, batch: unknown) {
      const entries = items(read(batch, 'topicMessages'))
      const more = extra(arguments)
      if (!hooks.active() || entries === undefined) return handOn(sendBatch, this, batch, more)
      return whenReady(() => {
        let p: Plan | undefined
        let copy: unknown
        try {
          p = plan(entries as TopicMessages[])
          copy = copyWith(batch, 'topicMessages', p.entries)
        } catch (err) {
          fail('produce', err)
        }
        if (p === undefined || copy === undefined) return handOn(sendBatch, this, batch, more)
        return settle(handOn(sendBatch, this, copy, more), p, () => handOn(sendBatch, this, batch, more))
      })
    },
  )
}

/** A transaction's send and sendBatch are the producer's, with the producer's header switch. */
export function wrapTransactions(producer: Record<string, any>, hooks: ProducerHooks): void {
  wrapMethod(producer, 'transaction', (transaction: AnyFn) =>
    function (this: unknown) {
      const result = transaction.apply(this, arguments as unknown as unknown[])
      if (!isThenable(result)) return result
      return result.then((tx: any) => {
        try {
          if (hooks.active() && tx !== null && typeof tx === 'object') wrapProducer(tx, hooks, producer)
        } catch (err) {
          fail('instrument transaction', err)
        }
        return tx
      })
    },
  )
}

/** A copy of a send's `{ topic, messages }` with these messages; undefined for one that cannot be copied (it then goes as it came). */
function entryWithMessages(entry: unknown, messages: unknown[]): Record<string, unknown> | undefined {
  if (!isRecord(entry)) return undefined
  try {
    // A spread with the key written out: V8 copies it fastest so (copyWith's computed key costs far more).
    return { ...entry, messages }
  } catch {
    return undefined // a Proxy's trap or a getter threw
  }
}

/** Marks the message arrays pathwise made: a client's sendBatch may hand them to its own send (confluent's does). */
const PREPARED = Symbol('pathwise.prepared')

/**
 * The limits a topic's messages must keep to, when the producer knows any (size-limits.ts): the
 * client's `message.max.bytes`, and the size from which the topic's broker refused a send.
 */
interface Fit {
  max: number | undefined
  refusedAt: number
  /** Messages left without the header, and how the last one met its limit (for the warning). */
  leftOut: number
  why: string
}

/**
 * Produce checkpoints, in one pass: the messages to send, copies with the header where one is
 * added. `fit`, when given, leaves the header out of the messages it would push past a limit.
 */
function checkpointMessages(dsm: DataStreams, node: CheckpointNode | null, messages: readonly unknown[], inject: boolean, fit?: Fit): unknown[] {
  const out = new Array<unknown>(messages.length) as unknown[] & { [PREPARED]?: true }
  out[PREPARED] = true
  if (node === null) {
    for (let i = 0; i < messages.length; i++) out[i] = messages[i]
    return out
  }
  const extra = inject ? PATHWAY_HEADER_BYTES : 0
  // Every message of a send hangs off the current context: one core call (one clock read) for all.
  const positions: number[] = []
  const sizes: number[] = []
  // The messages that go without the header for a limit (made on the first one: none on the usual path).
  let bare: boolean[] | undefined
  const max = fit?.max
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as Message
    if (m === null || typeof m !== 'object') out[i] = m
    else {
      const size = messageSize(m)
      if (max !== undefined && tooLarge(m, size, max)) {
        bare ??= new Array<boolean>(positions.length).fill(false)
        bare.push(true)
        fit!.why = `the header would have pushed a message past the producer's message.max.bytes (${max})`
        sizes.push(size)
      } else {
        bare?.push(false)
        sizes.push(size + extra)
      }
      positions.push(i)
    }
  }
  if (inject && fit !== undefined && fit.refusedAt !== Infinity) {
    let total = 0
    for (let j = 0; j < sizes.length; j++) total += sizes[j]
    if (total >= fit.refusedAt) {
      bare ??= new Array<boolean>(positions.length).fill(false)
      for (let j = 0; j < sizes.length; j++) {
        if (!bare[j]) sizes[j] -= extra
        bare[j] = true
      }
      fit.why = `a send to it as large with the pathway headers (${total} bytes) was refused for its size before`
    }
  }
  const parent = dsm.currentContext()
  noteProduce(parent)
  const ctxs = dsm.setCheckpointBatch(node, new Array<PathwayContext | null>(positions.length).fill(parent ?? null), sizes)
  // The messages of a send share parent, node and clock read, so their contexts encode alike: one encoding serves them all.
  let encoded: PathwayContext | null = null
  let value: string | Uint8Array = ''
  for (let j = 0; j < positions.length; j++) {
    const m = messages[positions[j]]
    const ctx = ctxs[j]
    const header = inject && ctx !== null && (bare === undefined || !bare[j])
    if (bare !== undefined && bare[j]) fit!.leftOut++
    if (header && ctx !== encoded && (encoded === null || !sameHeader(encoded, ctx))) {
      encoded = ctx
      value = pathwayHeaderBytes(ctx)
    }
    const headers = header ? withPathwayHeader(read(m, 'headers'), value) : undefined
    // A message whose headers are no object, or that cannot be copied, goes as it came.
    out[positions[j]] = (headers === undefined ? undefined : messageWithHeaders(m, headers)) ?? m
  }
  return out
}

/** Whether the header would push this message past the client's own limit, as librdkafka counts (size-limits.ts). */
function tooLarge(m: Message, size: number, max: number): boolean {
  // Far from the limit, the exact count (the headers' length varints) is not needed.
  if (size + RECORD_OVERHEAD + PATHWAY_HEADER_WIRE + 64 <= max) return false
  return size + recordExtraBytes(read(m, 'headers')) + PATHWAY_HEADER_WIRE > max
}

/** Whether two contexts have the same header value: the same hash and times. */
function sameHeader(a: PathwayContext, b: PathwayContext): boolean {
  return a.hashHi === b.hashHi && a.hashLo === b.hashLo && a.pathwayStartMs === b.pathwayStartMs && a.edgeStartMs === b.edgeStartMs
}

/**
 * `kafka_produce` backlogs from a send's result: one entry per topic and partition, whose
 * `baseOffset` is the offset of the first message written there. When all the messages of a
 * topic went to one partition, the last one is at baseOffset + count - 1; otherwise the share of
 * each partition is unknown and baseOffset stands (a lower bound, as dd-trace records it).
 */
function trackProduced(dsm: DataStreams, result: unknown, counts: Map<string, number>, clusterId: string | undefined): void {
  const entries = items(result)
  if (entries === undefined) return
  for (const entry of entries) {
    const topic = read(entry, 'topicName')
    const base = read(entry, 'baseOffset') ?? read(entry, 'offset')
    let offset = numberOf(base)
    if (typeof topic !== 'string' || !(offset >= 0)) continue
    const count = counts.get(topic) ?? 1
    if (count > 1 && entries.filter((e) => read(e, 'topicName') === topic).length === 1) offset += count - 1
    dsm.trackKafkaProduce(topic, numberOf(read(entry, 'partition')), offset, clusterId)
  }
}

/** What the consumer wrappers need from a client. */
export interface ConsumerHooks {
  dsm: DataStreams
  active(): boolean
  /** The consumer group; asked when the first message arrives. */
  group(): string | undefined
  clusterId(): string | undefined
}

/** Wraps `run`, so that the eachMessage and eachBatch handlers it is given record consume checkpoints and see their message's context. */
export function wrapRun(consumer: Record<string, any>, hooks: ConsumerHooks): void {
  const { dsm } = hooks
  let nodes: TopicNodes | undefined

  const checkpoint = (topic: unknown, message: unknown): PathwayContext | null => {
    if (typeof topic !== 'string' || message === null || typeof message !== 'object') return null
    nodes ??= new TopicNodes(dsm, hooks.group() ?? '')
    const node = nodes.get(topic, hooks.clusterId())
    if (node === null) return null
    // A missing or malformed header reads as no parent: the message starts a new pathway.
    const ctx = dsm.setCheckpoint(node, pathwayFromHeaders(read(message, 'headers')), messageSize(message))
    if (ctx !== null) rememberMessageContext(message, ctx)
    return ctx
  }

  /**
   * The consume checkpoints of a whole batch in one pass (one clock read, one core call, each
   * header's bytes decoded straight into the core's batch buffer): the eachBatch path. A context
   * object is made for each run of messages sent together, not for each message.
   */
  const checkpointBatch = (topic: unknown, messages: readonly unknown[]): BatchContexts | null => {
    if (typeof topic !== 'string') return null
    nodes ??= new TopicNodes(dsm, hooks.group() ?? '')
    const node = nodes.get(topic, hooks.clusterId())
    if (node === null) return null
    const n = messages.length
    const values = new Array<unknown>(n)
    const sizes = new Array<number>(n)
    for (let i = 0; i < n; i++) {
      const m = messages[i]
      if (m === null || typeof m !== 'object') {
        return contextList(messages.map((m) => checkpoint(topic, m)))
      }
      values[i] = pathwayHeaderValue(read(m, 'headers'))
      sizes[i] = messageSize(m)
    }
    const ctxs = checkpointHeaders(dsm, node, values, sizes)
    for (let i = 0; i < n; i++) {
      const ctx = ctxs.get(i)
      if (ctx !== null) rememberMessageContext(messages[i] as object, ctx)
    }
    return ctxs
  }

  const eachMessage = (handler: AnyFn) =>
    function (this: unknown, payload: any) {
      if (!hooks.active()) return handler.call(this, payload)
      let ctx: PathwayContext | null = null
      try {
        ctx = checkpoint(read(payload, 'topic'), read(payload, 'message'))
      } catch (err) {
        fail('consume', err)
      }
      return ctx === null ? handler.call(this, payload) : dsm.runWithContext(ctx, () => handler.call(this, payload))
    }

  const eachBatch = (handler: AnyFn) =>
    function (this: unknown, payload: any) {
      if (!hooks.active()) return handler.call(this, payload)
      let first: PathwayContext | null = null
      let seen = payload
      let follower: BatchFollower | undefined
      try {
        const batch = read(payload, 'batch')
        const messages = items(read(batch, 'messages'))
        if (messages !== undefined && messages.length > 0) {
          const ctxs = checkpointBatch(read(batch, 'topic'), messages)
          first = ctxs?.get(0) ?? null
          follower = new BatchFollower(dsm, messages, ctxs)
          const resolveOffset = read(payload, 'resolveOffset')
          if (typeof resolveOffset === 'function') {
            const f = follower
            // A copy: the client keeps using its own payload after the handler.
            seen =
              copyWith(payload, 'resolveOffset', function resolveOffsetAndFollow(offset: unknown) {
                const result = resolveOffset.apply(payload, arguments as unknown as unknown[])
                try {
                  f.resolved(offset)
                } catch (err) {
                  fail('batch context', err)
                }
                return result
              }) ?? payload
          }
        }
      } catch (err) {
        fail('consume', err)
      }
      let result: unknown
      try {
        result = first === null ? handler.call(this, seen) : dsm.runWithContext(first, () => handler.call(this, seen))
      } catch (err) {
        follower?.end()
        throw err
      }
      if (follower !== undefined) endWith(result, follower)
      return result
    }

  wrapMethod(consumer, 'run', (run: AnyFn) =>
    function (this: unknown, config: unknown) {
      const more = extra(arguments)
      const copy = hooks.active() ? copyOf(config) : undefined
      if (copy === undefined) return handOn(run, this, config, more)
      // The handlers as the copy holds them: a getter of the config is read once, by the copy.
      if (typeof copy.eachMessage === 'function') copy.eachMessage = eachMessage(copy.eachMessage as AnyFn)
      if (typeof copy.eachBatch === 'function') copy.eachBatch = eachBatch(copy.eachBatch as AnyFn)
      return handOn(run, this, copy, more)
    },
  )
}

/** Ends the follower when the handler's promise settles (at once for a handler that returned no promise). */
function endWith(result: unknown, follower: BatchFollower): void {
  const end = () => follower.end()
  if (isThenable(result)) (result as Promise<unknown>).then(end, end)
  else end()
}

/** kafkajs reports every commit, whatever made it, as a COMMIT_OFFSETS instrumentation event. */
export function trackCommits(consumer: Record<string, any>, hooks: ConsumerHooks): void {
  const event = consumer.events?.COMMIT_OFFSETS
  if (typeof event !== 'string' || typeof consumer.on !== 'function') return
  consumer.on(event, (e: any) => {
    if (!hooks.active()) return
    try {
      const payload = read(e, 'payload')
      const groupId = read(payload, 'groupId') ?? hooks.group()
      for (const entry of items(read(payload, 'topics')) ?? []) {
        const topic = read(entry, 'topic')
        for (const p of items(read(entry, 'partitions')) ?? []) {
          hooks.dsm.trackKafkaCommit(groupId as string, topic as string, numberOf(read(p, 'partition')), read(p, 'offset') as number, hooks.clusterId())
        }
      }
    } catch (err) {
      fail('commit offsets', err)
    }
  })
}

/** Arguments after the first (no client takes any, but they go on as they came); undefined, and no copy made, when there are none. */
function extra(args: IArguments): unknown[] | undefined {
  return args.length > 1 ? Array.prototype.slice.call(args, 1) : undefined
}

/** Calls the client's method with this first argument and the extra ones. */
function handOn(method: AnyFn, self: unknown, first: unknown, more: unknown[] | undefined): unknown {
  return more === undefined ? method.call(self, first) : method.call(self, first, ...more)
}

function isThenable(value: unknown): value is Promise<unknown> {
  return typeof read(value, 'then') === 'function'
}
