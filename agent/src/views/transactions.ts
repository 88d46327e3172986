import { setImmediate as nextTurn } from 'node:timers/promises'
import { BUCKET_MS, bucketStart } from '../model/store.js'
import { emptySketch, quantilesOf, type Quantiles, type Sketch } from '../model/sketch.js'
import { transactionRecords, type RecordCounts, type TransactionsWire } from '../model/transaction-wire.js'

/**
 * Transaction tracking: for each pair of checkpoint names seen on the same transaction id (from any
 * tracer's `trackTransaction`), the latency from the earlier to the later, as sketches per 10 s
 * bucket of the later one. Memory is bounded by caps, each counted when it binds: the ids
 * remembered (least recently seen forgotten first), the checkpoints kept per id, the names, the
 * pairs and the (pair, bucket) cells; ids and cells older than the window go too. Kept in memory
 * only (not in `--db`).
 */

export interface TransactionLimits {
  /**
   * Transaction ids remembered at once; past it the least recently seen is forgotten. Default
   * 50,000: measured, about 25 MB for UUID ids of three checkpoints, 40 MB at most (255-byte ids of
   * MAX_CHECKPOINTS_PER_ID checkpoints).
   */
  maxIds: number
  /** Distinct checkpoint names (255 bytes at most each); past it records of new names are dropped. Default 10,000. */
  maxNames: number
  /** Checkpoint pairs; past it records that would start a new pair are not paired. Default 1,000. */
  maxPairs: number
  /** (pair, bucket) cells, each a sketch; past it new cells are dropped. Default 20,000. */
  maxCells: number
}

const DEFAULT_TRANSACTION_LIMITS: TransactionLimits = { maxIds: 50_000, maxNames: 10_000, maxPairs: 1_000, maxCells: 20_000 }

/** Checkpoints kept per id: pairs per id grow as their square. */
const MAX_CHECKPOINTS_PER_ID = 8
/** How far ahead of the agent's clock a record may be (tracer clock skew), as for stats buckets. */
const MAX_FUTURE_MS = 10 * 60_000
/** A payload's records are paired this long at a time before the event loop runs again. */
const SLICE_MS = 5

/**
 * What an id reached: `[latest time, checkpoint, time, checkpoint, time, ...]`, checkpoints as
 * indexes in the tracker's names (each name held once, however many ids and payloads bring it). A
 * flat array of exactly its length, replaced as it grows: about 100 bytes for three checkpoints.
 */
type Seen = number[]

interface Pair {
  from: string
  to: string
  /** Bucket start (ms) → latencies in seconds. */
  cells: Map<number, Sketch>
}

export interface TransactionCounters extends RecordCounts {
  /** Records read from payloads (with a known checkpoint). */
  records: number
  /** Records of a checkpoint already seen on their id (the first time is kept). */
  duplicates: number
  /** Records older than the window or too far ahead of the agent's clock. */
  outOfWindow: number
  /** Ids forgotten because `maxIds` were remembered. */
  evictedIds: number
  /** Latencies not kept: their pair or cell was past `maxPairs` or `maxCells`. */
  droppedLatencies: number
  /** Records of a new checkpoint name once `maxNames` were known. */
  droppedNames: number
}

export interface PairView {
  from: string
  to: string
  count: number
  /** Over the range, in seconds. */
  latency: Quantiles | null
  /** Per 10 s bucket of the range holding data, oldest first. */
  buckets: Array<{ start: number; count: number; latency: Quantiles | null }>
}

export interface TransactionsView {
  now: number
  rangeSeconds: number
  pairs: PairView[]
  ids: { tracked: number; max: number }
  counters: TransactionCounters
}

export class TransactionTracker {
  readonly counters: TransactionCounters = {
    records: 0,
    malformed: 0,
    unknownCheckpoint: 0,
    duplicates: 0,
    outOfWindow: 0,
    evictedIds: 0,
    droppedLatencies: 0,
    droppedNames: 0,
  }
  private readonly ids = new Map<string, Seen>()
  private readonly nameIndex = new Map<string, number>()
  private readonly names: string[] = []
  /** By `from * maxNames + to`. */
  private readonly pairs = new Map<number, Pair>()
  private cellCount = 0
  private readonly limits: TransactionLimits
  private readonly listeners: Array<(from: string, to: string, seconds: number) => void> = []

  constructor(
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
    limits: Partial<TransactionLimits> = {},
  ) {
    this.limits = { ...DEFAULT_TRANSACTION_LIMITS, ...limits }
  }

  /** Calls `listener` with every latency kept (not those past the caps): /metrics counts them. */
  onLatency(listener: (from: string, to: string, seconds: number) => void): void {
    this.listeners.push(listener)
  }

  /** Pairs a payload's records, letting the event loop run every few ms. */
  async ingest(wire: TransactionsWire | undefined): Promise<void> {
    if (wire === undefined) return
    this.evict()
    let started = performance.now()
    for (const r of transactionRecords(wire, this.counters)) {
      this.observe(r.id, r.checkpoint, r.ms)
      if (performance.now() - started >= SLICE_MS) {
        await nextTurn()
        started = performance.now()
      }
    }
  }

