import { Backlogs } from './backlogs.js'
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
import type { Backend, Core } from '../core/types.js'
import { Direction, PATHWAY_KEY, PathwayContext, asPathwayContext, encodePathwayContext, extractPathwayContext } from '../pathway/context.js'
import type { Carrier, CheckpointNode, CheckpointOptions, CheckpointTiming, DataStreams, DataStreamsStats, Platform } from '../api/data-streams.js'
import { collectBuckets } from './collect.js'
import { AgentExporter, type Delivery } from '../export/exporter.js'
import { createLogger, type OnceLogger } from '../common/logger.js'
import { encodeStatsPayload, PRODUCT_DSM, type ExportBucket } from '../export/payload.js'
import { batchLength, byteCount, edgeTagList, errorText, isObject, nonEmptyText, offsetNumber, partitionNumber, read, tagPart } from '../common/input.js'
import { hangOff, hop } from './loop-detection.js'
import { NodeCache, PreparedNode } from './nodes.js'
import { isSaneTime } from '../pathway/time-window.js'
import { TransactionLog, withTransactions } from './transactions.js'
import { VERSION } from '../api/version.js'

/** Slots per record of `batchRest`: pathway start, the opposite hash's halves, the opposite edge start. */
const REST_STRIDE = 4
/** No parent yet: differs from every parent a batch can hold. */
const NOT_HUNG = Symbol('not hung')

function currentBucket(): number {
  return Math.floor(nowMs() / BUCKET_MS)
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
  private readonly backlogs = new Backlogs()
  private readonly transactions = new TransactionLog()
  private droppedTransactions = 0
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
    })
    this.log = createLogger(config.debug)
    this.processTags = (config.processTags && platform.processTags?.(config.service, config.serviceGiven)) || []
    this.core = createCore({
      backend: config.core,
      maxPoints: config.maxPoints,
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
    }
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

  /** A node or edge tags as handed over: this DataStreams' node (prepared again if forgotten), or valid tags. */
  private resolveNode(edgeTags: unknown): PreparedNode | null {
    if (isNodeOf(edgeTags, this.nodes)) return edgeTags.live ? edgeTags : this.nodeOf(edgeTags.edgeTags)
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
    this.track(['type:kafka_produce', `topic:${t}`], partition, offset, clusterId)
  }

  trackKafkaCommit(group: string, topic: string, partition: number, offset: number | string | bigint, clusterId?: string): void {
    const g = tagPart(group)
    const t = tagPart(topic)
    if (g === undefined || t === undefined) return void this.invalid('backlog: group or topic not a string of at most 1024 characters')
    this.track(['type:kafka_commit', `consumer_group:${g}`, `topic:${t}`], partition, offset, clusterId)
  }

  trackKafkaHighWatermark(topic: string, partition: number, offset: number | string | bigint, clusterId?: string): void {
    const t = tagPart(topic)
    if (t === undefined) return void this.invalid('backlog: topic not a string of at most 1024 characters')
    // The partition first, as dd-trace-go (the other tracer that sends this type) writes it.
    this.track([`topic:${t}`, 'type:kafka_high_watermark'], partition, offset, clusterId, true)
  }

  trackNatsPending(stream: string, consumer: string, pending: number): void {
    const s = tagPart(stream)
    const c = tagPart(consumer)
    const value = typeof pending === 'number' && Number.isSafeInteger(pending) && pending >= 0 ? pending : undefined
    if (s === undefined || c === undefined || value === undefined) return void this.invalid('backlog: stream, consumer or pending count unusable')
    try {
      this.backlogs.track(currentBucket(), ['type:nats_pending', `consumer_group:${c}`, `stream:${s}`], value)
    } catch (err) {
      this.fail('backlog', err)
    }
  }

  /** The partition tag goes after `tags`, or before them (`partitionFirst`); the cluster id always last. */
  private track(tags: string[], partition: unknown, offset: unknown, clusterId: unknown, partitionFirst = false): void {
    const p = partitionNumber(partition)
    const value = offsetNumber(offset)
    const cluster = clusterId === undefined || clusterId === null || clusterId === '' ? '' : tagPart(clusterId)
    if (p === undefined || value === undefined || cluster === undefined) return void this.invalid('backlog: partition, offset or cluster id unusable')
    if (partitionFirst) tags.unshift(`partition:${p}`)
    else tags.push(`partition:${p}`)
    if (cluster !== '') tags.push(`kafka_cluster_id:${cluster}`)
    try {
      this.backlogs.track(currentBucket(), tags, value)
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

  /** 'caller' (flush, shutdown) keeps the process alive until delivered; 'timer' never does. */
  private async send(beforeBucket: number, by: 'caller' | 'timer'): Promise<void> {
    try {
      const delivery = { hold: by === 'caller' }
      const payloads = this.payloads(beforeBucket)
      if (payloads.length === 0) await this.exporter.flush(delivery)
      else await this.deliver(payloads, delivery)
    } catch (err) {
      this.fail('flush', err)
    }
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
      if (this.exporter.busy) return this.exporter.flush()
      const payloads = this.payloads(Infinity)
      return payloads.length === 0 ? undefined : this.deliver(payloads, {})
    } catch (err) {
      this.fail('flush', err)
      return undefined
    }
  }

  /** Queues the payloads in order; resolves once the exporter has delivered them or given up. */
  private async deliver(payloads: Uint8Array[], delivery: Delivery): Promise<void> {
    await Promise.all(payloads.map((payload) => this.exporter.send(payload, {}, delivery)))
  }

  /** The exit hook's final send: everything still in the core, for a synchronous send. Never throws. */
  private unsent(): Uint8Array[] {
    try {
      return this.payloads(Infinity)
    } catch (err) {
      this.fail('flush', err)
      return []
    }
  }

  /**
   * What was recorded before `beforeBucket` and not yet sent, drained from the core and encoded
   * (msgpack, not yet compressed): the one place a payload is made, on every path. Empty if nothing is.
   */
  private payloads(beforeBucket: number): Uint8Array[] {
    const buckets = this.collect(beforeBucket)
    if (buckets.length === 0) return []
    const meta = { env: this.env, service: this.service, version: this.config.version, tracerVersion: VERSION, tags: this.config.tags, processTags: this.processTags, productMask: PRODUCT_DSM }
    return [encodeStatsPayload(meta, buckets)]
  }

  private collect(beforeBucket: number): ExportBucket[] {
    const buckets = collectBuckets(this.core.drain(beforeBucket), this.backlogs.drain(beforeBucket), (id) => this.nodes.tagsOf(id))
    this.nodes.drained(beforeBucket)
    return withTransactions(buckets, this.transactions.drain(beforeBucket), this.transactions.checkpointIds())
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

/** Whether `value` is a node of this cache; false for anything else, a Proxy whose traps throw included. */
function isNodeOf(value: unknown, cache: NodeCache): value is PreparedNode {
  try {
    return value instanceof PreparedNode && value.owner === cache
  } catch {
    return false
  }
}
