import { DEFAULT_RANGE_S, type ApiContext, type Status } from '../views/api.js'
import { BUCKETS_PER_OCTAVE, bucketOf, LATENCY_BOUNDS, POINT_LABELS, SIZE_BOUNDS } from './metrics.js'
import { PromqlClient, PromqlError, type InstantSample, type PromqlOptions } from './promql.js'
import { rangeOf, type Range } from '../model/range.js'
import { CompactWriter } from 'pathwise/core'
import { CELL_WIDTH, EDGE, PATHWAY, SIZE } from '../model/payload.js'
import { collectEdges } from '../views/topology.js'
import { BUCKET_MS, bucketStart, Store, type Cell, type Series } from '../model/store.js'

/**
 * The fleet view (`pathwise agent --prometheus URL`): the page and /api/* drawn from PromQL over
 * every agent Prometheus scrapes, instead of from this agent's memory. Each request fills a fresh
 * Store, with the same series an agent would hold, from the summed histograms of metrics.ts, so
 * that the map, the pathways and the lag are computed by the same code and answer the same shapes.
 *
 * Over a range, each stats point series holds one cell with the messages counted in the range
 * (so its rate is their number over the range), its quantiles read from the summed buckets, each
 * bucket's messages taken at its geometric middle. The edge chart (/api/edge) gets one cell per
 * 10 s. Kafka offsets are the highest any agent reports, sampled every 10 s over the range.
 *
 * The counts over a range are `m - m offset R`, or `m` for a series born within the range or
 * reset (an agent restarted): Prometheus's increase() would leave out the first value of a series
 * born within the range, which is everything for a burst of messages on a new pathway.
 */

export interface PrometheusSourceOptions extends PromqlOptions {
  /** The longest range the view reads (the agent's --window). */
  windowMs: number
  /** Most series one view holds. */
  maxSeries: number
  /** This agent's own status, which the view's extends. */
  status: () => Status
  now?: () => number
}

const LABELS = POINT_LABELS.join(', ')
/** The geometric middle of a bucket is within this factor of anything in it. */
const HALF_BUCKET = 2 ** (1 / (2 * BUCKETS_PER_OCTAVE))
/** Views answered from the same snapshot within this long (the page and `top` poll every second). */
const CACHE_MS = 1000
const MAX_CACHED = 8
/** Snapshots being built at once; past this, requests are refused rather than queued onto Prometheus. */
const MAX_IN_FLIGHT = 4

/** Messages counted in the `ms` milliseconds up to the evaluation time (see the comment above). */
const increase = (metric: string, ms: number): string => `((${metric} - ${metric} offset ${Math.round(ms)}ms) >= 0) or ${metric}`

interface Snapshot {
  store: Store
  range: Range
  payloads: { accepted: number; rejected: number }
}

export class PrometheusSource {
  readonly client: PromqlClient
  private readonly cache = new Map<number, { at: number; snapshot: Promise<Snapshot> }>()
  private inFlight = 0
  private readonly now: () => number

  constructor(private readonly options: PrometheusSourceOptions) {
    this.client = new PromqlClient(options)
    this.now = options.now ?? Date.now
  }

  /** The API context for a request under /api/. Throws PromqlError when Prometheus cannot answer. */
  async context(url: URL): Promise<ApiContext> {
    const asked = url.searchParams.has('range') ? Number(url.searchParams.get('range')) : DEFAULT_RANGE_S
    const seconds = Number.isFinite(asked) ? Math.min(Math.max(asked, 10), this.options.windowMs / 1000) : DEFAULT_RANGE_S
    const snap = await this.snapshot(rangeOf(this.now(), seconds * 1000).rangeMs)
    const local = this.options.status
    const ctx: ApiContext = {
      store: snap.store,
      status: () => ({
        ...local(),
        payloads: { ...snap.payloads, other: 0 },
        series: snap.store.seriesCount,
        cells: snap.store.cells,
        prometheus: this.client.url,
      }),
    }
    if (url.pathname === '/api/edge') ctx.history = await this.history(snap, url.searchParams.get('id') ?? '')
    return ctx
  }

