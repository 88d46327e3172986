import { BacklogKeys, Backlogs } from './backlogs.js'
import { nowMs } from '../common/clock.js'
import type { InstrumentationSettings, ResolvedConfig } from '../api/config.js'
import { BUCKET_MS } from '../core/constants.js'
import { createCore } from './create-core.js'
import {
  BATCH_CAPACITY,
  BATCH_EDGE_LATENCY,
  BATCH_NODE,
  BATCH_OUT_HI,
  BATCH_OUT_LO,
  BATCH_PARENT_HI,
  BATCH_PARENT_LO,
  BATCH_PATHWAY_LATENCY,
  BATCH_PAYLOAD,
  BATCH_STRIDE,
} from '../core/layout.js'
import { DEFAULT_MAX_POINTS, type Backend, type Core } from '../core/types.js'
import { Direction, PATHWAY_KEY, PathwayContext, asPathwayContext, decodeBytesFields, decodeFields, encodePathwayContext, extractPathwayContext, headerFields, sameBytes } from '../pathway/context.js'
import { FIELDS, RecordedBatch, noContexts, sameFields, type BatchContexts } from './batch-contexts.js'
import type { Carrier, CheckpointNode, CheckpointOptions, CheckpointTiming, DataStreams, DataStreamsStats, Platform } from '../api/data-streams.js'
import { SEND_OUTCOMES, type SendOutcomes } from '../api/send-outcomes.js'
import { AgentInfo } from '../export/agent-info.js'
import { AgentExporter } from '../export/exporter.js'
import { flushPayloads, PAUSE } from '../export/flush.js'
import { createLogger, type OnceLogger } from '../common/logger.js'
import { PRODUCT_DSM, type BucketExtras, type Payload, type PayloadMeta } from '../export/payload.js'
import { MAX_BATCH, batchLength, byteCount, edgeTagList, errorText, isObject, nonEmptyText, offsetNumber, partitionNumber, read, tagPart } from '../common/input.js'
import { hangOff, hop } from './loop-detection.js'
import { NodeCache, type PreparedNode, liveNodeOf, nodeOf } from './nodes.js'
import { isSaneTime } from '../pathway/time-window.js'
import { TransactionLog } from './transactions.js'
import { VERSION } from '../api/version.js'

/** Slots per record of `batchRest`: pathway start, the opposite hash's halves, the opposite edge start. */
const REST_STRIDE = 4
/** No parent yet: differs from every parent a batch can hold. */
const NOT_HUNG = Symbol('not hung')

function currentBucket(): number {
  return Math.floor(nowMs() / BUCKET_MS)
}

/** Lets the event loop run (I/O, timers) before going on: setImmediate where there is one, else a timer. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)))
}

/**
 * The DataStreams of an enabled configuration: checkpoints into its core, contexts out, and the
 * stats to the Agent on a timer, on flush() and shutdown(), and at exit.
 */
export class DataStreamsProcessor implements DataStreams {
  readonly enabled = true
  readonly service: string
  readonly env: string
  /** What the instrumentations handed this DataStreams take from its configuration (`settingsOf`). */
  readonly settings: InstrumentationSettings
  private readonly core: Core
  private readonly log: OnceLogger
  private readonly exporter: AgentExporter
  private readonly agentInfo: AgentInfo
  private readonly meta: PayloadMeta
  private readonly backlogs = new Backlogs()
  private readonly backlogKeys = new BacklogKeys()
  private readonly transactions = new TransactionLog()
  private droppedTransactions = 0
  private contextsLeftOut = 0
  private failedSends = 0
  /** ProcessTags of every payload, empty where the runtime cannot state them or they are switched off. */
  private readonly processTags: readonly string[]
  private readonly nodes: NodeCache
  private invalidInputs = 0
  /** Kinds of bad input already logged. */
  private readonly reported = new Set<string>()
  /** What each context of a batch needs besides its hash, kept while the core has the batch. */
  private readonly batchRest = new Float64Array(BATCH_CAPACITY * REST_STRIDE)
  private timer: ReturnType<typeof setInterval> | undefined
  private removeExitHook: (() => void) | undefined
  private closed = false
  /** Flushes build their payloads one after the other: the end of the last one started. */
  private building: Promise<unknown> = Promise.resolve()
  /** The payloads of the flush being built, while it is. */
  private flushing: Generator<Payload | typeof PAUSE, void, undefined> | undefined
  private flushes = 0
  /** Drops by the point cap that the last payloads told the Agent of, and that were warned of. */
  private droppedReported = 0
  private droppedWarned = 0

