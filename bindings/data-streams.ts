import { Backlogs } from './backlogs.js'
import { nowMs } from './clock.js'
import { resolveConfig, type DataStreamsOptions, type Env, type ResolvedConfig } from './config.js'
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
import { Direction, PATHWAY_KEY, PathwayContext, encodePathwayContext, extractPathwayContext } from './context.js'
import { AgentExporter, type Transport } from './export/exporter.js'
import { createLogger, type OnceLogger } from './export/logger.js'
import { encodeStatsPayload, type ExportBucket } from './export/payload.js'
import { VERSION } from './version.js'

/** Where the context of the message being handled lives: AsyncLocalStorage in Node, nothing on the edge. */
export interface ContextStore {
  get(): PathwayContext | undefined
  /** Makes ctx current for the rest of the caller's async flow. */
  enter(ctx: PathwayContext): void
  run<T>(ctx: PathwayContext | undefined, fn: () => T): T
}

/** What a runtime provides: its environment, context store, HTTP transport and exit hook. */
export interface Platform {
  env: Env
  store: ContextStore
  transport: Transport
  /** Calls fn before the process exits; returns the way to stop doing so. */
  onExit?(fn: () => void): () => void
  compiledWasm?: WebAssembly.Module
}

/** A node of the pathway graph (service, env, edge tags) prepared once; transports cache these. */
export interface CheckpointNode {
  readonly id: number
  readonly direction: Direction
  readonly edgeTags: readonly string[]
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
  readonly stats: { readonly livePoints: number; readonly droppedPoints: number; readonly droppedPayloads: number }
}

