import { setImmediate as nextTurn } from 'node:timers/promises'
import { BUCKET_MS } from './store.js'
import { emptySketch, quantilesOf, type Quantiles, type Sketch } from './sketch.js'
import { transactionRecords, type RecordCounts, type TransactionsWire } from './transaction-wire.js'

/**
 * Transaction tracking: for each pair of checkpoint names seen on the same transaction id (from any
 * tracer's `trackTransaction`), the latency from the earlier to the later, as sketches per 10 s
 * bucket of the later one. Memory is bounded by three caps, each counted when it binds: the ids
 * remembered (least recently seen forgotten first), the pairs, and the (pair, bucket) cells; ids
 * and cells older than the window go too. Kept in memory only (not in `--db`).
 */

export interface TransactionLimits {
  /** Transaction ids remembered at once; past it the least recently seen is forgotten. Default 50,000 (about 20 MB at most). */
  maxIds: number
  /** Checkpoint pairs; past it records that would start a new pair are not paired. Default 1,000. */
  maxPairs: number
  /** (pair, bucket) cells, each a sketch; past it new cells are dropped. Default 20,000. */
  maxCells: number
}

export const DEFAULT_TRANSACTION_LIMITS: TransactionLimits = { maxIds: 50_000, maxPairs: 1_000, maxCells: 20_000 }

/** Checkpoints kept per id: pairs per id grow as their square. */
const MAX_CHECKPOINTS_PER_ID = 16
/** How far ahead of the agent's clock a record may be (tracer clock skew), as for stats buckets. */
const MAX_FUTURE_MS = 10 * 60_000
/** A payload's records are paired this long at a time before the event loop runs again. */
const SLICE_MS = 5

interface Seen {
  checkpoints: string[]
  times: number[]
  /** The latest time among them: an id last seen before the window is forgotten. */
  last: number
}

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
  readonly counters: TransactionCounters = { records: 0, malformed: 0, unknownCheckpoint: 0, duplicates: 0, outOfWindow: 0, evictedIds: 0, droppedLatencies: 0 }
  private readonly ids = new Map<string, Seen>()
  private readonly pairs = new Map<string, Pair>()
  private cellCount = 0
  private readonly limits: TransactionLimits

  constructor(
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
    limits: Partial<TransactionLimits> = {},
  ) {
    this.limits = { ...DEFAULT_TRANSACTION_LIMITS, ...limits }
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
  observe(id: string, checkpoint: string, ms: number): void {
    this.counters.records++
    const now = this.now()
    if (!(ms >= now - this.windowMs && ms <= now + MAX_FUTURE_MS)) return void this.counters.outOfWindow++
    const seen = this.ids.get(id)
    if (seen === undefined) {
      this.forgetOld(now)
      if (this.ids.size >= this.limits.maxIds) {
        this.ids.delete(this.ids.keys().next().value as string)
        this.counters.evictedIds++
      }
      this.ids.set(id, { checkpoints: [checkpoint], times: [ms], last: ms })
      return
    }
    if (seen.checkpoints.includes(checkpoint)) return void this.counters.duplicates++
    for (let i = 0; i < seen.checkpoints.length; i++) {
      const earlier = seen.times[i] <= ms
      this.add(earlier ? seen.checkpoints[i] : checkpoint, earlier ? checkpoint : seen.checkpoints[i], Math.abs(ms - seen.times[i]) / 1000, Math.max(ms, seen.times[i]))
    }
    // Most recently seen last: the Map's order is the forgetting order.
    this.ids.delete(id)
    if (seen.checkpoints.length < MAX_CHECKPOINTS_PER_ID) {
      seen.checkpoints.push(checkpoint)
      seen.times.push(ms)
    }
    seen.last = Math.max(seen.last, ms)
    this.ids.set(id, seen)
  }

  private add(from: string, to: string, seconds: number, at: number): void {
    const key = `${from}\u0000${to}`
    let pair = this.pairs.get(key)
    if (pair === undefined) {
      if (this.pairs.size >= this.limits.maxPairs) return void this.counters.droppedLatencies++
      this.pairs.set(key, (pair = { from, to, cells: new Map() }))
    }
    const start = at - (at % BUCKET_MS)
    let cell = pair.cells.get(start)
    if (cell === undefined) {
      if (this.cellCount >= this.limits.maxCells) return void this.counters.droppedLatencies++
      pair.cells.set(start, (cell = emptySketch()))
      this.cellCount++
    }
    cell.accept(seconds)
  }

  /** Forgets ids last seen before the window, oldest first (the Map's order is close to it). */
  private forgetOld(now: number): void {
    for (const [id, seen] of this.ids) {
      if (seen.last >= now - this.windowMs) return
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
    const from = now - (now % BUCKET_MS) - Math.ceil(rangeMs / BUCKET_MS) * BUCKET_MS
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