  constructor(
    private readonly config: ResolvedConfig,
    private readonly platform: Platform,
  ) {
    this.service = config.service
    this.env = config.env
    this.settings = Object.freeze({
      debug: config.debug,
      kafkaHeaderInjection: config.kafkaHeaderInjection,
      kinesisJsonContext: config.kinesisJsonContext,
      httpEnabled: config.httpEnabled,
      httpAllowedHosts: Object.freeze([...config.httpAllowedHosts]),
      flushIntervalMs: config.flushIntervalMs,
    })
    this.log = createLogger(config.debug)
    this.processTags = (config.processTags && platform.processTags?.(config.service, config.serviceGiven)) || []
    this.core = createCore({
      backend: config.core,
      maxPoints: config.maxPoints,
      maxLivePoints: liveBuckets(config.flushIntervalMs) * (config.maxPoints ?? DEFAULT_MAX_POINTS),
      wasmModule: platform.compiledWasm,
      onFallback: (reason) => this.log.debug(`using the pure-TS core: ${reason}`),
    })
    this.nodes = new NodeCache(this.core, config.service, config.env, config.maxNodes)
    this.exporter = new AgentExporter({
      url: config.agentUrl,
      tracerVersion: VERSION,
      transport: platform.transport,
      timeoutMs: config.timeoutMs,
      hold: platform.hold,
      log: this.log,
      debug: config.debug,
    })
    // /info answers at once or not at all: one deadline, as short as a POST's to connect and send
    this.agentInfo = new AgentInfo(config.agentUrl, platform.transport, { sendMs: config.timeoutMs, answerMs: 0 })
    this.meta = {
      env: config.env,
      service: config.service,
      version: config.version,
      tracerVersion: VERSION,
      tags: config.tags,
      processTags: this.processTags,
      productMask: PRODUCT_DSM,
    }
    if (config.flushIntervalMs > 0) {
      this.timer = setInterval(() => void this.flushFinished(), config.flushIntervalMs)
      ;(this.timer as { unref?: () => void }).unref?.()
    }
    this.removeExitHook = platform.onExit?.({
      url: this.exporter.endpoint,
      headers: this.exporter.headers,
      timeoutMs: config.exitTimeoutMs,
      drain: () => this.drainAtExit(),
      final: () => this.unsent(),
      warn: (message) => this.log.warnOnce('exit', message),
    })
  }

  get backend(): Backend {
    return this.core.backend
  }

  get stats(): DataStreamsStats {
    return {
      livePoints: this.core.livePoints,
      droppedPoints: this.core.droppedPoints,
      droppedPayloads: this.exporter.stats.dropped,
      unconfirmedPayloads: this.exporter.stats.unconfirmed,
      invalidInputs: this.invalidInputs,
      evictedNodes: this.nodes.evicted,
      droppedBacklogs: this.backlogs.dropped,
      droppedTransactions: this.droppedTransactions,
      contextsLeftOut: this.contextsLeftOut,
      failedSends: this.failedSends,
    }
  }

  /** What the transport wrappers report (api/send-outcomes.ts); a count that is no integer from 1 to a batch's most is ignored. */
  readonly [SEND_OUTCOMES]: SendOutcomes = {
    contextsLeftOut: (count) => {
      if (isSendCount(count)) this.contextsLeftOut += count
    },
    failedSends: (node, count) => {
      if (!isSendCount(count)) return
      this.failedSends += count
      const resolved = this.resolveNode(node)
      if (resolved === null) return
      // The destination's edge tags, the transport's `type` as `transport`: the backlog's own `type` names it.
      const tags = ['type:pathwise_failed_sends']
      for (const tag of resolved.edgeTags) {
        if (tag.startsWith('type:')) tags.push(`transport:${tag.slice(5)}`)
        else if (!tag.startsWith('direction:')) tags.push(tag)
      }
      try {
        this.backlogs.count(currentBucket(), tags, count)
      } catch (err) {
        this.fail('backlog', err)
      }
    },
  }

  node(edgeTags: readonly string[]): CheckpointNode | null {
    const tags = edgeTagList(edgeTags)
    if (tags === null) return this.invalid('edge tags: not an array of at most 64 strings of at most 1024 characters')
    return this.nodeOf(tags)
  }

