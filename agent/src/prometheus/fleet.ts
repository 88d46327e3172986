import { DEFAULT_RANGE_S, type ApiContext, type Status, type SummaryBody } from '../views/api.js'
import { ViewCache } from '../views/view-cache.js'
import { rangeOf, type Range } from '../model/range.js'
import { CompactWriter } from 'pathwise/core'
import { CELL_WIDTH, EDGE, PATHWAY, SIZE as SIZE_SKETCH } from '../model/payload.js'
import { collectEdges } from '../views/topology.js'
import { BUCKET_MS, bucketStart, Store, type Cell, type Series } from '../model/store.js'
import type { TransactionsView } from '../views/transactions.js'
import { collectGarbage } from './collect-garbage.js'
import { readTransactions } from './fleet-transactions.js'
import { LATENCY, SIZE, type Layout } from './histogram.js'
import { fromLabel, pointKey, pointLabels, pointSeries } from './labels.js'
import { Lease, PromqlBusy, PromqlClient, PromqlTooLarge, type PromqlOptions, type RangeSeries } from './promql.js'
import { instantAsker, rangeAsker, readFamily, signature, type FamilyQuery, type RangeHistogram } from './range-histograms.js'

/**
 * The fleet view (`pathwise agent --prometheus URL`): the page and /api/* drawn from PromQL over
 * every agent Prometheus scrapes, instead of from this agent's memory. Each request fills a fresh
 * Store, with the same series an agent would hold, from the histograms of metrics.ts, so that the
 * map, the pathways and the lag are computed by the same code and answer the same shapes.
 *
 * Over a range, each stats point series holds one cell with the messages counted in the range (so
 * its rate is their number over the range), its quantiles read from the agents' buckets
 * (range-histograms.ts), each bucket's messages taken at its geometric middle, zeros at 0. The edge
 * chart (/api/edge) gets one cell per 10 s. A label set is read in shards of pathway hashes when
 * its answer would be too large for one (16, then 256), a shard at a time.
 *
 * Kafka offsets, JetStream pending counts and queue depths are read with the 10 s bucket each agent
 * took them in (`pathwise_kafka_offset_timestamp_seconds`, `pathwise_queue_depth_timestamp_seconds`),
 * every 5 s over the window, and kept per bucket as an agent keeps them (the highest of the agents),
 * so that lag pairs offsets of the same moment (views/lag.ts). A bucket's offsets are the latest of
 * their agent for 10 s (the tracers' flush interval): a scrape every 10 s or more often sees every
 * bucket (README "Many hosts"). Failed sends are the agents' counters' increase over the range
 * (a counter that first appears within it counts whole), summed, as an agent sums them.
 *
 * Memory: every answer is held against the client's budget until it is read into the store
 * (promql.ts), at most MAX_IN_FLIGHT views are built at once, and a snapshot is kept only while it is
 * reused (`CACHE_MS`, or as long as it took to build), then dropped.
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

/** Views answered from the same snapshot within this long (the page and `top` poll every second or two), or as long as it took to build. */
const CACHE_MS = 1000
const MAX_CACHED = 4
/** Snapshots being built at once; past this, requests are refused rather than queued onto Prometheus. */
const MAX_IN_FLIGHT = 4
/** Kafka offsets are sampled this often (s): twice a bucket. */
const OFFSET_STEP_S = 5
/** Offsets read again on each refresh, for the samples Prometheus took late. */
const OFFSET_OVERLAP_S = 60
const HEX_DIGITS = '0123456789abcdef'
/** Answers read since the last full garbage collection past which, once no view is being read, one is run (collect-garbage.ts). */
const COLLECT_AFTER_BYTES = 32 * 1024 * 1024

interface Snapshot {
  store: Store
  range: Range
  payloads: { accepted: number; rejected: number }
  lastPayloadAt: number | null
  /** Its summaries, computed once each for as long as it is reused. */
  summaries: ViewCache<SummaryBody>
}

interface Cached {
  at: number
  snapshot: Promise<Snapshot>
  /** How long it is reused once built. */
  ttl: number
}

