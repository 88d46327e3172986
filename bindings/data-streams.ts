import { Backlogs } from './backlogs.js'
import { nowMs } from './clock.js'
import { resolveConfig, type Env, type ResolvedConfig } from './config.js'
import { BUCKET_MS } from './core/constants.js'
import { createCore } from './core/create.js'
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
  type Backend,
  type Core,
} from './core/types.js'
import { Direction, PATHWAY_KEY, PathwayContext, asPathwayContext, encodePathwayContext, extractPathwayContext } from './context.js'
import { AgentExporter, type Transport } from './export/exporter.js'
import { createLogger, type OnceLogger } from './export/logger.js'
import { encodeStatsPayload, type ExportBucket } from './export/payload.js'
import { MAX_BATCH, byteCount, edgeTagList, offsetNumber, partitionNumber, read, tagPart } from './input.js'
import { isSaneTime } from './time-window.js'
import { VERSION } from './version.js'

/** Where the context of the message being handled lives: AsyncLocalStorage in Node, nothing on the edge. */
export interface ContextStore {
  get(): PathwayContext | undefined
  /** Makes ctx current for the rest of the caller's async flow. */
  enter(ctx: PathwayContext): void
  run<T>(ctx: PathwayContext | undefined, fn: () => T): T
}

/** What a runtime provides: its environment, context store, HTTP transport, exit hook and hold. */
export interface Platform {
  env: Env
  store: ContextStore
  transport: Transport
  /** Calls fn whenever the process is about to exit (again after work fn started ends); returns the way to stop. */
  onExit?(fn: () => void): () => void
  /** Keeps the process alive for at most ms, until the returned function is called; absent on the edge. */
  hold?(ms: number): () => void
  compiledWasm?: WebAssembly.Module
}

/** A node of the pathway graph (service, env, edge tags) prepared once; transports cache these. */
export interface CheckpointNode {
  readonly id: number
  readonly direction: Direction
  readonly edgeTags: readonly string[]
  /** False once the DataStreams has forgotten the node (its node cache was full): it still works, but `node()` prepares it again. */
  readonly live: boolean
}

/** Overrides of the times a checkpoint measures from (Kinesis: the record's arrival time). */
export interface CheckpointTiming {
  pathwayStartMs?: number
  edgeStartMs?: number
}

export interface CheckpointOptions {
  /** The parent context; `null` starts a new pathway; absent, the current context (Node) is used. */
  parent?: PathwayContext | null
  /** Bytes the message carries, counted in the payload-size sketch. */
  payloadSize?: number
}

export type Carrier = Record<string, unknown>

export interface DataStreams {
  readonly enabled: boolean
  readonly service: string
  readonly env: string
  /** The core in use: 'wasm', or 'ts' where the Wasm core cannot run; null when disabled. */
  readonly backend: Backend | null
  /** Records direction:out + manual_checkpoint:true and writes the context into the carrier. */
  setProduceCheckpoint(type: string, target: string, carrier: Carrier, options?: CheckpointOptions): PathwayContext | null
  /** Reads the carrier's context, records direction:in + manual_checkpoint:true and makes the new context current. */
  setConsumeCheckpoint(type: string, source: string, carrier: Carrier, options?: CheckpointOptions): PathwayContext | null
  /** The general form: records a checkpoint with these edge tags and returns the new context. */
  setCheckpoint(
    edgeTags: readonly string[] | CheckpointNode,
    parent?: PathwayContext | null,
    payloadSize?: number,
    timing?: CheckpointTiming,
  ): PathwayContext | null
  /**
   * One checkpoint per message of a batch, all with the same edge tags and at the same time (the
   * batch's arrival), in one call into the core: `parents[i]` is message i's parent (null: none),
   * `payloadSizes[i]` its bytes. Returns the contexts in message order (all null if it failed).
   */
  setCheckpointBatch(
    edgeTags: readonly string[] | CheckpointNode,
    parents: readonly (PathwayContext | null)[],
    payloadSizes?: ArrayLike<number>,
  ): (PathwayContext | null)[]
  /** Prepares the node of these edge tags once, for callers that checkpoint the same tags often. */
  node(edgeTags: readonly string[]): CheckpointNode | null
  trackKafkaProduce(topic: string, partition: number, offset: number | string | bigint, clusterId?: string): void
  trackKafkaCommit(group: string, topic: string, partition: number, offset: number | string | bigint, clusterId?: string): void
  /** The context of the message being handled, where the runtime tracks one. */
  currentContext(): PathwayContext | undefined
  /** Runs fn with ctx as the current context. */
  runWithContext<T>(ctx: PathwayContext | null | undefined, fn: () => T): T
  /** Sends everything recorded so far. Never rejects. */
  flush(): Promise<void>
  /** Stops the timer, sends everything and releases the core. Never rejects. */
  shutdown(): Promise<void>
  readonly stats: DataStreamsStats
}