  private nodeOf(tags: readonly string[]): PreparedNode | null {
    try {
      return this.nodes.get(tags)
    } catch (err) {
      this.fail('node', err)
      return null
    }
  }

  /**
   * A node or edge tags as handed over: this DataStreams' node (as it is: it was validated when
   * prepared; prepared again if forgotten), or valid tags.
   */
  private resolveNode(edgeTags: unknown): PreparedNode | null {
    const live = liveNodeOf(edgeTags, this.nodes)
    if (live !== null) return live
    const forgotten = nodeOf(edgeTags, this.nodes)
    if (forgotten !== null) return this.nodeOf(forgotten.edgeTags)
    const tags = edgeTagList(edgeTags)
    if (tags === null) return this.invalid('edge tags: not an array of at most 64 strings of at most 1024 characters, nor a node of this DataStreams')
    return this.nodeOf(tags)
  }

  /**
   * The parent as given: undefined means the current context, null none; anything else must be a
   * sane context (`asPathwayContext`), or it counts as none.
   */
  private resolveParent(parent: unknown, now: number): PathwayContext | null {
    if (parent === undefined) parent = this.platform.store.get()
    if (parent === undefined || parent === null) return null
    const ctx = asPathwayContext(parent, now)
    if (ctx === null) this.invalid('parent: not a pathway context with sane times; a new pathway starts')
    return ctx
  }

  /** A payload size as given: a finite number >= 0, else 0 (counted). */
  private resolveSize(size: unknown): number {
    if (size === undefined) return 0
    const n = byteCount(size)
    if (n !== undefined) return n
    this.invalid('payload size: not a finite number >= 0; 0 recorded')
    return 0
  }

  /** Counts a bad input, says so once at debug level, and gives the caller its "nothing". */
  private invalid(what: string): null {
    this.invalidInputs++
    if (this.config.debug && !this.reported.has(what)) {
      this.reported.add(what)
      this.log.debug(`bad input: ${what}`)
    }
    return null
  }

  setCheckpoint(
    edgeTags: readonly string[] | CheckpointNode,
    parent?: PathwayContext | null,
    payloadSize?: number,
    timing?: CheckpointTiming,
  ): PathwayContext | null {
    try {
      const node = this.resolveNode(edgeTags)
      if (node === null) return null
      const now = nowMs()
      let from = this.resolveParent(parent, now)
      let pathwayStart: unknown
      let edgeStart: unknown
      if (timing !== undefined) {
        pathwayStart = read(timing, 'pathwayStartMs')
        edgeStart = read(timing, 'edgeStartMs')
        if ((pathwayStart !== undefined && !isSaneTime(pathwayStart, now)) || (edgeStart !== undefined && !isSaneTime(edgeStart, now))) {
          this.invalid('timing: a time that is not a sane millisecond timestamp; a new pathway starts')
          from = null
          pathwayStart = edgeStart = undefined
        }
      }
      hangOff(node.direction, from, now)
      if (pathwayStart !== undefined) hop.pathwayStart = pathwayStart as number
      if (edgeStart !== undefined) hop.edgeStart = edgeStart as number
      return this.record(node, now, this.resolveSize(payloadSize))
    } catch (err) {
      this.fail('checkpoint', err)
      return null
    }
  }

  /** Records the checkpoint that `hop` describes and returns the context after it. */
  private record(node: PreparedNode, now: number, payloadSize: number): PathwayContext {
    const { pathwayStart, edgeStart } = hop
    const core = this.core
    core.checkpoint(
      node.id,
      hop.parentHi,
      hop.parentLo,
      Math.floor(now / BUCKET_MS),
      now > pathwayStart ? (now - pathwayStart) / 1000 : 0,
      now > edgeStart ? (now - edgeStart) / 1000 : 0,
      payloadSize,
    )
    const { oppositeHi, oppositeLo, oppositeEdgeStart } = hop
    return new PathwayContext(core.hashHi, core.hashLo, pathwayStart, now, node.direction, oppositeHi, oppositeLo, oppositeEdgeStart)
  }