  /** One record: paired with each checkpoint its id reached before. */
  observe(id: string, name: string, ms: number): void {
    this.counters.records++
    const now = this.now()
    if (!(ms >= now - this.windowMs && ms <= now + MAX_FUTURE_MS)) return void this.counters.outOfWindow++
    let checkpoint = this.nameIndex.get(name)
    if (checkpoint === undefined) {
      if (this.names.length >= this.limits.maxNames) return void this.counters.droppedNames++
      this.nameIndex.set(name, (checkpoint = this.names.push(name) - 1))
    }
    const seen = this.ids.get(id)
    if (seen === undefined) {
      this.forgetOld(now)
      if (this.ids.size >= this.limits.maxIds) {
        this.ids.delete(this.ids.keys().next().value as string)
        this.counters.evictedIds++
      }
      this.ids.set(id, [ms, checkpoint, ms])
      return
    }
    for (let i = 1; i < seen.length; i += 2) if (seen[i] === checkpoint) return void this.counters.duplicates++
    for (let i = 1; i < seen.length; i += 2) {
      const other = seen[i]
      const at = seen[i + 1]
      const earlier = at <= ms
      this.add(earlier ? other : checkpoint, earlier ? checkpoint : other, Math.abs(ms - at) / 1000, Math.max(ms, at))
    }
    const next = seen.length < 1 + 2 * MAX_CHECKPOINTS_PER_ID ? [...seen, checkpoint, ms] : seen
    next[0] = Math.max(seen[0], ms)
    // Most recently seen last: the Map's order is the forgetting order.
    this.ids.delete(id)
    this.ids.set(id, next)
  }

  private add(from: number, to: number, seconds: number, at: number): void {
    const key = from * this.limits.maxNames + to
    let pair = this.pairs.get(key)
    if (pair === undefined) {
      if (this.pairs.size >= this.limits.maxPairs) return void this.counters.droppedLatencies++
      this.pairs.set(key, (pair = { from: this.names[from], to: this.names[to], cells: new Map() }))
    }
    const start = bucketStart(at)
    let cell = pair.cells.get(start)
    if (cell === undefined) {
      if (this.cellCount >= this.limits.maxCells) return void this.counters.droppedLatencies++
      pair.cells.set(start, (cell = emptySketch()))
      this.cellCount++
    }
    cell.accept(seconds)
    for (const listener of this.listeners) listener(pair.from, pair.to, seconds)
  }

  /** Forgets ids last seen before the window, oldest first (the Map's order is close to it). */
  private forgetOld(now: number): void {
    for (const [id, seen] of this.ids) {
      if (seen[0] >= now - this.windowMs) return
      this.ids.delete(id)
    }
  }

  /** Drops cells, and pairs left empty, older than the window. */
  evict(): void {
    const from = this.now() - this.windowMs
    for (const [key, pair] of this.pairs) {
      for (const start of pair.cells.keys()) {
        if (start + BUCKET_MS <= from) {
          pair.cells.delete(start)
          this.cellCount--
        }
      }
      if (pair.cells.size === 0) this.pairs.delete(key)
    }
    this.forgetOld(this.now())
  }

  /** The pairs with latencies over the last `rangeSeconds` (10 s to the window), busiest first. */
  view(rangeSeconds: number): TransactionsView {
    this.evict()
    const now = this.now()
    const rangeMs = Math.min(Math.max(Number.isFinite(rangeSeconds) ? rangeSeconds : 60, 10) * 1000, this.windowMs)
    const from = bucketStart(now) - Math.ceil(rangeMs / BUCKET_MS) * BUCKET_MS
    const pairs: PairView[] = []
    for (const pair of this.pairs.values()) {
      const all = emptySketch()
      const buckets: PairView['buckets'] = []
      for (const start of [...pair.cells.keys()].sort((a, b) => a - b)) {
        if (start < from) continue
        const cell = pair.cells.get(start)!
        all.merge(cell)
        buckets.push({ start, count: cell.count, latency: quantilesOf(cell) })
      }
      if (all.count > 0) pairs.push({ from: pair.from, to: pair.to, count: all.count, latency: quantilesOf(all), buckets })
    }
    pairs.sort((a, b) => b.count - a.count || a.from.localeCompare(b.from) || a.to.localeCompare(b.to))
    return { now, rangeSeconds: rangeMs / 1000, pairs, ids: { tracked: this.ids.size, max: this.limits.maxIds }, counters: { ...this.counters } }
  }
}

/** `GET /api/transactions?range=60`: the pairs' latencies (seconds) over the range and per bucket, and the tracker's counters. */
export function transactionsAnswer(tracker: TransactionTracker, url: URL): { status: number; body: TransactionsView } {
  return { status: 200, body: tracker.view(url.searchParams.has('range') ? Number(url.searchParams.get('range')) : 60) }
}