export interface DataStreamsStats {
  readonly livePoints: number
  /** Checkpoints dropped by the cap on live stats points. */
  readonly droppedPoints: number
  readonly droppedPayloads: number
  /** Calls given what they cannot use (bad tags, times, sizes, carriers, options): refused or repaired, never thrown. */
  readonly invalidInputs: number
  /** Prepared nodes forgotten because the node cache reached `maxNodes`. */
  readonly evictedNodes: number
  /** Kafka offsets dropped because a bucket already held MAX_BACKLOGS_PER_BUCKET backlog keys. */
  readonly droppedBacklogs: number
}

/** A node prepared by one processor; `live` turns false when the cache forgets it (then it is prepared again on use). */
class PreparedNode implements CheckpointNode {
  live = true
  constructor(
    readonly owner: object,
    readonly id: number,
    readonly direction: Direction,
    readonly edgeTags: readonly string[],
  ) {}
}

interface TagTrie {
  node: PreparedNode | undefined
  next: Map<string, TagTrie>
}

/**
 * Where a checkpoint hangs off its parent, loop detection included (`hangOff` fills it): one
 * object reused, so that a checkpoint allocates nothing but its context.
 */
const hop = { parentHi: 0, parentLo: 0, pathwayStart: 0, edgeStart: 0, oppositeHi: 0, oppositeLo: 0, oppositeEdgeStart: 0 }

function hangOff(direction: Direction, parent: PathwayContext | null, now: number): void {
  if (parent === null) {
    hop.parentHi = hop.parentLo = hop.oppositeHi = hop.oppositeLo = 0
    hop.pathwayStart = hop.edgeStart = hop.oppositeEdgeStart = now
  } else if (direction !== Direction.None && direction === parent.direction) {
    // Same direction twice (produce, then produce again): hang this checkpoint off the
    // closest checkpoint of the other direction, or restart the pathway if there is none.
    hop.oppositeHi = hop.parentHi = parent.oppositeHashHi
    hop.oppositeLo = hop.parentLo = parent.oppositeHashLo
    hop.oppositeEdgeStart = parent.oppositeEdgeStartMs
    if (hop.parentHi !== 0 || hop.parentLo !== 0) {
      hop.pathwayStart = parent.pathwayStartMs
      hop.edgeStart = parent.oppositeEdgeStartMs
    } else {
      hop.pathwayStart = hop.edgeStart = now
    }
  } else {
    hop.oppositeHi = hop.parentHi = parent.hashHi
    hop.oppositeLo = hop.parentLo = parent.hashLo
    hop.oppositeEdgeStart = hop.edgeStart = parent.edgeStartMs
    hop.pathwayStart = parent.pathwayStartMs
  }
}

/** Slots per record of `batchRest`: pathway start, the opposite hash's halves, the opposite edge start. */
const REST_STRIDE = 4

/** Never throws, whatever `options` is: what cannot be used falls back to the environment, then the defaults. */
export function createDataStreamsFor(options: unknown, platform: Platform, defaults?: { flushIntervalMs?: number }): DataStreams {
  const config = resolveConfig(options, platform.env, defaults)
  return config.enabled ? new DataStreamsProcessor(config, platform) : new DisabledDataStreams(config)
}