  setCheckpointBatch(
    edgeTags: readonly string[] | CheckpointNode,
    parents: readonly (PathwayContext | null)[],
    payloadSizes?: ArrayLike<number>,
  ): (PathwayContext | null)[] {
    const count = batchLength(parents)
    if (count < 0) return this.invalid('batch: parents is not an array of at most 1,000,000 entries') ?? []
    try {
      const node = this.resolveNode(edgeTags)
      if (node === null) return new Array<null>(count).fill(null)
      const sizes = payloadSizes === undefined ? undefined : batchLength(payloadSizes) >= count ? payloadSizes : this.invalid('batch: payload sizes not an array as long as the parents')
      const out = new Array<PathwayContext | null>(count)
      const now = nowMs()
      const bucket = Math.floor(now / BUCKET_MS)
      const direction = node.direction
      const rest = this.batchRest
      // A send's messages share one parent, and a fetched batch's equal headers decode to one object:
      // where a parent is the one before, `hop` still holds what it gave.
      let hung: unknown = NOT_HUNG
      for (let first = 0; first < count; first += BATCH_CAPACITY) {
        const n = Math.min(BATCH_CAPACITY, count - first)
        let b = this.core.batchBuffer()
        for (let i = 0, r = 0, q = 0; i < n; i++, r += BATCH_STRIDE, q += REST_STRIDE) {
          const parent = parents[first + i]
          if (parent !== hung) {
            const from = parent === null || parent === undefined ? null : this.resolveParent(parent, now)
            hangOff(direction, from, now)
            // a refused parent is not kept: each one is counted as bad input
            hung = from === null && parent !== null && parent !== undefined ? NOT_HUNG : parent
          }
          const { pathwayStart, edgeStart } = hop
          b[r + BATCH_NODE] = node.id
          b[r + BATCH_PARENT_HI] = hop.parentHi
          b[r + BATCH_PARENT_LO] = hop.parentLo
          b[r + BATCH_PATHWAY_LATENCY] = now > pathwayStart ? (now - pathwayStart) / 1000 : 0
          b[r + BATCH_EDGE_LATENCY] = now > edgeStart ? (now - edgeStart) / 1000 : 0
          b[r + BATCH_PAYLOAD] = sizes == null ? 0 : this.resolveSize(sizes[first + i])
          rest[q] = pathwayStart
          rest[q + 1] = hop.oppositeHi
          rest[q + 2] = hop.oppositeLo
          rest[q + 3] = hop.oppositeEdgeStart
        }
        this.core.checkpointBatch(n, bucket)
        b = this.core.batchBuffer() // a Wasm memory growth during the call replaces the view
        let previous: PathwayContext | null = null
        for (let i = 0, r = 0, q = 0; i < n; i++, r += BATCH_STRIDE, q += REST_STRIDE) {
          const hashHi = b[r + BATCH_OUT_HI]
          const hashLo = b[r + BATCH_OUT_LO]
          // Messages sent together arrive with equal contexts: one immutable object serves a run of them
          // (an allocation less each, and a hand-off of the current context to skip when it is already current).
          out[first + i] = previous =
            previous !== null &&
            previous.hashHi === hashHi &&
            previous.hashLo === hashLo &&
            previous.pathwayStartMs === rest[q] &&
            previous.oppositeHashHi === rest[q + 1] &&
            previous.oppositeHashLo === rest[q + 2] &&
            previous.oppositeEdgeStartMs === rest[q + 3]
              ? previous
              : new PathwayContext(hashHi, hashLo, rest[q], now, direction, rest[q + 1], rest[q + 2], rest[q + 3])
        }
      }
      return out
    } catch (err) {
      this.fail('checkpoint', err)
      return new Array<null>(count).fill(null)
    }
  }