  private snapshot(rangeMs: number): Promise<Snapshot> {
    const now = this.now()
    const hit = this.cache.get(rangeMs)
    if (hit && now - hit.at < CACHE_MS) return hit.snapshot
    if (this.inFlight >= MAX_IN_FLIGHT) return Promise.reject(new PromqlError('busy: too many views being read from Prometheus, retry later'))
    this.inFlight++
    const snapshot = this.build(now, rangeMs).finally(() => this.inFlight--)
    for (const [key, entry] of this.cache) if (now - entry.at >= CACHE_MS) this.cache.delete(key)
    if (this.cache.size < MAX_CACHED) this.cache.set(rangeMs, { at: now, snapshot })
    // A failed snapshot is not kept.
    snapshot.catch(() => this.cache.delete(rangeMs))
    return snapshot
  }

  private async build(nowMs: number, rangeMs: number): Promise<Snapshot> {
    const range = rangeOf(nowMs, rangeMs)
    const t = nowMs / 1000
    const instant = (name: string): Promise<FamilyAnswer> => this.family(familyQueries(name, rangeMs), (q) => this.client.instant(q, t))
    const [edge, pathway, size, offsets, payloads] = await Promise.all([
      instant('pathwise_edge_latency_seconds'),
      instant('pathwise_pathway_latency_seconds'),
      instant('pathwise_payload_size_bytes'),
      this.client.range('max by (kind, consumer_group, topic, partition, kafka_cluster_id) (pathwise_kafka_offset)', t - rangeMs / 1000, t, BUCKET_MS / 1000),
      this.client.instant('sum by (result) (pathwise_intake_payloads_total)', t),
    ])
    const store = this.emptyStore(nowMs)
    const cells = new Map<string, Cell>()
    for (const { metric, value } of edge.totals) {
      const key = seriesKey(metric)
      const ids = key === null ? null : idsOf(metric)
      if (key === null || !ids) continue
      // A series with no messages in the range is in the window but not in the range, as in an agent's store.
      const start = value > 0 ? range.from : range.from - BUCKET_MS
      const cell = store.cellFor(metric.service, metric.env, ids.hash, ids.parent, edgeTags(metric), start)
      if (cell !== null) cells.set(key, cell)
    }
    fill(store, cells, edge, LATENCY_BOUNDS, EDGE)
    fill(store, cells, pathway, LATENCY_BOUNDS, PATHWAY)
    fill(store, cells, size, SIZE_BOUNDS, SIZE)
    for (const { metric, values } of offsets) {
      const tags = backlogTags(metric)
      if (tags) for (const [at, value] of values) if (Number.isFinite(value)) store.recordBacklog(tags, bucketStart(at * 1000), value, false)
    }
    const total = (result: string): number => payloads.find((p) => p.metric.result === result)?.value ?? 0
    return { store, range, payloads: { accepted: total('accepted'), rejected: total('rejected') } }
  }

  private async family(queries: string[], ask: (query: string) => Promise<Sample[]>): Promise<FamilyAnswer> {
    const [totals, sums, buckets] = await Promise.all(queries.map(ask))
    return { totals, sums, buckets }
  }