/** The gauges of backlogs read per bucket: each value's gauge, the gauge of its bucket's start, and the backlog's tags from its labels. */
const BACKLOG_GAUGES: ReadonlyArray<[string, string, (metric: Record<string, string>) => string[] | null]> = [
  ['pathwise_kafka_offset', 'pathwise_kafka_offset_timestamp_seconds', backlogTags],
  ['pathwise_queue_depth', 'pathwise_queue_depth_timestamp_seconds', depthTags],
]

interface OffsetSeries {
  tags: string[]
  /** Bucket start (ms) → highest offset. */
  values: Map<number, number>
}

const FAMILIES = {
  edge: { name: 'pathwise_edge_latency_seconds', layout: LATENCY },
  pathway: { name: 'pathwise_pathway_latency_seconds', layout: LATENCY },
  size: { name: 'pathwise_payload_size_bytes', layout: SIZE },
} as const
type FamilyName = keyof typeof FAMILIES

export class PrometheusSource {
  readonly client: PromqlClient
  private readonly cache = new Map<number, Cached>()
  private inFlight = 0
  private readonly now: () => number
  /** Shard depth (0: one answer; 1: 16; 2: 256) each family last needed. */
  private readonly shardDepth = new Map<FamilyName, number>()
  /** Kafka offsets by agent series, kept across views and read incrementally. */
  private readonly offsetSeries = new Map<string, OffsetSeries>()
  private offsetsUntil = 0
  private offsetRefresh: { t: number; done: Promise<void> } | null = null
  private collectedAt = 0
  private collecting: NodeJS.Timeout | null = null

  constructor(private readonly options: PrometheusSourceOptions) {
    this.client = new PromqlClient(options)
    this.now = options.now ?? Date.now
  }

  /** The range (ms) a request asks for: `range` seconds, 10 s to the window. */
  rangeMsOf(url: URL): number {
    const asked = url.searchParams.has('range') ? Number(url.searchParams.get('range')) : DEFAULT_RANGE_S
    const seconds = Number.isFinite(asked) ? Math.min(Math.max(asked, 10), this.options.windowMs / 1000) : DEFAULT_RANGE_S
    return seconds * 1000
  }

  /** The API context for a request under /api/. Throws PromqlError when Prometheus cannot answer, PromqlBusy past the limits. */
  async context(url: URL): Promise<ApiContext> {
    const snap = await this.snapshot(rangeOf(this.now(), this.rangeMsOf(url)).rangeMs)
    const local = this.options.status
    const ctx: ApiContext = {
      store: snap.store,
      summaries: snap.summaries,
      status: () => ({
        ...local(),
        payloads: { ...snap.payloads, other: 0 },
        series: snap.store.seriesCount,
        cells: snap.store.cells,
        lastPayloadAt: snap.lastPayloadAt,
        prometheus: this.client.url,
      }),
    }
    if (url.pathname === '/api/edge') ctx.history = await this.asView(() => this.history(snap, url.searchParams.get('id') ?? ''))
    return ctx
  }

  /** `/api/transactions` from Prometheus (fleet-transactions.ts). */
  transactions(url: URL): Promise<TransactionsView> {
    return this.asView(() => readTransactions(this.client, this.now(), this.rangeMsOf(url)))
  }

  /** Reads `read` as one view: counted against MAX_IN_FLIGHT. */
  async asView<T>(read: () => Promise<T>): Promise<T> {
    if (this.inFlight >= MAX_IN_FLIGHT) throw new PromqlBusy(`busy: ${MAX_IN_FLIGHT} views are being read from Prometheus already; retry shortly`)
    this.inFlight++
    try {
      return await read()
    } finally {
      this.inFlight--
    }
  }

  private snapshot(rangeMs: number): Promise<Snapshot> {
    const now = this.now()
    const hit = this.cache.get(rangeMs)
    if (hit && now - hit.at < hit.ttl) return hit.snapshot
    const started = Date.now()
    const entry: Cached = { at: now, ttl: Infinity, snapshot: this.asView(() => this.build(now, rangeMs)) }
    if (this.cache.size >= MAX_CACHED) this.cache.delete(this.cache.keys().next().value as number)
    this.cache.set(rangeMs, entry)
    const drop = (): void => {
      if (this.cache.get(rangeMs) === entry) this.cache.delete(rangeMs)
      this.collectSoon()
    }
    entry.snapshot.then(
      () => {
        // Kept while it is reused, then dropped, so that a view nobody asks for holds no memory.
        entry.ttl = Math.max(CACHE_MS, Date.now() - started)
        setTimeout(drop, entry.ttl).unref()
      },
      // A failed snapshot is not kept.
      drop,
    )
    return entry.snapshot
  }