  /**
   * The consume checkpoints of a fetched batch in one pass, one core call per BATCH_CAPACITY
   * messages: `values[i]` is message i's pathway header value (its base64 text, as a string or
   * its bytes), decoded straight into the core's batch buffer, or a parent context read elsewhere
   * (a legacy header), or anything else for none; `sizes[i]` its bytes. No context object is made
   * here: the result makes one when asked. A value equal to the one before (a send's messages)
   * is not decoded again. The transports' batch path (`instrument/batch-checkpoints.ts`).
   */
  checkpointHeaders(edgeTags: readonly string[] | CheckpointNode, values: readonly unknown[], sizes?: ArrayLike<number>): BatchContexts {
    const count = batchLength(values)
    if (count < 0) return this.invalid('batch: header values is not an array of at most 1,000,000 entries') ?? noContexts(0)
    try {
      const node = this.resolveNode(edgeTags)
      if (node === null) return noContexts(count)
      const given = sizes === undefined ? undefined : batchLength(sizes) >= count ? sizes : this.invalid('batch: payload sizes not an array as long as the header values')
      const fields = new Float64Array(count * FIELDS)
      const runs = new Int32Array(count)
      const now = nowMs()
      const bucket = Math.floor(now / BUCKET_MS)
      const id = node.id
      const direction = node.direction
      // The value before, if a header value (a context given as a parent is looked at each time: each refusal counts).
      let previous: unknown = NOT_HUNG
      let previousBytes: Uint8Array | null = null
      for (let first = 0; first < count; first += BATCH_CAPACITY) {
        const n = Math.min(BATCH_CAPACITY, count - first)
        let b = this.core.batchBuffer()
        for (let i = 0, r = 0; i < n; i++, r += BATCH_STRIDE) {
          const value = values[first + i]
          if (value !== previous) {
            if (value instanceof Uint8Array) {
              if (previousBytes === null || !sameBytes(value, previousBytes)) hangOffHeader(decodeBytesFields(value, now), direction, now)
              previous = previousBytes = value
            } else {
              if (typeof value === 'string') hangOffHeader(decodeFields(value, now), direction, now)
              else hangOff(direction, value === null || value === undefined ? null : this.resolveParent(value, now), now)
              previous = typeof value === 'string' ? value : NOT_HUNG
              previousBytes = null
            }
          }
          const size = given == null ? 0 : given[first + i]
          const { pathwayStart, edgeStart } = hop
          b[r + BATCH_NODE] = id
          b[r + BATCH_PARENT_HI] = hop.parentHi
          b[r + BATCH_PARENT_LO] = hop.parentLo
          b[r + BATCH_PATHWAY_LATENCY] = now > pathwayStart ? (now - pathwayStart) / 1000 : 0
          b[r + BATCH_EDGE_LATENCY] = now > edgeStart ? (now - edgeStart) / 1000 : 0
          b[r + BATCH_PAYLOAD] = typeof size === 'number' && size >= 0 && size <= Number.MAX_SAFE_INTEGER ? size : this.resolveSize(size)
          const q = (first + i) * FIELDS
          fields[q + 2] = pathwayStart
          fields[q + 3] = hop.oppositeHi
          fields[q + 4] = hop.oppositeLo
          fields[q + 5] = hop.oppositeEdgeStart
        }
        this.core.checkpointBatch(n, bucket)
        b = this.core.batchBuffer() // a Wasm memory growth during the call replaces the view
        for (let i = 0, r = 0; i < n; i++, r += BATCH_STRIDE) {
          const m = first + i
          const q = m * FIELDS
          fields[q] = b[r + BATCH_OUT_HI]
          fields[q + 1] = b[r + BATCH_OUT_LO]
          runs[m] = m > 0 && sameFields(fields, q, q - FIELDS) ? runs[m - 1] : m
        }
      }
      return new RecordedBatch(count, fields, runs, now, direction)
    } catch (err) {
      this.fail('checkpoint', err)
      return noContexts(count)
    }
  }

  setProduceCheckpoint(type: string, target: string, carrier: Carrier, options?: CheckpointOptions): PathwayContext | null {
    if (!isObject(carrier)) return this.invalid('carrier: not an object')
    const node = this.manualNode(Direction.Out, type, target)
    if (node === null) return null
    const ctx = this.setCheckpoint(node, read(options, 'parent') as PathwayContext | null | undefined, read(options, 'payloadSize') as number | undefined)
    if (ctx !== null) {
      try {
        carrier[PATHWAY_KEY] = encodePathwayContext(ctx)
      } catch {
        this.invalid('carrier: cannot be written (frozen, a Proxy, a setter that throws)')
      }
    }
    return ctx
  }

  setConsumeCheckpoint(type: string, source: string, carrier: Carrier, options?: CheckpointOptions): PathwayContext | null {
    const node = this.manualNode(Direction.In, type, source)
    if (node === null) return null
    const given = read(options, 'parent')
    const parent = given !== undefined ? given : isObject(carrier) ? extractPathwayContext(carrier) : this.invalid('carrier: not an object')
    const ctx = this.setCheckpoint(node, parent as PathwayContext | null, read(options, 'payloadSize') as number | undefined)
    if (ctx !== null) this.platform.store.enter(ctx)
    return ctx
  }