  /** The snapshot with one cell per 10 s for the series of one edge, for its chart. */
  private async history(snap: Snapshot, id: string): Promise<Store> {
    const history = this.emptyStore(snap.range.now)
    const acc = collectEdges(snap.store).get(id)
    const mine = new Set<Series>(acc?.series ?? [])
    for (const s of snap.store.series()) {
      if (mine.has(s)) continue
      for (const start of s.cells.keys()) history.cellFor(s.service, s.env, s.hash, s.parent, s.edgeTags, start)
    }
    for (const b of snap.store.backlogs()) for (const [start, value] of b.values) history.recordBacklog(b.tags, start, value, false)
    if (mine.size === 0) return history
    const matcher = `{pathway_hash=~"${[...new Set([...mine].map((s) => hex(s.hash)))].join('|')}"}`
    const step = BUCKET_MS / 1000
    // Evaluated at the end of each bucket of the range that has ended (what arrived within it), and now for the bucket still going.
    const current = bucketStart(snap.range.now)
    const first = current - snap.range.rangeMs + BUCKET_MS
    const partial = snap.range.now - current
    const byStep = new Map<number, FamilyAnswer>()
    const at = (time: number): FamilyAnswer => {
      let answer = byStep.get(time)
      if (!answer) byStep.set(time, (answer = { totals: [], sums: [], buckets: [] }))
      return answer
    }
    const kinds = ['totals', 'sums', 'buckets'] as const
    const [ended, filling] = await Promise.all([
      Promise.all(familyQueries('pathwise_edge_latency_seconds', BUCKET_MS, matcher).map((q) => this.client.range(q, first / 1000, current / 1000, step))),
      partial > 0 ? this.family(familyQueries('pathwise_edge_latency_seconds', partial, matcher), (q) => this.client.instant(q, snap.range.now / 1000)) : null,
    ])
    ended.forEach((series, i) => {
      for (const s of series) for (const [time, value] of s.values) at(time)[kinds[i]].push({ metric: s.metric, value })
    })
    if (filling) for (const kind of kinds) at((current + BUCKET_MS) / 1000)[kind].push(...filling[kind])
    const wanted = new Set([...mine].map(keyOfSeries))
    for (const [time, answer] of byStep) {
      const cells = new Map<string, Cell>()
      for (const { metric, value } of answer.totals) {
        const key = seriesKey(metric)
        const ids = idsOf(metric)
        if (key === null || !ids || !(value > 0) || !wanted.has(key) || cells.has(key)) continue
        const cell = history.cellFor(metric.service, metric.env, ids.hash, ids.parent, edgeTags(metric), time * 1000 - BUCKET_MS)
        if (cell !== null) cells.set(key, cell)
      }
      fill(history, cells, answer, LATENCY_BOUNDS, EDGE)
    }
    return history
  }

  private emptyStore(nowMs: number): Store {
    return new Store({ windowMs: this.options.windowMs, maxSeries: this.options.maxSeries, maxCells: 4 * this.options.maxSeries, now: () => nowMs })
  }
}

type Sample = InstantSample

const hex = (hash: bigint): string => hash.toString(16).padStart(16, '0')

/** The key `seriesKey` gives the answers of a series of the view's store. */
function keyOfSeries(s: Series): string {
  const { direction, type, topic, group } = s.info
  return [s.service, s.env, hex(s.hash), hex(s.parent), direction ?? '', type ?? '', topic ?? '', group ?? ''].join('\u0000')
}

/** The key of a stats point series among the answers, or null when its labels are not pathwise's. */
function seriesKey(metric: Record<string, string>): string | null {
  const parts: string[] = []
  for (const l of POINT_LABELS) {
    // A label that is empty is absent from Prometheus's answer.
    parts.push(metric[l] ?? '')
  }
  return metric.service ? parts.join('\u0000') : null
}

const HEX = /^[0-9a-f]{1,16}$/

function idsOf(metric: Record<string, string>): { hash: bigint; parent: bigint } | null {
  const h = metric.pathway_hash
  const p = metric.parent_hash
  if (!h || !p || !HEX.test(h) || !HEX.test(p)) return null
  return { hash: BigInt(`0x${h}`), parent: BigInt(`0x${p}`) }
}

/** The edge tags that give a series the same EdgeInfo as the agent's. */
function edgeTags(metric: Record<string, string>): string[] {
  const tags: string[] = []
  for (const key of ['direction', 'type', 'topic', 'group'] as const) if (metric[key]) tags.push(`${key}:${metric[key]}`)
  return tags
}