  /** Once no view is being read, a full collection if much has been read since the last: the memory of large answers goes back. */
  private collectSoon(): void {
    if (this.collecting || this.client.budget.total - this.collectedAt < COLLECT_AFTER_BYTES) return
    this.collecting = setTimeout(() => {
      this.collecting = null
      if (this.inFlight > 0) return this.collectSoon()
      this.collectedAt = this.client.budget.total
      collectGarbage()
    }, CACHE_MS)
    this.collecting.unref()
  }

  private async build(nowMs: number, rangeMs: number): Promise<Snapshot> {
    const range = rangeOf(nowMs, rangeMs)
    const t = nowMs / 1000
    const store = this.emptyStore(nowMs)
    const cells = new Map<string, Cell>()
    await this.family('edge', rangeMs, t, (sets) => {
      for (const [key, h] of sets) {
        const s = pointSeries(h.labels)
        if (!s) continue
        // A series with no messages in the range is in the window but not in the range, as in an agent's store.
        const cell = store.cellFor(s.service, s.env, s.hash, s.parent, s.edgeTags, h.count > 0 ? range.from : range.from - BUCKET_MS)
        if (cell !== null) cells.set(key, cell)
      }
      fill(store, cells, sets, LATENCY, EDGE)
    })
    await this.family('pathway', rangeMs, t, (sets) => fill(store, cells, sets, LATENCY, PATHWAY))
    await this.family('size', rangeMs, t, (sets) => fill(store, cells, sets, SIZE, SIZE_SKETCH))
    await this.refreshOffsets(t)
    for (const o of this.offsetSeries.values()) for (const [start, value] of o.values) store.recordBacklog(o.tags, start, value, false)
    await this.readFailedSends(store, range.from, rangeMs, t)
    const [payloads, last] = await Promise.all([
      this.client.instant('sum by (result) (pathwise_intake_payloads_total)', t),
      this.client.instant('max(pathwise_last_payload_timestamp_seconds)', t),
    ])
    const total = (result: string): number => payloads.find((p) => p.metric.result === result)?.value ?? 0
    const lastPayloadAt = last.length > 0 && Number.isFinite(last[0].value) ? Math.round(last[0].value * 1000) : null
    return { store, range, payloads: { accepted: total('accepted'), rejected: total('rejected') }, lastPayloadAt, summaries: new ViewCache() }
  }

  /**
   * Reads a family over the range, in shards of pathway hashes when one answer would be too large,
   * each shard read whole (its five answers) before `use` sees it, then released. The depth that was
   * needed is kept for the next view, and lowered again when the shards together would fit in a
   * quarter of one answer.
   */
  private async family(name: FamilyName, rangeMs: number, t: number, use: (sets: Map<string, RangeHistogram>) => void): Promise<void> {
    let bytes = 0
    const read = async (prefix: string): Promise<void> => {
      const lease = new Lease(this.client.budget)
      try {
        const answer = await readFamily(instantAsker(this.client, t, lease), statsFamily(name, prefix), rangeMs)
        bytes += lease.bytes
        use(answer.get(t) ?? new Map())
      } catch (err) {
        if (!(err instanceof PromqlTooLarge) || prefix.length >= 2) throw err
        this.shardDepth.set(name, Math.max(this.shardDepth.get(name) ?? 0, prefix.length + 1))
        lease.release()
        for (const h of HEX_DIGITS) await read(prefix + h)
      } finally {
        lease.release()
      }
    }
    const depth = this.shardDepth.get(name) ?? 0
    for (const prefix of prefixes(depth)) await read(prefix)
    if (depth > 0 && this.shardDepth.get(name) === depth && bytes < this.client.maxBytes / 4) this.shardDepth.set(name, depth - 1)
  }