class DataStreamsProcessor implements DataStreams {
  readonly enabled = true
  readonly service: string
  readonly env: string
  private readonly core: Core
  private readonly log: OnceLogger
  private readonly exporter: AgentExporter
  private readonly backlogs = new Backlogs()
  /** Nodes by their edge tags as given, one trie level per tag: a lookup hashes no new string. */
  private nodes: TagTrie = { node: undefined, next: new Map() }
  /** The nodes the cache holds, to forget them all when it is full. */
  private liveNodes: PreparedNode[] = []
  /** Edge tags of the live nodes by id, for export. */
  private readonly nodeTags: (readonly string[] | undefined)[] = []
  /**
   * Edge tags of forgotten nodes whose points may still wait in the core, by id, and the bucket
   * they were forgotten in: a drain past it hands out their last points, and then they go.
   */
  private readonly retiredTags = new Map<number, readonly string[]>()
  private retiredBatches: { bucket: number; ids: number[]; tags: (readonly string[])[] }[] = []
  /** Nodes of the manual API by direction, then type, then topic. */
  private manualNodes = [new Map<string, Map<string, PreparedNode>>(), new Map<string, Map<string, PreparedNode>>()]
  private invalidInputs = 0
  private evictedNodes = 0
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
    this.log = createLogger(config.debug)
    this.core = createCore({
      backend: config.core,
      maxPoints: config.maxPoints,
      wasmModule: platform.compiledWasm,
      onFallback: (reason) => this.log.debug(`using the pure-TS core: ${reason}`),
    })
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
    this.removeExitHook = platform.onExit?.(() => void this.send(Infinity, 'exit'))
  }

  get backend(): Backend {
    return this.core.backend
  }

  get stats(): DataStreamsStats {
    return {
      livePoints: this.core.livePoints,
      droppedPoints: this.core.droppedPoints,
      droppedPayloads: this.exporter.stats.dropped,
      invalidInputs: this.invalidInputs,
      evictedNodes: this.evictedNodes,
      droppedBacklogs: this.backlogs.dropped,
    }
  }

  node(edgeTags: readonly string[]): CheckpointNode | null {
    const tags = edgeTagList(edgeTags)
    if (tags === null) return this.invalid('edge tags: not an array of at most 64 strings of at most 1024 characters')
    return this.nodeOf(tags)
  }

  /** The node of valid edge tags, prepared on first use; one trie level per tag, so a lookup builds no string. */
  private nodeOf(edgeTags: readonly string[]): PreparedNode | null {
    try {
      let level = this.nodes
      for (let i = 0; i < edgeTags.length; i++) {
        let next = level.next.get(edgeTags[i])
        if (next === undefined) level.next.set(edgeTags[i], (next = { node: undefined, next: new Map() }))
        level = next
      }
      if (level.node === undefined) {
        if (this.liveNodes.length >= this.config.maxNodes) {
          this.forgetNodes()
          return this.nodeOf(edgeTags)
        }
        const tags = [...edgeTags].sort()
        const id = this.core.node(this.service, this.env, tags)
        const node = new PreparedNode(this, id, directionOf(tags), tags)
        level.node = node
        this.liveNodes.push(node)
        this.nodeTags[id] = tags
        this.retiredTags.delete(id)
      }
      return level.node
    } catch (err) {
      this.fail('node', err)
      return null
    }
  }

  /**
   * The cache is full: it starts over. Hot nodes are prepared again on their next use (one hash
   * each); the core reuses the ids once their stats are drained. Nodes held by callers turn stale.
   */
  private forgetNodes(): void {
    const batch = { bucket: Math.floor(nowMs() / BUCKET_MS), ids: [] as number[], tags: [] as (readonly string[])[] }
    for (const node of this.liveNodes) {
      node.live = false
      this.core.releaseNode(node.id)
      this.nodeTags[node.id] = undefined
      this.retiredTags.set(node.id, node.edgeTags)
      batch.ids.push(node.id)
      batch.tags.push(node.edgeTags)
    }
    this.retiredBatches.push(batch)
    this.evictedNodes += this.liveNodes.length
    this.log.debug(`node cache full (${this.config.maxNodes} nodes): starting over`)
    this.liveNodes = []
    this.nodes = { node: undefined, next: new Map() }
    this.manualNodes = [new Map(), new Map()]
  }

  /** A node or edge tags as handed over: this processor's node (prepared again if forgotten), or valid tags. */
  private resolveNode(edgeTags: unknown): PreparedNode | null {
    if (edgeTags instanceof PreparedNode && edgeTags.owner === this) return edgeTags.live ? edgeTags : this.nodeOf(edgeTags.edgeTags)
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
        if ((pathwayStart !== undefined && !isSaneTime(pathwayStart as number, now)) || (edgeStart !== undefined && !isSaneTime(edgeStart as number, now))) {
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
      for (let first = 0; first < count; first += BATCH_CAPACITY) {
        const n = Math.min(BATCH_CAPACITY, count - first)
        let b = this.core.batchBuffer()
        for (let i = 0, r = 0, q = 0; i < n; i++, r += BATCH_STRIDE, q += REST_STRIDE) {
          const parent = parents[first + i]
          hangOff(direction, parent === null || parent === undefined ? null : this.resolveParent(parent, now), now)
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
        for (let i = 0, r = 0, q = 0; i < n; i++, r += BATCH_STRIDE, q += REST_STRIDE) {
          const hashHi = b[r + BATCH_OUT_HI]
          const hashLo = b[r + BATCH_OUT_LO]
          out[first + i] = new PathwayContext(hashHi, hashLo, rest[q], now, direction, rest[q + 1], rest[q + 2], rest[q + 3])
        }
      }
      return out
    } catch (err) {
      this.fail('checkpoint', err)
      return new Array<null>(count).fill(null)
    }
  }

  setProduceCheckpoint(type: string, target: string, carrier: Carrier, options?: CheckpointOptions): PathwayContext | null {
    if (!isCarrier(carrier)) return this.invalid('carrier: not an object')
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
    const parent = given !== undefined ? given : isCarrier(carrier) ? extractPathwayContext(carrier) : this.invalid('carrier: not an object')
    const ctx = this.setCheckpoint(node, parent as PathwayContext | null, read(options, 'payloadSize') as number | undefined)
    if (ctx !== null) this.platform.store.enter(ctx)
    return ctx
  }

  private manualNode(direction: typeof Direction.In | typeof Direction.Out, type: unknown, topic: unknown): PreparedNode | null {
    const t = tagPart(type)
    const name = tagPart(topic)
    if (t === undefined || name === undefined) return this.invalid('type or topic: not a string of at most 1024 characters')
    const byType = this.manualNodes[direction === Direction.In ? 0 : 1]
    let byTopic = byType.get(t)
    if (byTopic === undefined) byType.set(t, (byTopic = new Map()))
    let node = byTopic.get(name)
    if (node === undefined || !node.live) {
      const n = this.node([direction === Direction.In ? 'direction:in' : 'direction:out', `topic:${name}`, `type:${t}`, 'manual_checkpoint:true'])
      if (n === null) return null
      // (had the cache started over meanwhile, this map is no longer looked up: harmless)
      byTopic.set(name, (node = n as PreparedNode))
    }
    return node
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

  private track(tags: string[], partition: unknown, offset: unknown, clusterId: unknown): void {
    const p = partitionNumber(partition)
    const value = offsetNumber(offset)
    const cluster = clusterId === undefined || clusterId === null || clusterId === '' ? '' : tagPart(clusterId)
    if (p === undefined || value === undefined || cluster === undefined) return void this.invalid('backlog: partition, offset or cluster id unusable')
    tags.push(`partition:${p}`)
    if (cluster !== '') tags.push(`kafka_cluster_id:${cluster}`)
    try {
      this.backlogs.track(Math.floor(nowMs() / BUCKET_MS), tags, value)
    } catch (err) {
      this.fail('backlog', err)
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

  flush(): Promise<void> {
    return this.send(Infinity, 'caller')
  }

  /** The timer's flush: only buckets that are over, so a bucket is sent once when it can. */
  private flushFinished(): Promise<void> {
    return this.send(Math.floor(nowMs() / BUCKET_MS), 'timer')
  }

  /**
   * 'caller' (flush, shutdown) keeps the process alive until delivered; 'timer' never does.
   * 'exit' holds it too, but sends only what was recorded since the last send and retries no queue:
   * beforeExit comes again once that send ends, and must then find nothing to do.
   */
  private async send(beforeBucket: number, by: 'caller' | 'timer' | 'exit'): Promise<void> {
    try {
      const delivery = { hold: by !== 'timer' }
      const buckets = this.collect(beforeBucket)
      if (buckets.length > 0) {
        const payload = encodeStatsPayload(
          { env: this.env, service: this.service, version: this.config.version, tracerVersion: VERSION, tags: this.config.tags },
          buckets,
        )
        await this.exporter.send(payload, {}, delivery)
      } else if (by !== 'exit') {
        await this.exporter.flush(delivery)
      }
    } catch (err) {
      this.fail('flush', err)
    }
  }

  private collect(beforeBucket: number): ExportBucket[] {
    const byBucket = new Map<number, ExportBucket>()
    for (const drained of this.core.drain(beforeBucket)) {
      byBucket.set(drained.bucket, {
        bucket: drained.bucket,
        backlogs: [],
        points: drained.points.map((p) => ({
          edgeTags: this.nodeTags[p.node] ?? this.retiredTags.get(p.node) ?? [],
          hashHi: p.hashHi,
          hashLo: p.hashLo,
          parentHi: p.parentHi,
          parentLo: p.parentLo,
          pathwayLatency: p.pathwayLatency,
          edgeLatency: p.edgeLatency,
          payloadSize: p.payloadSize,
          timestampType: 'current' as const,
        })),
      })
    }
    this.forgetRetired(beforeBucket)
    for (const [bucket, backlogs] of this.backlogs.drain(beforeBucket)) {
      let b = byBucket.get(bucket)
      if (b === undefined) byBucket.set(bucket, (b = { bucket, points: [], backlogs: [] }))
      b.backlogs = backlogs
    }
    return [...byBucket.values()].sort((a, b) => a.bucket - b.bucket)
  }

  /** Drops the tags of nodes forgotten before `beforeBucket`, unless their id was retired again since. */
  private forgetRetired(beforeBucket: number): void {
    const kept = []
    for (const batch of this.retiredBatches) {
      if (batch.bucket >= beforeBucket) kept.push(batch)
      else for (let i = 0; i < batch.ids.length; i++) if (this.retiredTags.get(batch.ids[i]) === batch.tags[i]) this.retiredTags.delete(batch.ids[i])
    }
    this.retiredBatches = kept
  }

  async shutdown(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.timer !== undefined) clearInterval(this.timer)
    this.removeExitHook?.()
    await this.flush()
  }

  private fail(what: string, err: unknown): void {
    this.log.warnOnce(`error:${what}`, `${what} failed, continuing without it: ${(err as Error)?.message ?? err}`)
  }
}

/** With DSM off every call returns at once: no core, no timer, no memory. */
class DisabledDataStreams implements DataStreams {
  readonly enabled = false
  readonly backend = null
  readonly service: string
  readonly env: string
  readonly stats: DataStreamsStats = { livePoints: 0, droppedPoints: 0, droppedPayloads: 0, invalidInputs: 0, evictedNodes: 0, droppedBacklogs: 0 }
  constructor(config: ResolvedConfig) {
    this.service = config.service
    this.env = config.env
  }
  setProduceCheckpoint(): null {
    return null
  }
  setConsumeCheckpoint(): null {
    return null
  }
  setCheckpoint(): null {
    return null
  }
  setCheckpointBatch(_edgeTags: readonly string[] | CheckpointNode, parents: readonly (PathwayContext | null)[]): null[] {
    return new Array<null>(Math.max(0, batchLength(parents))).fill(null)
  }
  node(): null {
    return null
  }
  trackKafkaProduce(): void {}
  trackKafkaCommit(): void {}
  currentContext(): undefined {
    return undefined
  }
  runWithContext<T>(_ctx: PathwayContext | null | undefined, fn: () => T): T {
    return typeof fn === 'function' ? fn() : (undefined as T)
  }
  flush(): Promise<void> {
    return Promise.resolve()
  }
  shutdown(): Promise<void> {
    return Promise.resolve()
  }
}

/** The length of an array-like batch argument, or -1 if it is not an array of at most MAX_BATCH entries. Never throws. */
function batchLength(value: unknown): number {
  try {
    if (!Array.isArray(value) && !ArrayBuffer.isView(value)) return -1
    const n = (value as ArrayLike<unknown>).length
    return n <= MAX_BATCH ? n : -1
  } catch {
    return -1
  }
}

function isCarrier(value: unknown): value is Carrier {
  return value !== null && typeof value === 'object'
}

function directionOf(tags: readonly string[]): Direction {
  for (const t of tags) {
    if (t === 'direction:in') return Direction.In
    if (t === 'direction:out') return Direction.Out
  }
  return Direction.None
}