function backlogTags(metric: Record<string, string>): string[] | null {
  const { kind, topic, partition } = metric
  if (kind === 'nats_pending') return topic && metric.consumer_group ? ['type:nats_pending', `stream:${topic}`, `consumer_group:${metric.consumer_group}`] : null
  if ((kind !== 'produce' && kind !== 'commit' && kind !== 'high_watermark') || !topic || partition === undefined) return null
  const tags = [`type:kafka_${kind}`, `topic:${topic}`, `partition:${partition}`]
  if (kind === 'commit' && metric.consumer_group) tags.push(`consumer_group:${metric.consumer_group}`)
  if (metric.kafka_cluster_id) tags.push(`kafka_cluster_id:${metric.kafka_cluster_id}`)
  return tags
}

/**
 * A histogram family over `ms` up to the evaluation time, per stats point series: its messages, their
 * sum and its buckets, without those holding none (below its lowest value) and those holding all
 * (at and above the bucket of its highest value), which take most of a histogram's buckets and
 * tell nothing: the answer stays small however wide the layout.
 */
function familyQueries(name: string, ms: number, matcher = ''): string[] {
  const totals = `sum by (${LABELS}) (${increase(`${name}_count${matcher}`, ms)})`
  const sums = `sum by (${LABELS}) (${increase(`${name}_sum${matcher}`, ms)})`
  const buckets = `sum by (${LABELS}, le) (${increase(`${name}_bucket${matcher}`, ms)}) > 0 < on (${LABELS}) group_left ${totals}`
  return [totals, sums, buckets]
}

interface FamilyAnswer {
  totals: Sample[]
  sums: Sample[]
  buckets: Sample[]
}

/** The geometric middle of bucket `i` of `bounds` (the last is +Inf; the ones beyond the ends are one bucket wide). */
function middle(bounds: Float64Array, i: number): number {
  const lo = i > 0 ? bounds[i - 1] : bounds[0] / HALF_BUCKET ** 2
  const hi = i < bounds.length ? bounds[i] : bounds[bounds.length - 1] * HALF_BUCKET ** 2
  return Math.sqrt(lo) * Math.sqrt(hi)
}

/**
 * Adds each series' messages to sketch `sketch` (model/payload.ts) of its cell, at the middle of
 * their bucket. The buckets answered are consecutive; what is above the last of them is in the next
 * one, and when none is answered all the messages are in one bucket, the one their mean is in.
 */
function fill(store: Store, cells: Map<string, Cell>, answer: FamilyAnswer, bounds: Float64Array, sketch: number): void {
  const perSeries = new Map<string, { total: number; sum: number; buckets: Array<[number, number]> }>()
  for (const { metric, value } of answer.totals) {
    const key = seriesKey(metric)
    if (key !== null && cells.has(key) && value > 0 && Number.isFinite(value)) perSeries.set(key, { total: value, sum: 0, buckets: [] })
  }
  for (const { metric, value } of answer.sums) {
    const s = perSeries.get(seriesKey(metric) ?? '')
    if (s) s.sum = value
  }
  for (const { metric, value } of answer.buckets) {
    const s = perSeries.get(seriesKey(metric) ?? '')
    const le = Number(metric.le)
    if (s && le > 0 && Number.isFinite(le) && value > 0 && value < s.total) s.buckets.push([le, value])
  }
  const writer = new CompactWriter(CELL_WIDTH)
  for (const [key, { total, sum, buckets }] of perSeries) {
    buckets.sort((a, b) => a[0] - b[0])
    let below = 0
    for (const [le, cumulative] of buckets) {
      if (cumulative > below) writer.add(sketch, middle(bounds, bucketOf(bounds, le)), cumulative - below)
      below = Math.max(below, cumulative)
    }
    const last = buckets.length > 0 ? bucketOf(bounds, buckets[buckets.length - 1][0]) + 1 : bucketOf(bounds, sum / total)
    writer.add(sketch, middle(bounds, Math.min(last, bounds.length)), total - below)
    store.mergeInto(cells.get(key)!, writer.endCell())
  }
}