  /** Brings the Kafka offsets up to `t` (s): the whole window the first time, then what is new; one refresh at a time. */
  private refreshOffsets(t: number): Promise<void> {
    if (this.offsetRefresh && this.offsetRefresh.t >= t - 1) return this.offsetRefresh.done
    const previous = this.offsetRefresh?.done ?? Promise.resolve()
    const done = previous.catch(() => {}).then(() => this.readOffsets(t))
    this.offsetRefresh = { t, done }
    done.catch(() => {
      if (this.offsetRefresh?.done === done) this.offsetRefresh = null
    })
    return done
  }

  private async readOffsets(t: number): Promise<void> {
    const windowS = this.options.windowMs / 1000
    // Steps end at `t` exactly: the latest scrape is read.
    const from = t - Math.ceil((t - Math.max(t - windowS, this.offsetsUntil - OFFSET_OVERLAP_S)) / OFFSET_STEP_S) * OFFSET_STEP_S
    const lease = new Lease(this.client.budget)
    try {
      const answers = await Promise.all(BACKLOG_GAUGES.map(([values, times]) => Promise.all([values, times].map((q) => this.client.range(q, from, t, OFFSET_STEP_S, lease)))))
      answers.forEach(([values, times], i) => this.keepOffsets(BACKLOG_GAUGES[i][0], values, times, BACKLOG_GAUGES[i][2]))
    } finally {
      lease.release()
    }
    const oldest = (t - windowS) * 1000
    for (const [sig, o] of this.offsetSeries) {
      for (const start of o.values.keys()) if (start <= oldest) o.values.delete(start)
      if (o.values.size === 0) this.offsetSeries.delete(sig)
    }
    this.offsetsUntil = Math.max(this.offsetsUntil, t)
  }

  /** Each bucket's highest value of a backlog gauge's series, by the bucket the agent took it in. */
  private keepOffsets(name: string, values: RangeSeries[], times: RangeSeries[], tagsOf: (metric: Record<string, string>) => string[] | null): void {
    const when = new Map<string, Map<number, number>>()
    for (const s of times) when.set(signature(s.metric, ''), new Map(s.values))
    for (const s of values) {
      const tags = tagsOf(s.metric)
      const at = when.get(signature(s.metric, ''))
      if (!tags || !at) continue
      const sig = `${name}:${signature(s.metric, '')}`
      let o = this.offsetSeries.get(sig)
      if (!o) this.offsetSeries.set(sig, (o = { tags, values: new Map() }))
      for (const [time, value] of s.values) {
        const bucket = at.get(time)
        if (bucket === undefined || !Number.isFinite(value) || !Number.isFinite(bucket)) continue
        const start = bucketStart(bucket * 1000)
        if (!(value <= (o.values.get(start) ?? -Infinity))) o.values.set(start, value)
      }
    }
  }

  /**
   * Each service's failed sends to a destination over the range, put in the range's first bucket:
   * per agent, its counter now less its value the range's length ago, as the stats' counts are read
   * (`m - m offset <range>`); whole where it had no value then (it appeared within the range) or less
   * (its agent restarted). Two instant answers, whatever the range's length.
   */
  private async readFailedSends(store: Store, firstBucket: number, rangeMs: number, t: number): Promise<void> {
    const lease = new Lease(this.client.budget)
    try {
      const [now, then] = await Promise.all([
        this.client.instant('pathwise_failed_sends_total', t, lease),
        this.client.instant(`pathwise_failed_sends_total offset ${Math.round(rangeMs)}ms`, t, lease),
      ])
      const before = new Map(then.map((s) => [signature(s.metric, ''), s.value]))
      for (const s of now) {
        const was = before.get(signature(s.metric, ''))
        const count = was === undefined || !Number.isFinite(was) || s.value < was ? s.value : s.value - was
        const tags = [`transport:${fromLabel(s.metric.transport)}`, `topic:${fromLabel(s.metric.topic)}`]
        if (count > 0 && Number.isFinite(count)) store.recordFailedSends(fromLabel(s.metric.service), tags, firstBucket, Math.round(count))
      }
    } finally {
      lease.release()
    }
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
    const q = { ...statsFamily('edge', ''), matcher: `pathway_hash=~"${[...new Set([...mine].map((s) => hex(s.hash)))].join('|')}"` }
    const wanted = new Set([...mine].map(keyOfSeries))
    // Evaluated at the end of each bucket of the range that has ended (what arrived within it), and now for the bucket still going.
    const current = bucketStart(snap.range.now)
    const first = current - snap.range.rangeMs + BUCKET_MS
    const partial = snap.range.now - current
    const lease = new Lease(this.client.budget)
    try {
      const [ended, filling] = await Promise.all([
        readFamily(rangeAsker(this.client, first / 1000, current / 1000, BUCKET_MS / 1000, lease), q, BUCKET_MS),
        partial > 0 ? readFamily(instantAsker(this.client, snap.range.now / 1000, lease), q, partial) : null,
      ])
      const steps = [...ended].map(([time, sets]): [number, Map<string, RangeHistogram>] => [time * 1000 - BUCKET_MS, sets])
      for (const [, sets] of filling ?? []) steps.push([current, sets])
      for (const [start, sets] of steps) {
        const cells = new Map<string, Cell>()
        for (const [key, h] of sets) {
          const s = pointSeries(h.labels)
          if (!s || !(h.count > 0) || !wanted.has(key)) continue
          const cell = history.cellFor(s.service, s.env, s.hash, s.parent, s.edgeTags, start)
          if (cell !== null) cells.set(key, cell)
        }
        fill(history, cells, sets, LATENCY, EDGE)
      }
    } finally {
      lease.release()
    }
    return history
  }