interface TagTrie {
  node: CheckpointNode | undefined
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

export function createDataStreamsFor(options: DataStreamsOptions, platform: Platform): DataStreams {
  const config = resolveConfig(options, platform.env)
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
  private readonly nodes: TagTrie = { node: undefined, next: new Map() }
  private readonly nodeTags: (readonly string[])[] = []
  /** Nodes of the manual API by direction, then type, then topic. */
  private readonly manualNodes = [new Map<string, Map<string, CheckpointNode>>(), new Map<string, Map<string, CheckpointNode>>()]
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
      log: this.log,
      debug: config.debug,
    })
    if (config.flushIntervalMs > 0) {
      this.timer = setInterval(() => void this.flushFinished(), config.flushIntervalMs)
      ;(this.timer as { unref?: () => void }).unref?.()
    }
    this.removeExitHook = platform.onExit?.(() => void this.flush())
  }

  get backend(): Backend {
    return this.core.backend
  }

  get stats() {
    return { livePoints: this.core.livePoints, droppedPoints: this.core.droppedPoints, droppedPayloads: this.exporter.stats.dropped }
  }

  node(edgeTags: readonly string[]): CheckpointNode | null {
    try {
      let level = this.nodes
      for (let i = 0; i < edgeTags.length; i++) {
        let next = level.next.get(edgeTags[i])
        if (next === undefined) level.next.set(edgeTags[i], (next = { node: undefined, next: new Map() }))
        level = next
      }
      if (level.node === undefined) {
        const tags = [...edgeTags].sort()
        const id = this.core.node(this.service, this.env, tags)
        level.node = { id, direction: directionOf(tags), edgeTags: tags }
        this.nodeTags[id] = tags
      }
      return level.node
    } catch (err) {
      this.fail('node', err)
      return null
    }
  }

  setCheckpoint(
    edgeTags: readonly string[] | CheckpointNode,
    parent?: PathwayContext | null,
    payloadSize = 0,
    timing?: CheckpointTiming,
  ): PathwayContext | null {
    try {
      const node = isNode(edgeTags) ? edgeTags : this.node(edgeTags)
      if (node === null) return null
      if (parent === undefined) parent = this.platform.store.get() ?? null
      const now = nowMs()
      hangOff(node.direction, parent, now)
      if (timing !== undefined) {
        if (timing.pathwayStartMs !== undefined) hop.pathwayStart = timing.pathwayStartMs
        if (timing.edgeStartMs !== undefined) hop.edgeStart = timing.edgeStartMs
      }
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
    } catch (err) {
      this.fail('checkpoint', err)
      return null
    }
  }

  setCheckpointBatch(
    edgeTags: readonly string[] | CheckpointNode,
    parents: readonly (PathwayContext | null)[],
    payloadSizes?: ArrayLike<number>,
  ): (PathwayContext | null)[] {
    const count = parents.length
    try {
      const node = isNode(edgeTags) ? edgeTags : this.node(edgeTags)
      if (node === null) return new Array<null>(count).fill(null)
      const out = new Array<PathwayContext | null>(count)
      const now = nowMs()
      const bucket = Math.floor(now / BUCKET_MS)
      const direction = node.direction
      const rest = this.batchRest
      for (let first = 0; first < count; first += BATCH_CAPACITY) {
        const n = Math.min(BATCH_CAPACITY, count - first)
        let b = this.core.batchBuffer()
        for (let i = 0, r = 0, q = 0; i < n; i++, r += BATCH_STRIDE, q += REST_STRIDE) {
          hangOff(direction, parents[first + i], now)
          const { pathwayStart, edgeStart } = hop
          b[r + BATCH_NODE] = node.id
          b[r + BATCH_PARENT_HI] = hop.parentHi
          b[r + BATCH_PARENT_LO] = hop.parentLo
          b[r + BATCH_PATHWAY_LATENCY] = now > pathwayStart ? (now - pathwayStart) / 1000 : 0
          b[r + BATCH_EDGE_LATENCY] = now > edgeStart ? (now - edgeStart) / 1000 : 0
          b[r + BATCH_PAYLOAD] = payloadSizes === undefined ? 0 : payloadSizes[first + i]
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
    const node = this.manualNode(Direction.Out, type, target)
    if (node === null) return null
    const ctx = this.setCheckpoint(node, options?.parent, options?.payloadSize)
    if (ctx !== null) {
      try {
        carrier[PATHWAY_KEY] = encodePathwayContext(ctx)
      } catch (err) {
        this.fail('inject', err)
      }
    }
    return ctx
  }

  setConsumeCheckpoint(type: string, source: string, carrier: Carrier, options?: CheckpointOptions): PathwayContext | null {
    const node = this.manualNode(Direction.In, type, source)
    if (node === null) return null
    const parent = options?.parent !== undefined ? options.parent : extractPathwayContext(carrier)
    const ctx = this.setCheckpoint(node, parent, options?.payloadSize)
    if (ctx !== null) this.platform.store.enter(ctx)
    return ctx
  }

  private manualNode(direction: typeof Direction.In | typeof Direction.Out, type: string, topic: string): CheckpointNode | null {
    const byType = this.manualNodes[direction === Direction.In ? 0 : 1]
    let byTopic = byType.get(type)
    if (byTopic === undefined) byType.set(type, (byTopic = new Map()))
    let node = byTopic.get(topic)
    if (node === undefined) {
      const n = this.node([direction === Direction.In ? 'direction:in' : 'direction:out', `topic:${topic}`, `type:${type}`, 'manual_checkpoint:true'])
      if (n === null) return null
      byTopic.set(topic, (node = n))
    }
    return node
  }

  trackKafkaProduce(topic: string, partition: number, offset: number | string | bigint, clusterId?: string): void {
    const tags = ['type:kafka_produce', `topic:${topic}`, `partition:${partition}`]
    if (clusterId) tags.push(`kafka_cluster_id:${clusterId}`)
    this.track(tags, offset)
  }

  trackKafkaCommit(group: string, topic: string, partition: number, offset: number | string | bigint, clusterId?: string): void {
    const tags = ['type:kafka_commit', `consumer_group:${group}`, `topic:${topic}`, `partition:${partition}`]
    if (clusterId) tags.push(`kafka_cluster_id:${clusterId}`)
    this.track(tags, offset)
  }

  private track(tags: string[], offset: number | string | bigint): void {
    try {
      const value = Number(offset)
      if (!Number.isFinite(value)) return
      this.backlogs.track(Math.floor(nowMs() / BUCKET_MS), tags, value)
    } catch (err) {
      this.fail('backlog', err)
    }
  }

  currentContext(): PathwayContext | undefined {
    return this.platform.store.get()
  }

  runWithContext<T>(ctx: PathwayContext | null | undefined, fn: () => T): T {
    return this.platform.store.run(ctx ?? undefined, fn)
  }

  flush(): Promise<void> {
    return this.send(Infinity)
  }

  /** The timer's flush: only buckets that are over, so a bucket is sent once when it can. */
  private flushFinished(): Promise<void> {
    return this.send(Math.floor(nowMs() / BUCKET_MS))
  }

  private async send(beforeBucket: number): Promise<void> {
    try {
      const buckets = this.collect(beforeBucket)
      if (buckets.length > 0) {
        const payload = encodeStatsPayload(
          { env: this.env, service: this.service, version: this.config.version, tracerVersion: VERSION, tags: this.config.tags },
          buckets,
        )
        await this.exporter.send(payload)
      } else {
        await this.exporter.flush()
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
          edgeTags: this.nodeTags[p.node],
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
    for (const [bucket, backlogs] of this.backlogs.drain(beforeBucket)) {
      let b = byBucket.get(bucket)
      if (b === undefined) byBucket.set(bucket, (b = { bucket, points: [], backlogs: [] }))
      b.backlogs = backlogs
    }
    return [...byBucket.values()].sort((a, b) => a.bucket - b.bucket)
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
  readonly stats = { livePoints: 0, droppedPoints: 0, droppedPayloads: 0 }
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
    return new Array<null>(parents.length).fill(null)
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
    return fn()
  }
  flush(): Promise<void> {
    return Promise.resolve()
  }
  shutdown(): Promise<void> {
    return Promise.resolve()
  }
}

function isNode(value: readonly string[] | CheckpointNode): value is CheckpointNode {
  return !Array.isArray(value)
}

function directionOf(tags: readonly string[]): Direction {
  for (const t of tags) {
    if (t === 'direction:in') return Direction.In
    if (t === 'direction:out') return Direction.Out
  }
  return Direction.None
}
