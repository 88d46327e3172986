import { BUCKET_MS } from 'pathwise/core'
import type { IntakePayload } from './payload.js'
import { emptySketch, type Sketch } from './sketch.js'
import { edgeInfo, tagMap, type EdgeInfo } from './tags.js'

/**
 * The windowed aggregation: stats points of every service merged per series (service, env,
 * hash, parent hash, edge tags) and per 10 s bucket, the three sketches merged; Kafka backlog
 * offsets per key and bucket, the highest kept. Buckets older than the window are evicted, and
 * the number of series and of (series, bucket) cells is capped, so memory stays bounded
 * whatever the tracers send: past a cap, new points are dropped and counted.
 */

export { BUCKET_MS }

/** The start of the 10 s bucket holding `t` (ms); for times before 1970 too. */
export const bucketStart = (t: number): number => t - (((t % BUCKET_MS) + BUCKET_MS) % BUCKET_MS)

export interface Cell {
  pathway: Sketch
  edge: Sketch
  size: Sketch
}

export interface Series {
  key: string
  service: string
  env: string
  hash: bigint
  parent: bigint
  edgeTags: string[]
  info: EdgeInfo
  /** Bucket start (ms) → merged sketches. */
  cells: Map<number, Cell>
}

/** The backlog types kafka_produce, kafka_commit and kafka_high_watermark, without their `kafka_`, nats_pending, and queue_depth (messages waiting in a queue). */
export type BacklogKind = 'produce' | 'commit' | 'high_watermark' | 'nats_pending' | 'queue_depth'

export interface BacklogSeries {
  key: string
  kind: BacklogKind
  /** The Kafka topic; a JetStream consumer's stream. */
  topic: string
  /** The Kafka partition; '' for a JetStream consumer. */
  partition: string
  /** Consumer group (a JetStream consumer's durable name); '' for produce offsets. */
  group: string
  /** Kafka cluster id; '' when the tracer did not know it. */
  cluster: string
  /** queue_depth: the queue's transport (`queue_type`, e.g. rabbitmq) and the state of the messages counted (`state`, e.g. ready). */
  queueType?: string
  state?: string
  tags: string[]
  /** Bucket start (ms) → highest offset seen in that bucket. */
  values: Map<number, number>
}

/**
 * Sends a pathwise tracer checkpointed but whose send finally failed, per service, transport
 * and destination: the `pathwise_failed_sends` backlogs, whose values are counts, summed.
 */
export interface FailedSendSeries {
  key: string
  service: string
  /** The transport, as the produce checkpoint's `type` tag: kafka, sqs, sns, ... */
  transport: string
  topic: string
  /** Bucket start (ms) → sends that failed in that bucket. */
  counts: Map<number, number>
}

export interface StoreOptions {
  windowMs: number
  /** Most series (stats and backlog series together). */
  maxSeries: number
  /** Most (series, bucket) cells, each holding three sketches of up to 2048 bins. */
  maxCells: number
  now: () => number
}

export interface StoreCounters {
  points: number
  /** Points and backlogs dropped because a cap was reached. */
  dropped: number
  /** Points and backlogs older than the window, or too far in the future. */
  outOfWindow: number
}

/** The tag of pathwise's failed-send backlogs. */
export const FAILED_SENDS = 'type:pathwise_failed_sends'

/** How far ahead of the agent's clock a bucket may start (tracer clock skew). */
const MAX_FUTURE_MS = 10 * 60_000

export class Store {
  readonly windowMs: number
  readonly now: () => number
  private readonly maxSeries: number
  private readonly maxCells: number
  private readonly seriesMap = new Map<string, Series>()
  private readonly backlogMap = new Map<string, BacklogSeries>()
  private readonly failedMap = new Map<string, FailedSendSeries>()
  private cellCount = 0
  /** Cells and backlog values changed since `takeDirty`, for persistence. */
  private dirtyCells = new Map<string, Set<number>>()
  private dirtyBacklogs = new Map<string, Set<number>>()
  readonly counters: StoreCounters = { points: 0, dropped: 0, outOfWindow: 0 }
  lastPayloadAt: number | null = null
  private lastEvict = 0