  private emptyStore(nowMs: number): Store {
    return new Store({ windowMs: this.options.windowMs, maxSeries: this.options.maxSeries, maxCells: 4 * this.options.maxSeries, now: () => nowMs })
  }
}

const hex = (hash: bigint): string => hash.toString(16).padStart(16, '0')

/** A stats family, of the pathway hashes starting with `prefix` (and only those, whatever Prometheus answers: a series is read in one shard). */
function statsFamily(name: FamilyName, prefix: string): FamilyQuery {
  return {
    ...FAMILIES[name],
    matcher: prefix === '' ? '' : `pathway_hash=~"${prefix}.*"`,
    keyOf: (labels) => (pointSeries(labels) && labels.pathway_hash.startsWith(prefix) ? pointKey(labels) : null),
  }
}

/** The pathway hash prefixes of a shard depth. */
function prefixes(depth: number): string[] {
  let out = ['']
  for (let d = 0; d < depth; d++) out = out.flatMap((p) => [...HEX_DIGITS].map((h) => p + h))
  return out
}

/** The key `pointKey` gives the answers of a series of the view's store. */
function keyOfSeries(s: Series): string {
  return pointKey(Object.fromEntries(pointLabels(s.service, s.env, s.hash, s.parent, s.edgeTags)))
}

function backlogTags(metric: Record<string, string>): string[] | null {
  const kind = metric.kind
  const topic = fromLabel(metric.topic)
  const group = fromLabel(metric.consumer_group)
  if (kind === 'nats_pending') return topic && group ? ['type:nats_pending', `stream:${topic}`, `consumer_group:${group}`] : null
  if ((kind !== 'produce' && kind !== 'commit' && kind !== 'high_watermark') || !topic) return null
  const tags = [`type:kafka_${kind}`, `topic:${topic}`, `partition:${fromLabel(metric.partition)}`]
  if (kind === 'commit' && group) tags.push(`consumer_group:${group}`)
  if (metric.kafka_cluster_id) tags.push(`kafka_cluster_id:${fromLabel(metric.kafka_cluster_id)}`)
  return tags
}

function depthTags(metric: Record<string, string>): string[] | null {
  const queueType = fromLabel(metric.queue_type)
  const topic = fromLabel(metric.topic)
  return queueType && topic ? ['type:queue_depth', `queue_type:${queueType}`, `topic:${topic}`, `state:${fromLabel(metric.state)}`] : null
}

/** Adds each label set's messages to one sketch of its cell (EDGE, PATHWAY or SIZE_SKETCH), at the middle of their bucket. */
function fill(store: Store, cells: Map<string, Cell>, sets: Map<string, RangeHistogram>, layout: Layout, sketch: number): void {
  const writer = new CompactWriter(CELL_WIDTH)
  for (const [key, h] of sets) {
    const cell = cells.get(key)
    if (cell === undefined) continue
    for (const [bucket, n] of h.buckets) if (n > 0 && Number.isFinite(n)) writer.add(sketch, layout.middle(bucket), n)
    store.mergeInto(cell, writer.endCell())
  }
}