  private manualNode(direction: typeof Direction.In | typeof Direction.Out, type: unknown, topic: unknown): PreparedNode | null {
    const t = tagPart(type)
    const name = tagPart(topic)
    if (t === undefined || name === undefined) return this.invalid('type or topic: not a string of at most 1024 characters')
    try {
      return this.nodes.manualNode(direction, t, name)
    } catch (err) {
      this.fail('node', err)
      return null
    }
  }

  trackKafkaProduce(topic: string, partition: number, offset: number | string | bigint, clusterId?: string): void {
    const t = tagPart(topic)
    if (t === undefined) return void this.invalid('backlog: topic not a string of at most 1024 characters')
    this.track('kafka_produce', t, '', partition, offset, clusterId, (p) => ['type:kafka_produce', `topic:${t}`, `partition:${p}`])
  }

  trackKafkaCommit(group: string, topic: string, partition: number, offset: number | string | bigint, clusterId?: string): void {
    const g = tagPart(group)
    const t = tagPart(topic)
    if (g === undefined || t === undefined) return void this.invalid('backlog: group or topic not a string of at most 1024 characters')
    this.track('kafka_commit', g, t, partition, offset, clusterId, (p) => ['type:kafka_commit', `consumer_group:${g}`, `topic:${t}`, `partition:${p}`])
  }

  trackKafkaHighWatermark(topic: string, partition: number, offset: number | string | bigint, clusterId?: string): void {
    const t = tagPart(topic)
    if (t === undefined) return void this.invalid('backlog: topic not a string of at most 1024 characters')
    // The partition first, as dd-trace-go (the other tracer that sends this type) writes it.
    this.track('kafka_high_watermark', t, '', partition, offset, clusterId, (p) => [`partition:${p}`, `topic:${t}`, 'type:kafka_high_watermark'])
  }

  trackNatsPending(stream: string, consumer: string, pending: number): void {
    const s = tagPart(stream)
    const c = tagPart(consumer)
    const value = typeof pending === 'number' && Number.isSafeInteger(pending) && pending >= 0 ? pending : undefined
    if (s === undefined || c === undefined || value === undefined) return void this.invalid('backlog: stream, consumer or pending count unusable')
    try {
      const key = this.backlogKeys.get('nats_pending', c, s, -1, '', () => ['type:nats_pending', `consumer_group:${c}`, `stream:${s}`])
      this.backlogs.track(currentBucket(), key, value)
    } catch (err) {
      this.fail('backlog', err)
    }
  }

  trackQueueDepth(queueType: string, queue: string, state: string, count: number): void {
    const t = tagPart(queueType)
    const q = tagPart(queue)
    const s = tagPart(state)
    const value = typeof count === 'number' && Number.isSafeInteger(count) && count >= 0 ? count : undefined
    if (t === undefined || q === undefined || s === undefined || value === undefined) {
      return void this.invalid('queue depth: type, queue or state not a string of at most 1024 characters, or count not a non-negative integer')
    }
    try {
      const key = this.backlogKeys.get('queue_depth', t, q, -1, s, () => ['type:queue_depth', `queue_type:${t}`, `topic:${q}`, `state:${s}`])
      this.backlogs.track(currentBucket(), key, value)
    } catch (err) {
      this.fail('backlog', err)
    }
  }

  /** A Kafka backlog: `tags(partition)` its tags but the cluster id, which always goes last. */
  private track(kind: string, a: string, b: string, partition: unknown, offset: unknown, clusterId: unknown, tags: (partition: number) => string[]): void {
    const p = partitionNumber(partition)
    const value = offsetNumber(offset)
    const cluster = clusterId === undefined || clusterId === null || clusterId === '' ? '' : tagPart(clusterId)
    if (p === undefined || value === undefined || cluster === undefined) return void this.invalid('backlog: partition, offset or cluster id unusable')
    try {
      const key = this.backlogKeys.get(kind, a, b, p, cluster, () => (cluster === '' ? tags(p) : [...tags(p), `kafka_cluster_id:${cluster}`]))
      this.backlogs.track(currentBucket(), key, value)
    } catch (err) {
      this.fail('backlog', err)
    }
  }

