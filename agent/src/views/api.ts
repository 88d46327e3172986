import { lagHistory, lagRows, natsLagHistory, queueLag, type LagHistory, type LagRow } from './lag.js'
import { bucketWidth, mergeCells, rangeOf, type Range } from '../model/range.js'
import { quantilesOf, type Quantiles } from '../model/sketch.js'
import type { Store } from '../model/store.js'
import type { ForwardStats } from '../intake/forward.js'
import type { PersistenceStatus } from '../model/persistence.js'
import { collectEdges, pathways, topology, type EdgeView, type NodeView, type PathwayView } from './topology.js'
import type { ViewCache } from './view-cache.js'
import { withQueueJobs } from './queue-jobs.js'

/**
 * The JSON API under `/api/`: what the page, `pathwise top` and anyone else read.
 *   GET /api/summary?range=60   everything below in one answer (what the page polls)
 *   GET /api/topology           nodes and edges
 *   GET /api/pathways           pathways with end-to-end latency
 *   GET /api/lag                Kafka consumer lag per group, topic and partition (a queue's lag is on its consume edges)
 *   GET /api/edge?id=EDGE_ID    one edge: its latency and throughput per bucket, and its lag
 *   GET /api/status             intake counters and settings
 * `range` (seconds, default 60, at most the window) is how far back rates and quantiles look.
 * Latencies are in seconds, sizes in bytes, rates in messages per second, times in ms since the epoch.
 */

export interface Status {
  version: string
  startedAt: number
  uptimeSeconds: number
  windowSeconds: number
  /** Pipeline stats payloads accepted and rejected; `other`: trace, stats and telemetry payloads taken and dropped. */
  payloads: { accepted: number; rejected: number; other: number }
  /** `droppedByTracers`: checkpoints tracers' own point caps dropped (pathwise says so in its payloads), by service. */
  points: { received: number; dropped: number; outOfWindow: number; droppedByTracers: Record<string, number> }
  series: number
  cells: number
  lastPayloadAt: number | null
  lastRejection: { at: number; reason: string } | null
  forward: ForwardStats | null
  db: string | null
  /** With `--db`: pending and failed writes. */
  dbWrites: PersistenceStatus | null
  /** With `--prometheus`: the Prometheus the view reads the fleet from (the numbers above are then the fleet's). */
  prometheus: string | null
}

export interface ApiContext {
  store: Store
  status(): Status
  /** Where /api/edge reads an edge's buckets and lag history, when not from `store` (the fleet view's, prometheus/fleet.ts). */
  history?: Store
  /** Summaries reused while the store is unchanged, or a while when they are slow to compute (view-cache.ts). */
  summaries?: ViewCache<SummaryBody>
}

export interface Summary {
  now: number
  rangeSeconds: number
  nodes: NodeView[]
  edges: EdgeView[]
  pathways: PathwayView[]
  lag: LagRow[]
  status: Status
}

export interface EdgeDetail {
  now: number
  edge: EdgeView
  /** One entry per bucket of the window that holds data for the edge, oldest first; `filling`: not settled yet (see model/range.ts). */
  buckets: Array<{ start: number; count: number; rate: number; latency: Quantiles | null; filling: boolean }>
  lag: LagRow[]
  lagHistory: LagHistory[]
}

/** What a summary computes: all but its time and the status, which each answer reads afresh. */
export type SummaryBody = Omit<Summary, 'now' | 'status'>

export const DEFAULT_RANGE_S = 60

export function summary(ctx: ApiContext, rangeSeconds = DEFAULT_RANGE_S): Summary {
  const { range, compute, key, large } = summaryOf(ctx, rangeSeconds)
  const s = ctx.summaries ? ctx.summaries.get(range.rangeMs, key, large, compute) : compute()
  return { now: range.now, ...s, status: ctx.status() }
}

/** `summary` as the JSON text /api/summary answers: the part computed from the store serialized once per computation. */
export function summaryJson(ctx: ApiContext, rangeSeconds = DEFAULT_RANGE_S): string {
  const { range, compute, key, large } = summaryOf(ctx, rangeSeconds)
  const body = ctx.summaries ? ctx.summaries.json(range.rangeMs, key, large, compute) : JSON.stringify(compute())
  return `{"now":${range.now},${body.slice(1, -1)},"status":${JSON.stringify(ctx.status())}}`
}

/**
 * A summary's range now, how to compute it, and what it is computed from (the store's counts, which
 * each payload changes, and the range's buckets): read without going through the store's cells, so
 * that a summary reused costs next to nothing. Computing it evicts what left the window since the
 * last eviction tick first, so that it is not shown.
 */
function summaryOf(ctx: ApiContext, rangeSeconds: number): { range: Range; compute: () => SummaryBody; key: string; large: boolean } {
  const { store } = ctx
  const range = rangeOf(store.now(), secondsOf(store, rangeSeconds) * 1000)
  const c = store.counters
  const key = [c.points, c.dropped, c.outOfWindow, store.seriesCount, store.cells, store.lastPayloadAt, range.from, range.settled].join(',')
  const compute = (): SummaryBody => {
    store.evict()
    return computeSummary(store, rangeFor(store, rangeSeconds))
  }
  return { range, compute, key, large: store.seriesCount >= LARGE_SERIES }
}

