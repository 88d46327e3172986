import { BUCKET_MS, createSketchStore, type SketchStore } from 'pathwise/core'
import { cellWidth, Cells, coarseBefore, minuteStart, type Cell } from './cells.js'
import { CELL_WIDTH, type IntakePayload, type IntakePoint } from './payload.js'
import { edgeInfo, tagMap, type EdgeInfo } from './tags.js'

/**
 * The windowed aggregation: stats points of every service merged per series (service, env,
 * hash, parent hash, edge tags) and per bucket, the three sketches merged; Kafka backlog offsets
 * per key and bucket, the highest kept. The sketches are cells of pathwise's sketch store (the
 * Wasm core's, model/cells.ts), merged a slice of a payload at a time in one call: compact, about
 * 200 bytes a bucket of a busy series, and buckets older than 16 minutes rolled up a minute to a
 * cell. Buckets older than the window are evicted, and the number of series and of cells is capped,
 * so memory stays bounded whatever the tracers send: past a cap, new points are dropped and counted.
 *
 * With persistence on (`trackChanges`), each point's cell is also kept as it came, with its series
 * and 10 s bucket, for model/persistence.ts to merge into the database (in its writer thread, not here).
 */

export { BUCKET_MS }
export type { Cell }

/** The start of the 10 s bucket holding `t` (ms); for times before 1970 too. */
export const bucketStart = (t: number): number => t - (((t % BUCKET_MS) + BUCKET_MS) % BUCKET_MS)

export interface Series {
  key: string
  service: string
  env: string
  hash: bigint
  parent: bigint
  edgeTags: string[]
  info: EdgeInfo
  /** Bucket start (ms) → cell: 10 s buckets, and minutes before the store's roll-up (model/cells.ts). */
  cells: Cells
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
  /** Most cells (a series' bucket, or minute once rolled up, each three sketches). */
  maxCells: number
  now: () => number
}

export interface StoreCounters {
  points: number
  /** Points and backlogs dropped because a cap was reached. */
  dropped: number
  /** Of `dropped`, the points dropped at the cell cap. */
  droppedAtCellCap: number
  /** Points and backlogs older than the window, or too far in the future. */
  outOfWindow: number
}

/** What changed since the last `takeChanges`: each point's cell as it came, and backlog values. */
export interface Changes {
  /** The series and 10 s buckets changed, each once. */
  rows: Array<{ series: Series; start: number }>
  /** Per point: its row, and its cell, `bytes[ends[i - 1], ends[i])` (from 0 for the first). */
  entries: Uint32Array
  bytes: Uint8Array
  ends: Uint32Array
  backlogs: Array<{ series: BacklogSeries; start: number; value: number }>
}

/** Points' cells as they came, to be written: see Changes. */
class ChangeLog {
  rows: Changes['rows'] = []
  private rowOf = new Map<Series, Map<number, number>>()
  private entries: number[] = []
  private ends: number[] = []
  private bytes = new Uint8Array(64 * 1024)
  private length = 0

  add(series: Series, start: number, cells: Uint8Array, from: number, to: number): void {
    let byStart = this.rowOf.get(series)
    if (!byStart) this.rowOf.set(series, (byStart = new Map()))
    let row = byStart.get(start)
    if (row === undefined) {
      byStart.set(start, (row = this.rows.length))
      this.rows.push({ series, start })
    }
    const n = to - from
    if (this.length + n > this.bytes.length) {
      const bigger = new Uint8Array(Math.max(2 * this.bytes.length, this.length + n))
      bigger.set(this.bytes.subarray(0, this.length))
      this.bytes = bigger
    }
    this.bytes.set(cells.subarray(from, to), this.length)
    this.length += n
    this.entries.push(row)
    this.ends.push(this.length)
  }

  /** What was logged, and the log emptied. */
  take(): Omit<Changes, 'backlogs'> {
    const taken = { rows: this.rows, entries: Uint32Array.from(this.entries), bytes: this.bytes.slice(0, this.length), ends: Uint32Array.from(this.ends) }
    this.rows = []
    this.rowOf = new Map()
    this.entries = []
    this.ends = []
    this.length = 0
    return taken
  }
}

/** What makes a point's series, given its service and env. */
interface Identity {
  hashHi: number
  hashLo: number
  parentHi: number
  parentLo: number
  hash: bigint
  parent: bigint
  edgeTags: string[]
  /** The tags sorted and joined by commas. */
  sortedTags: string
}

/** A series as the intake finds it (Store.byHash). */
interface Known {
  series: Series
  hashHi: number
  parentHi: number
  parentLo: number
  sortedTags: string
}

/** The tag of pathwise's failed-send backlogs. */
export const FAILED_SENDS = 'type:pathwise_failed_sends'

/** How far ahead of the agent's clock a bucket may start (tracer clock skew). */
const MAX_FUTURE_MS = 10 * 60_000