  trackTransaction(transactionId: string, checkpointName: string): void {
    const id = nonEmptyText(transactionId)
    const name = nonEmptyText(checkpointName)
    if (id === undefined || name === undefined) return void this.invalid('transaction: id or checkpoint name not a non-empty string')
    try {
      const now = nowMs()
      const outcome = this.transactions.track(id, name, now, Math.floor(now / BUCKET_MS))
      if (outcome === 'recorded') return
      this.droppedTransactions++
      if (outcome === 'names-full') this.log.warnOnce('transactions:names', 'trackTransaction: 254 checkpoint names already registered; calls with a new name are dropped (counted in stats.droppedTransactions)')
      else this.log.warnOnce('transactions:bucket', 'trackTransaction: a bucket holds 2.3 MB of transaction records already; more are dropped (counted in stats.droppedTransactions)')
    } catch (err) {
      this.fail('transaction', err)
    }
  }

  currentContext(): PathwayContext | undefined {
    return this.platform.store.get()
  }

  runWithContext<T>(ctx: PathwayContext | null | undefined, fn: () => T): T {
    if (typeof fn !== 'function') {
      this.invalid('runWithContext: fn is not a function')
      return undefined as T
    }
    const valid = ctx === null || ctx === undefined ? undefined : (asPathwayContext(ctx) ?? this.invalid('runWithContext: not a pathway context') ?? undefined)
    return this.platform.store.run(valid, fn)
  }

  enterContext(ctx: PathwayContext): void {
    const valid = asPathwayContext(ctx)
    if (valid === null) this.invalid('enterContext: not a pathway context')
    else this.platform.store.enter(valid)
  }

  flush(): Promise<void> {
    return this.send(Infinity, 'caller')
  }

  /** The timer's flush: only buckets that are over, so a bucket is sent once when it can. */
  private flushFinished(): Promise<void> {
    return this.send(currentBucket(), 'timer')
  }

  /**
   * 'caller' (flush, shutdown) keeps the process alive until delivered; 'timer' never does; 'exit'
   * (drainAtExit) leaves that to the exit hook, and retries no older queue on its own. Flushes
   * build one after the other; each hands its payloads to the exporter as they are done.
   */
  private send(beforeBucket: number, by: 'caller' | 'timer' | 'exit'): Promise<void> {
    const delivery = { hold: by === 'caller' }
    const built = this.building.then(() => this.build(beforeBucket, by))
    this.building = built
    return built.then(async (payloads) => {
      try {
        if (payloads > 0 || by !== 'exit') await this.exporter.flush(delivery)
      } catch (err) {
        this.fail('flush', err)
      }
    })
  }

  /**
   * Builds the payloads of the buckets below `beforeBucket` a slice at a time, letting the event
   * loop run between slices, and queues each (its compression starts at once: at most two are
   * compressing while the next is built). Resolves with how many; never rejects.
   */
  private async build(beforeBucket: number, by: 'caller' | 'timer' | 'exit'): Promise<number> {
    let count = 0
    try {
      if (!this.hasStats(beforeBucket)) return 0
      const sparse = by === 'exit' ? this.agentInfo.sparseKnown : await this.askSparse(by !== 'timer')
      const payloads = (this.flushing = this.payloads(beforeBucket, sparse))
      const flush = ++this.flushes
      let compressing: Promise<unknown> = Promise.resolve()
      for (let next = payloads.next(); !next.done; next = payloads.next()) {
        if (next.value === PAUSE) {
          await nextTurn()
          continue
        }
        count++
        const compressed = this.exporter.enqueue(next.value, { flush })
        void this.exporter.flush({ hold: by === 'caller' })
        await compressing
        compressing = compressed
      }
    } catch (err) {
      this.fail('flush', err)
    } finally {
      this.flushing = undefined
    }
    return count
  }

  /** Whether anything of the buckets below `beforeBucket` waits: stats points, backlogs, transaction records, or drops to report. */
  private hasStats(beforeBucket: number): boolean {
    return this.core.livePoints > 0 || this.core.droppedPoints !== this.droppedReported || this.backlogs.has(beforeBucket) || this.transactions.has(beforeBucket)
  }

  /** The Agent's answer on the sparse form, asked if due; `hold` keeps the process alive meanwhile. */
  private async askSparse(hold: boolean): Promise<boolean> {
    const release = hold ? this.platform.hold?.(this.config.timeoutMs + 100) : undefined
    try {
      return await this.agentInfo.sparseSketches(this.exporter.stats.failures)
    } finally {
      release?.()
    }
  }