  constructor(options: StoreOptions) {
    this.windowMs = options.windowMs
    this.maxSeries = options.maxSeries
    this.maxCells = options.maxCells
    this.now = options.now
  }

  get seriesCount(): number {
    return this.seriesMap.size + this.backlogMap.size + this.failedMap.size
  }

  get cells(): number {
    return this.cellCount
  }

  series(): IterableIterator<Series> {
    return this.seriesMap.values()
  }

  backlogs(): IterableIterator<BacklogSeries> {
    return this.backlogMap.values()
  }

  failedSends(): IterableIterator<FailedSendSeries> {
    return this.failedMap.values()
  }

  ingest(payload: IntakePayload): void {
    const now = this.now()
    this.lastPayloadAt = now
    if (now - this.lastEvict >= BUCKET_MS) this.evict(now)
    for (const bucket of payload.buckets) {
      const start = bucketStart(bucket.startMs)
      const inWindow = start > now - this.windowMs && start <= now + MAX_FUTURE_MS
      for (const p of bucket.points) {
        this.counters.points++
        if (!inWindow) {
          this.counters.outOfWindow++
          continue
        }
        const cell = this.cellFor(payload.service, payload.env, p.hash, p.parent, p.edgeTags, start)
        if (!cell) continue
        cell.pathway.merge(p.pathway)
        cell.edge.merge(p.edge)
        cell.size.merge(p.size)
      }
      for (const b of bucket.backlogs) {
        if (!inWindow) {
          this.counters.outOfWindow++
          continue
        }
        if (b.tags.includes(FAILED_SENDS)) this.recordFailedSends(payload.service, b.tags, start, b.value)
        else this.recordBacklog(b.tags, start, b.value)
      }
    }
  }

  /** The cell of a series and bucket, created if need be; null (and counted) past a cap. */
  cellFor(service: string, env: string, hash: bigint, parent: bigint, edgeTags: string[], start: number, dirty = true): Cell | null {
    const key = `${service}\u0000${env}\u0000${hash}\u0000${parent}\u0000${[...edgeTags].sort().join(',')}`
    let series = this.seriesMap.get(key)
    if (!series) {
      if (this.seriesCount >= this.maxSeries) {
        this.counters.dropped++
        return null
      }
      series = { key, service, env, hash, parent, edgeTags: [...edgeTags], info: edgeInfo(edgeTags), cells: new Map() }
      this.seriesMap.set(key, series)
    }
    let cell = series.cells.get(start)
    if (!cell) {
      if (this.cellCount >= this.maxCells) {
        this.counters.dropped++
        if (series.cells.size === 0) this.seriesMap.delete(key)
        return null
      }
      cell = { pathway: emptySketch(), edge: emptySketch(), size: emptySketch() }
      series.cells.set(start, cell)
      this.cellCount++
    }
    if (dirty) markDirty(this.dirtyCells, key, start)
    return cell
  }

  /**
   * Keeps the highest value per key and bucket. Only Kafka produce, commit and high watermark
   * offsets, JetStream consumers' pending counts and queue depths are read; other types are ignored.
   */
  recordBacklog(tags: string[], start: number, value: number, dirty = true): void {
    const map = tagMap(tags)
    const type = map.get('type')
    if (type === 'queue_depth') return this.recordQueueDepth(tags, map, start, value, dirty)
    const kind: BacklogKind | null =
      type === 'kafka_produce' ? 'produce' : type === 'kafka_commit' ? 'commit' : type === 'kafka_high_watermark' ? 'high_watermark' : type === 'nats_pending' ? 'nats_pending' : null
    const nats = kind === 'nats_pending'
    const topic = nats ? map.get('stream') : map.get('topic')
    const partition = nats ? '' : map.get('partition')
    if (!kind || !topic || partition === undefined) return
    const group = kind === 'commit' || nats ? (map.get('consumer_group') ?? '') : ''
    const cluster = map.get('kafka_cluster_id') ?? ''
    const key = `${kind}\u0000${cluster}\u0000${group}\u0000${topic}\u0000${partition}`
    this.keepBacklog(key, () => ({ key, kind, topic, partition, group, cluster, tags: [...tags], values: new Map() }), start, value, dirty)
  }