export class Store {
  readonly windowMs: number
  readonly now: () => number
  /** Every cell's sketches: pathway, edge and size (model/payload.ts). */
  readonly sketches: SketchStore
  private readonly maxSeries: number
  private readonly maxCells: number
  private readonly seriesMap = new Map<string, Series>()
  /** The intake's way to a point's series without building its key: by the low half of its hash. */
  private readonly byHash = new Map<number, Known[]>()
  private readonly backlogMap = new Map<string, BacklogSeries>()
  /** Cells starting before this are minutes: where the last roll-up went. */
  private rolledBefore: number
  /** Persistence: the points' cells to write; null when nothing is persisted. */
  private changes: ChangeLog | null = null
  private readonly failedMap = new Map<string, FailedSendSeries>()
  private dirtyBacklogs = new Map<string, Set<number>>()
  readonly counters: StoreCounters = { points: 0, dropped: 0, droppedAtCellCap: 0, outOfWindow: 0 }
  lastPayloadAt: number | null = null
  private lastEvict = 0
  /** A slice's merge commands: cells, and where each point's bytes start. */
  private ids = new Int32Array(256)
  private starts = new Uint32Array(257)

  constructor(options: StoreOptions) {
    this.windowMs = options.windowMs
    this.maxSeries = options.maxSeries
    this.maxCells = options.maxCells
    this.now = options.now
    this.sketches = createSketchStore({ width: CELL_WIDTH })
    this.rolledBefore = coarseBefore(this.now())
  }

  get seriesCount(): number {
    return this.seriesMap.size + this.backlogMap.size + this.failedMap.size
  }

  get cells(): number {
    return this.sketches.cellCount
  }

  /** Bytes the cells' sketches take. */
  get cellBytes(): number {
    return this.sketches.byteCount
  }

  series(): IterableIterator<Series> {
    return this.seriesMap.values()
  }

  backlogs(): IterableIterator<BacklogSeries> {
    return this.backlogMap.values()
  }

  /** From now on, points are also kept as they came for `takeChanges` (persistence). */
  trackChanges(): void {
    this.changes ??= new ChangeLog()
  }

  failedSends(): IterableIterator<FailedSendSeries> {
    return this.failedMap.values()
  }