function computeSummary(store: Store, range: Range): SummaryBody {
  const { nodes, edges } = topology(store, range)
  withQueueJobs(store, nodes)
  const lag = lagRows(store, range)
  for (const e of edges) {
    const depth = e.kind === 'consume' && e.type !== 'kafka' && e.topic ? queueLag(store, e.type, e.topic, e.rate) : null
    if (depth !== null) e.lag = depth
    const rows = lagOf(e, lag)
    if (rows.length === 0) continue
    e.lag = {
      messages: rows.some((r) => r.lagMessages === null) ? null : rows.reduce((sum, r) => sum + (r.lagMessages ?? 0), 0),
      seconds: rows.some((r) => r.lagSeconds === null) ? null : Math.max(...rows.map((r) => r.lagSeconds ?? 0)),
    }
  }
  addFailedSends(store, edges, range)
  return { rangeSeconds: range.rangeMs / 1000, nodes, edges, pathways: pathways(store, range), lag }
}

/** The lag rows of a consume edge: a Kafka group's on its topic, a JetStream durable consumer's. */
function lagOf(e: EdgeView, lag: LagRow[]): LagRow[] {
  if (e.kind !== 'consume' || !e.group) return []
  if (e.type === 'kafka') return lag.filter((r) => r.transport === 'kafka' && r.group === e.group && r.topic === e.topic)
  return e.type === 'nats' ? lag.filter((r) => r.transport === 'nats' && r.group === e.group) : []
}

/** A store this large is slow to summarize by its size, not because the machine is busy: its summary may be reused a while after a change (view-cache.ts). */
const LARGE_SERIES = 2_000

const secondsOf = (store: Store, rangeSeconds: number): number =>
  Number.isFinite(rangeSeconds) ? Math.min(Math.max(rangeSeconds, 10), store.windowMs / 1000) : DEFAULT_RANGE_S

/** Each produce edge's failed sends over the range, from its service's `pathwise_failed_sends` backlogs. */
function addFailedSends(store: Store, edges: EdgeView[], range: Range): void {
  for (const f of store.failedSends()) {
    let count = 0
    for (const [start, n] of f.counts) if (start >= range.from) count += n
    if (count === 0) continue
    const edge = edges.find((e) => e.kind === 'produce' && e.from === `service:${f.service}` && e.type === f.transport && e.topic === f.topic)
    if (edge) edge.failedSends = (edge.failedSends ?? 0) + count
  }
}

function rangeFor(store: Store, rangeSeconds: number): Range {
  return rangeOf(store.now(), secondsOf(store, rangeSeconds) * 1000, [...store.series()].map((s) => s.cells))
}

export function edgeDetail(ctx: ApiContext, id: string, rangeSeconds = DEFAULT_RANGE_S): EdgeDetail | null {
  const s = summary(ctx, rangeSeconds)
  const range = rangeFor(ctx.store, rangeSeconds)
  const edge = s.edges.find((e) => e.id === id)
  const history = ctx.history ?? ctx.store
  const acc = collectEdges(history).get(id)
  if (!edge || !acc) return null
  const starts = new Set<number>()
  for (const series of acc.series) for (const start of series.cells.keys()) starts.add(start)
  const buckets = [...starts]
    .sort((a, b) => a - b)
    .map((start) => {
      // A range of exactly this bucket (or minute, once rolled up): its count over its time (or, still filling, over the time it has covered).
      const filling = start >= range.settled
      const width = bucketWidth(start, s.now)
      const m = mergeCells(
        acc.series.map((series) => series.cells),
        { now: s.now, rangeMs: width, from: start, until: start + width, settled: filling ? start : start + width, rateFrom: start },
      )
      return { start, count: m.count, rate: m.rate, latency: quantilesOf(m.edge), filling }
    })
  const lag = lagOf(edge, s.lag)
  return {
    now: s.now,
    edge,
    buckets,
    lag,
    lagHistory: lag.length === 0 ? [] : edge.type === 'nats' ? natsLagHistory(history, edge.group!) : lagHistory(history, edge.group!, edge.topic!, range),
  }
}

export interface ApiAnswer {
  status: number
  /** The answer, or its JSON text already. */
  body: unknown
  json?: string
}

/** Answers a GET under /api/, or null when the path is not an API route. */
export function handleApi(ctx: ApiContext, url: URL): ApiAnswer | null {
  const range = url.searchParams.has('range') ? Number(url.searchParams.get('range')) : DEFAULT_RANGE_S
  switch (url.pathname) {
    case '/api/summary':
      return { status: 200, body: null, json: summaryJson(ctx, range) }
    case '/api/topology': {
      const { now, rangeSeconds, nodes, edges } = summary(ctx, range)
      return { status: 200, body: { now, rangeSeconds, nodes, edges } }
    }
    case '/api/pathways': {
      const { now, rangeSeconds, pathways: list } = summary(ctx, range)
      return { status: 200, body: { now, rangeSeconds, pathways: list } }
    }
    case '/api/lag': {
      const { now, rangeSeconds, lag } = summary(ctx, range)
      return { status: 200, body: { now, rangeSeconds, lag } }
    }
    case '/api/status':
      return { status: 200, body: ctx.status() }
    case '/api/edge': {
      const id = url.searchParams.get('id') ?? ''
      const detail = edgeDetail(ctx, id, range)
      return detail ? { status: 200, body: detail } : { status: 404, body: { error: `no edge ${JSON.stringify(id)}` } }
    }
    default:
      return null
  }
}