  /**
   * The payloads of one flush (see flushPayloads): the core's points, the backlogs and transaction
   * records of the same buckets, drained at its first step, and the drops since the last flush.
   */
  private *payloads(beforeBucket: number, sparse: boolean): Generator<Payload | typeof PAUSE, void, undefined> {
    const extras = new Map<number, BucketExtras>()
    for (const [bucket, backlogs] of this.backlogs.drain(beforeBucket)) extras.set(bucket, { backlogs })
    const records = this.transactions.drain(beforeBucket)
    if (records.size > 0) {
      const checkpointIds = this.transactions.checkpointIds()
      for (const [bucket, bytes] of records) extras.set(bucket, { backlogs: extras.get(bucket)?.backlogs ?? [], transactions: { records: bytes, checkpointIds } })
    }
    const dropped = this.core.droppedPoints
    const droppedPoints = dropped - this.droppedReported
    this.droppedReported = dropped
    this.warnDropped(dropped)
    yield* flushPayloads({ core: this.core, beforeBucket, sparse, extras, meta: this.meta, droppedPoints })
  }

  /** The point cap bit since the last warning: said once, with what to do. */
  private warnDropped(dropped: number): void {
    if (dropped === this.droppedWarned) return
    this.droppedWarned = dropped
    this.log.warnOnce(
      'points:cap',
      `a 10 s bucket reached maxPoints (${this.config.maxPoints ?? DEFAULT_MAX_POINTS} stats points): checkpoints of new pathways were dropped ` +
        '(stats.droppedPoints counts them, and the pathwise agent shows them); raise maxPoints',
    )
  }

  /**
   * The exit hook's send at a natural end: what was recorded since the last send, once, without
   * retrying an older queue on its own (beforeExit comes again once this ends, and must then find
   * nothing to do). The exit hook holds the process, within its bound; the exporter does not. A
   * send in flight is waited for, and what is new stays in the core meanwhile: the exporter would
   * queue it behind that send, where the final synchronous send could not reach it.
   */
  private drainAtExit(): Promise<void> | undefined {
    try {
      if (this.exporter.busy) return this.building.then(() => this.exporter.flush())
      return this.hasStats(Infinity) ? this.send(Infinity, 'exit') : undefined
    } catch (err) {
      this.fail('flush', err)
      return undefined
    }
  }

  /**
   * The exit hook's final send, synchronously: everything not yet handed to the exporter (the rest
   * of a flush being built, then every bucket, the sketches in the form the Agent last said it
   * reads), as msgpack payloads within the size bound, not yet compressed. Never throws.
   */
  private unsent(): Uint8Array[] {
    const out: Uint8Array[] = []
    try {
      for (const source of [this.flushing, this.payloads(Infinity, this.agentInfo.sparseKnown)]) {
        if (source === undefined) continue
        for (const p of source) if (p !== PAUSE) out.push(p.bytes)
      }
    } catch (err) {
      this.fail('flush', err)
    }
    return out
  }

  async shutdown(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer !== undefined) clearInterval(this.timer)
    this.removeExitHook?.()
    await this.flush()
  }

  private fail(what: string, err: unknown): void {
    this.log.warnOnce(`error:${what}`, `${what} failed, continuing without it: ${errorText(err)}`)
  }
}

/**
 * Buckets' worth of points the core may hold at once: the buckets a flush interval spans (the
 * timer drains only finished ones), the current one, and one for a late timer. With no timer
 * (flushes are the caller's), three, as with the default 10 s.
 */
function liveBuckets(flushIntervalMs: number): number {
  return Math.max(1, Math.ceil(flushIntervalMs / BUCKET_MS)) + 2
}

/** A count of messages one send can hold: an integer from 1 to MAX_BATCH. */
function isSendCount(count: unknown): count is number {
  return Number.isInteger(count) && (count as number) > 0 && (count as number) <= MAX_BATCH
}

/**
 * Fills `hop` for a checkpoint of `direction` after a header value that `decodeFields` read into
 * `headerFields` (a context of no direction: the checkpoint hangs off it whatever its own
 * direction), or after none (`read` false: a new pathway).
 */
function hangOffHeader(read: boolean, direction: Direction, now: number): void {
  if (!read) return hangOff(direction, null, now)
  hop.oppositeHi = hop.parentHi = headerFields.hashHi
  hop.oppositeLo = hop.parentLo = headerFields.hashLo
  hop.oppositeEdgeStart = hop.edgeStart = headerFields.edgeStartMs
  hop.pathwayStart = headerFields.pathwayStartMs
}