  ingest(payload: IntakePayload): void {
    const now = this.now()
    this.lastPayloadAt = now
    if (now - this.lastEvict >= BUCKET_MS) this.evict(now)
    let n = 0
    for (const bucket of payload.buckets) n += bucket.points.length
    this.reserve(n)
    let k = 0
    let bytes: Uint8Array | null = null
    let base = 0
    for (const bucket of payload.buckets) {
      const start = bucketStart(bucket.startMs)
      const inWindow = start > now - this.windowMs && start <= now + MAX_FUTURE_MS
      for (const p of bucket.points) {
        this.counters.points++
        if (bytes === null) [bytes, base] = [p.cells, p.start]
        this.starts[k] = p.start - base
        this.starts[k + 1] = p.end - base
        let cell: Cell | null = null
        let series: Series | null = null
        if (!inWindow) this.counters.outOfWindow++
        else if ((series = this.known(payload.service, payload.env, p) ?? this.seriesFor(payload.service, payload.env, p))) cell = this.cellIn(series, start)
        this.ids[k++] = cell ?? 0
        if (cell !== null) this.changes?.add(series!, start, p.cells, p.start, p.end)
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
    if (k === 0 || bytes === null) return
    this.sketches.merge(this.ids, bytes.subarray(base, base + this.starts[k]), this.starts, k)
  }

  /** The cell of a series and bucket, created if need be; null (and counted) past a cap. */
  cellFor(service: string, env: string, hash: bigint, parent: bigint, edgeTags: string[], start: number): Cell | null {
    const halves = { hashHi: Number(hash >> 32n), hashLo: Number(hash & 0xffffffffn), parentHi: Number(parent >> 32n), parentLo: Number(parent & 0xffffffffn) }
    const series = this.seriesFor(service, env, { ...halves, hash, parent, edgeTags, sortedTags: [...edgeTags].sort().join(',') })
    return series && this.cellIn(series, bucketStart(start))
  }

  /** Merges a cell in the compact form (pathway, edge and size, as CompactWriter writes them) into `cell`; false if it is not one. */
  mergeInto(cell: Cell, bytes: Uint8Array): boolean {
    return this.sketches.merge([cell], bytes, [0, bytes.length], 1) === 1
  }

  private reserve(n: number): void {
    if (n < this.ids.length) return
    const size = Math.max(n + 1, 2 * this.ids.length)
    this.ids = new Int32Array(size)
    this.starts = new Uint32Array(size + 1)
  }

  /** A point's series when it is known, found by its hashes, service, env and tags. */
  private known(service: string, env: string, p: IntakePoint): Series | undefined {
    const list = this.byHash.get(p.hashLo)
    if (list === undefined) return undefined
    for (const k of list) {
      if (k.hashHi === p.hashHi && k.parentLo === p.parentLo && k.parentHi === p.parentHi && k.sortedTags === p.sortedTags) {
        if (k.series.service === service && k.series.env === env) return k.series
      }
    }
    return undefined
  }

  /** A point's series, made if new; null past the series cap. */
  private seriesFor(service: string, env: string, p: Identity): Series | null {
    const key = `${service}\u0000${env}\u0000${p.hashHi}.${p.hashLo}.${p.parentHi}.${p.parentLo}\u0000${p.sortedTags}`
    let series = this.seriesMap.get(key)
    if (!series) {
      if (this.seriesCount >= this.maxSeries) {
        this.counters.dropped++
        return null
      }
      const { hash, parent, edgeTags } = p
      series = { key, service, env, hash, parent, edgeTags: [...edgeTags], info: edgeInfo(edgeTags), cells: new Cells(this.sketches) }
      this.seriesMap.set(key, series)
      const list = this.byHash.get(p.hashLo)
      const known: Known = { series, hashHi: p.hashHi, parentHi: p.parentHi, parentLo: p.parentLo, sortedTags: p.sortedTags }
      if (list) list.push(known)
      else this.byHash.set(p.hashLo, [known])
    }
    return series
  }

  private forget(series: Series): void {
    this.seriesMap.delete(series.key)
    const lo = Number(series.hash & 0xffffffffn)
    const list = this.byHash.get(lo)?.filter((k) => k.series !== series)
    if (list && list.length > 0) this.byHash.set(lo, list)
    else this.byHash.delete(lo)
  }

  /** The series' cell for bucket `start` (its minute's, once rolled up), created if need be; null past the cell cap. */
  private cellIn(series: Series, start: number): Cell | null {
    const at = start < this.rolledBefore ? minuteStart(start) : start
    const found = series.cells.get(at)
    if (found !== undefined) return found
    if (this.sketches.cellCount >= this.maxCells) {
      this.counters.dropped++
      this.counters.droppedAtCellCap++
      if (series.cells.size === 0) this.forget(series)
      return null
    }
    const cell = this.sketches.newCell()
    series.cells.insert(at, cell)
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
      if (dirty && this.changes) markDirty(this.dirtyBacklogs, key, start)
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

  /**
   * Drops everything older than the window (a minute's cell once its last bucket is), and rolls
   * the buckets older than 16 minutes up into their minutes.
   */
  evict(now = this.now()): void {
    this.lastEvict = now
    const oldest = now - this.windowMs
    const rollBefore = Math.max(this.rolledBefore, coarseBefore(now))
    for (const s of this.seriesMap.values()) {
      this.rollUp(s.cells, rollBefore)
      let old = 0
      while (old < s.cells.size && s.cells.startAt(old) + cellWidth(s.cells.startAt(old), rollBefore) - BUCKET_MS <= oldest) {
        this.sketches.freeCell(s.cells.cellAt(old))
        old++
      }
      s.cells.removeRange(0, old)
      if (s.cells.size === 0) this.forget(s)
    }
    this.rolledBefore = rollBefore
    for (const [key, s] of this.backlogMap) {
      for (const b of s.values.keys()) if (b <= oldest) s.values.delete(b)
      if (s.values.size === 0) this.backlogMap.delete(key)
    }
    for (const [key, s] of this.failedMap) {
      for (const b of s.counts.keys()) if (b <= oldest) s.counts.delete(b)
      if (s.counts.size === 0) this.failedMap.delete(key)
    }
  }

  /** The 10 s cells in [rolledBefore, rollBefore) into one cell per minute. */
  private rollUp(cells: Cells, rollBefore: number): void {
    let i = cells.indexOf(this.rolledBefore)
    let end = cells.indexOf(rollBefore)
    while (i < end) {
      const minute = minuteStart(cells.startAt(i))
      let j = i
      const sources: Cell[] = []
      while (j < end && minuteStart(cells.startAt(j)) === minute) sources.push(cells.cellAt(j++))
      const target = this.sketches.newCell()
      this.sketches.mergeCells(target, sources, sources.length)
      for (const c of sources) this.sketches.freeCell(c)
      cells.removeRange(i, j)
      cells.insert(minute, target)
      end -= j - i - 1
      i++
    }
  }

  /** Rows and backlog values changed since the last `takeChanges`. */
  get changed(): number {
    let backlogs = 0
    for (const starts of this.dirtyBacklogs.values()) backlogs += starts.size
    return (this.changes?.rows.length ?? 0) + backlogs
  }

  /** What changed since the last call, to write out. */
  takeChanges(): Changes | null {
    if (!this.changes) return null
    const backlogs: Changes['backlogs'] = []
    for (const [key, starts] of this.dirtyBacklogs) {
      const series = this.backlogMap.get(key)
      for (const start of starts) {
        const value = series?.values.get(start)
        if (series && value !== undefined) backlogs.push({ series, start, value })
      }
    }
    this.dirtyBacklogs = new Map()
    return { ...this.changes.take(), backlogs }
  }
}

function markDirty(dirty: Map<string, Set<number>>, key: string, start: number): void {
  let set = dirty.get(key)
  if (!set) dirty.set(key, (set = new Set()))
  set.add(start)
}