  /** A queue's depth in a state (`type:queue_depth`, `queue_type`, `topic`, `state`), highest per bucket. */
  private recordQueueDepth(tags: string[], map: Map<string, string>, start: number, value: number, dirty: boolean): void {
    const queueType = map.get('queue_type')
    const topic = map.get('topic')
    const state = map.get('state') ?? ''
    if (!queueType || !topic) return
    const key = `queue_depth\u0000${queueType}\u0000${state}\u0000${topic}`
    const make = (): BacklogSeries => ({ key, kind: 'queue_depth', topic, partition: '', group: '', cluster: '', queueType, state, tags: [...tags], values: new Map() })
    this.keepBacklog(key, make, start, value, dirty)
  }

  private keepBacklog(key: string, make: () => BacklogSeries, start: number, value: number, dirty: boolean): void {
    let series = this.backlogMap.get(key)
    if (!series) {
      if (this.seriesCount >= this.maxSeries) {
        this.counters.dropped++
        return
      }
      series = make()
      this.backlogMap.set(key, series)
    }
    const old = series.values.get(start)
    if (old === undefined || value > old) {
      series.values.set(start, value)
      if (dirty) markDirty(this.dirtyBacklogs, key, start)
    }
  }

  /** Adds a tracer's count of failed sends in a bucket (several payloads, or hosts of one service, add up). */
  recordFailedSends(service: string, tags: string[], start: number, value: number): void {
    const map = tagMap(tags)
    const transport = map.get('transport') ?? ''
    const topic = map.get('topic') ?? map.get('exchange') ?? ''
    if (!Number.isFinite(value) || value <= 0) return
    const key = `${service}\u0000${transport}\u0000${topic}`
    let series = this.failedMap.get(key)
    if (!series) {
      if (this.seriesCount >= this.maxSeries) {
        this.counters.dropped++
        return
      }
      series = { key, service, transport, topic, counts: new Map() }
      this.failedMap.set(key, series)
    }
    series.counts.set(start, (series.counts.get(start) ?? 0) + value)
  }

  /** Drops everything older than the window. */
  evict(now = this.now()): void {
    this.lastEvict = now
    const oldest = now - this.windowMs
    for (const [key, s] of this.seriesMap) {
      for (const b of s.cells.keys()) {
        if (b <= oldest) {
          s.cells.delete(b)
          this.cellCount--
        }
      }
      if (s.cells.size === 0) this.seriesMap.delete(key)
    }
    for (const [key, s] of this.backlogMap) {
      for (const b of s.values.keys()) if (b <= oldest) s.values.delete(b)
      if (s.values.size === 0) this.backlogMap.delete(key)
    }
    for (const [key, s] of this.failedMap) {
      for (const b of s.counts.keys()) if (b <= oldest) s.counts.delete(b)
      if (s.counts.size === 0) this.failedMap.delete(key)
    }
  }

  /** What changed since the last call: the cells and backlog values to write out. */
  takeDirty(): { cells: Array<{ series: Series; start: number; cell: Cell }>; backlogs: Array<{ series: BacklogSeries; start: number; value: number }> } {
    const cells: Array<{ series: Series; start: number; cell: Cell }> = []
    for (const [key, starts] of this.dirtyCells) {
      const series = this.seriesMap.get(key)
      for (const start of starts) {
        const cell = series?.cells.get(start)
        if (series && cell) cells.push({ series, start, cell })
      }
    }
    const backlogs: Array<{ series: BacklogSeries; start: number; value: number }> = []
    for (const [key, starts] of this.dirtyBacklogs) {
      const series = this.backlogMap.get(key)
      for (const start of starts) {
        const value = series?.values.get(start)
        if (series && value !== undefined) backlogs.push({ series, start, value })
      }
    }
    this.dirtyCells = new Map()
    this.dirtyBacklogs = new Map()
    return { cells, backlogs }
  }
}

function markDirty(dirty: Map<string, Set<number>>, key: string, start: number): void {
  let set = dirty.get(key)
  if (!set) dirty.set(key, (set = new Set()))
  set.add(start)
}
