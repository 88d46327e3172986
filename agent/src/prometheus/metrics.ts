import { setImmediate as nextTurn } from 'node:timers/promises'
import { Counter, Gauge, Registry } from 'prom-client'
import type { Status } from '../views/api.js'
import type { IntakePayload, IntakePoint } from '../model/payload.js'
import { lagRows } from '../views/lag.js'
import { rangeOf } from '../model/range.js'
import { keyValue, type SketchBins } from '../model/sketch.js'
import type { Store } from '../model/store.js'
import { edgeInfo } from '../model/tags.js'

/**
 * `GET /metrics` in the Prometheus exposition format, written by prom-client: what Prometheus
 * scrapes so that one view can draw the map of a fleet of agents (fleet.ts).
 *
 * Per stats point series (a service's pathway hash and parent hash with its edge tags), three
 * histograms count everything the agent received since it started: edge latency, end-to-end
 * (pathway) latency and payload size; their `_count` is the messages, their `_sum` the seconds or
 * bytes. Counters of several agents add up, so the fleet's quantiles come from the summed buckets.
 * The buckets are log-spaced, 8 an octave (each bound 2^(1/8) = 1.0905 times the one below), so a
 * bucket's geometric middle is within 4.4% of any value in it: see README "Many hosts".
 * Kafka offsets are gauges (the latest produce and commit offsets), from which lag is computed.
 */

/** Bounds are 2^(k / BUCKETS_PER_OCTAVE). */
export const BUCKETS_PER_OCTAVE = 8
/** Latency bounds: 2^-13 s (122 µs) to 2^12 s (68 min). */
const LATENCY_OCTAVES = [-13, 12] as const
/** Size bounds: 2^5 (32 B) to 2^24 (16 MiB). */
const SIZE_OCTAVES = [5, 24] as const

function bounds([lo, hi]: readonly [number, number]): Float64Array {
  const out = new Float64Array((hi - lo) * BUCKETS_PER_OCTAVE + 1)
  for (let i = 0; i < out.length; i++) out[i] = 2 ** (lo + i / BUCKETS_PER_OCTAVE)
  return out
}

export const LATENCY_BOUNDS = bounds(LATENCY_OCTAVES)
export const SIZE_BOUNDS = bounds(SIZE_OCTAVES)

/** The labels of a stats point series, in order. */
export const POINT_LABELS = ['service', 'env', 'pathway_hash', 'parent_hash', 'direction', 'type', 'topic', 'group'] as const
export type PointLabels = Record<(typeof POINT_LABELS)[number], string>

/** Label sets (stats point series) counted by default; each is 3 histograms, about 560 Prometheus series. */
const DEFAULT_MAX_METRIC_SERIES = 1000

/** Counts per bucket (not cumulative; the last one is +Inf), their sum and total. */
class Buckets {
  readonly counts: Float64Array
  sum = 0
  count = 0
  constructor(private readonly layout: Layout) {
    this.counts = new Float64Array(layout.bounds.length + 1)
  }

  /** Adds every bin of a sketch at its key's value. */
  add(sketch: SketchBins): void {
    if (sketch.zeroCount > 0) {
      this.counts[0] += sketch.zeroCount
      this.count += sketch.zeroCount
    }
    sketch.forEachBin(this.addBin)
  }

  private readonly addBin = (key: number, n: number): void => {
    const [bucket, value] = this.layout.of(key)
    this.counts[bucket] += n
    this.sum += value * n
    this.count += n
  }
}

/**
 * Bucket bounds, and which bucket each sketch key falls in: every sketch of the agent has the same
 * 1% mapping, so a key's bucket and value are computed once (keys span a few thousand at most).
 */
class Layout {
  private readonly keys = new Map<number, readonly [number, number]>()
  constructor(readonly bounds: Float64Array) {}

  of(key: number): readonly [number, number] {
    let known = this.keys.get(key)
    if (!known) {
      const value = keyValue(key)
      known = [bucketOf(this.bounds, value), value] as const
      if (this.keys.size < MAX_KEYS) this.keys.set(key, known)
    }
    return known
  }
}

/** Sketch keys whose bucket is remembered (a 1% sketch spans about 2,100 keys from 1 ns to 1,000 years). */
const MAX_KEYS = 10_000

/** The index of the first bound at or above `value`, or bounds.length (+Inf). */
export function bucketOf(b: Float64Array, value: number): number {
  if (!(value > b[0])) return 0
  let i = Math.ceil((Math.log2(value) - Math.log2(b[0])) * BUCKETS_PER_OCTAVE)
  // Rounding of the logarithm near a bound.
  if (i > 0 && value <= b[i - 1]) i--
  else if (i < b.length && value > b[i]) i++
  return Math.min(Math.max(i, 0), b.length)
}

interface Counted {
  labels: PointLabels
  /** The labels as written between braces. */
  labelText: string
  edge: Buckets
  pathway: Buckets
  size: Buckets
  lastSeen: number
}

/**
 * A histogram family whose buckets `Metrics` keeps, written here rather than by prom-client: with
 * about 200 buckets a label set, prom-client's one object per sample took 24 s for 1,000 label sets
 * (README "Many hosts"); this writes the same text a slice of label sets at a time.
 */
class HistogramFamily {
  private readonly le: string[]
  constructor(
    readonly name: string,
    private readonly help: string,
    bounds: Float64Array,
    private readonly pick: (c: Counted) => Buckets,
  ) {
    this.le = [...bounds].map((b) => `,le="${b}"} `)
  }

  header(): string {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`
  }

  write(c: Counted): string {
    const b = this.pick(c)
    const bucket = `${this.name}_bucket{${c.labelText}`
    let out = ''
    let cumulative = 0
    for (let i = 0; i < this.le.length; i++) {
      cumulative += b.counts[i]
      out += `${bucket}${this.le[i]}${cumulative}\n`
    }
    return `${out}${bucket},le="+Inf"} ${b.count}\n${this.name}_sum{${c.labelText}} ${b.sum}\n${this.name}_count{${c.labelText}} ${b.count}\n`
  }
}

/** A label value as the text exposition format writes it. */
const escape = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')

/** Label sets written between two turns of the event loop. */
const SLICE = 50

const hex = (hash: bigint): string => hash.toString(16).padStart(16, '0')

export class Metrics {
  private readonly registry = new Registry()
  private readonly counted = new Map<string, Counted>()
  /** A point's service, env, hashes and tags as written → its label set. */
  private readonly seen = new Map<string, Counted>()
  private readonly latency = new Layout(LATENCY_BOUNDS)
  private readonly size = new Layout(SIZE_BOUNDS)
  private readonly offsets = new Gauge({
    name: 'pathwise_kafka_offset',
    help: 'Latest Kafka offset seen: kind="produce" or "high_watermark" (per topic and partition) or "commit" (per consumer group, topic and partition); kind="nats_pending": a JetStream durable consumer\'s pending messages (topic: its stream).',
    labelNames: ['kind', 'consumer_group', 'topic', 'partition', 'kafka_cluster_id'],
    registers: [this.registry],
  })
  private readonly lagMessages = this.gauge('pathwise_kafka_lag_messages', 'Kafka consumer lag in messages, as this agent sees it.')
  private readonly lagSeconds = this.gauge('pathwise_kafka_lag_seconds', 'Kafka consumer lag in seconds, estimated from the produce rate, as this agent sees it.')
  private readonly payloads = new Counter({
    name: 'pathwise_intake_payloads_total',
    help: 'Pipeline stats payloads received.',
    labelNames: ['result'],
    registers: [this.registry],
  })
  private readonly dropped = new Counter({
    name: 'pathwise_metrics_points_dropped_total',
    help: 'Stats points not counted in the histograms because --max-metric-series label sets were already counted.',
    registers: [this.registry],
  })

  private readonly families = [
    new HistogramFamily('pathwise_edge_latency_seconds', 'Edge latency of the messages of a stats point series (its _count: messages).', LATENCY_BOUNDS, (c) => c.edge),
    new HistogramFamily('pathwise_pathway_latency_seconds', 'End-to-end latency from the first producer of the pathway.', LATENCY_BOUNDS, (c) => c.pathway),
    new HistogramFamily('pathwise_payload_size_bytes', 'Payload size of the messages (its _sum: payload bytes).', SIZE_BOUNDS, (c) => c.size),
  ]

  constructor(
    private readonly store: Store,
    private readonly maxSeries = DEFAULT_MAX_METRIC_SERIES,
  ) {}

  get contentType(): string {
    return this.registry.contentType
  }

  /** Counts a payload's points (called with each slice the store takes). */
  observe(payload: IntakePayload): void {
    const now = this.store.now()
    const prefix = `${payload.service}\u0000${payload.env}\u0000`
    for (const bucket of payload.buckets) {
      for (const p of bucket.points) {
        const seen = `${prefix}${p.hash}\u0000${p.parent}\u0000${p.edgeTags.join('\u0000')}`
        const c = this.seen.get(seen) ?? this.labelSet(payload, p, seen, now)
        if (!c) {
          this.dropped.inc()
          continue
        }
        const [pathway, edge, size] = p.sketches()
        c.edge.add(edge)
        c.pathway.add(pathway)
        c.size.add(size)
        c.lastSeen = now
      }
    }
  }

  /** The label set of a point not seen as it is written (its tags in this order), or null past the cap. */
  private labelSet(payload: IntakePayload, p: IntakePoint, seen: string, now: number): Counted | null {
    const info = edgeInfo(p.edgeTags)
    const labels: PointLabels = {
      service: payload.service,
      env: payload.env,
      pathway_hash: hex(p.hash),
      parent_hash: hex(p.parent),
      direction: info.direction ?? '',
      type: info.type ?? '',
      topic: info.topic ?? '',
      group: info.group ?? '',
    }
    const key = POINT_LABELS.map((l) => labels[l]).join('\u0000')
    let c = this.counted.get(key)
    if (!c) {
      if (this.counted.size >= this.maxSeries) return null
      const labelText = POINT_LABELS.map((l) => `${l}="${escape(labels[l])}"`).join(',')
      c = { labels, labelText, edge: new Buckets(this.latency), pathway: new Buckets(this.latency), size: new Buckets(this.size), lastSeen: now }
      this.counted.set(key, c)
    }
    // Tags in another order (another tracer) only add another way in; the ways in are a cache, bounded as the label sets are.
    if (this.seen.size >= 4 * this.maxSeries) this.seen.clear()
    this.seen.set(seen, c)
    return c
  }

  /** The exposition text, a slice of label sets at a time: with many label sets it is tens of MB, never held whole. */
  async *render(status: Status): AsyncGenerator<string> {
    const now = this.store.now()
    // A label set quiet for the whole window goes, as the store's series do; Prometheus marks it stale.
    for (const [key, c] of this.counted) {
      if (c.lastSeen > now - this.store.windowMs) continue
      this.counted.delete(key)
      this.seen.clear()
    }
    this.offsets.reset()
    for (const b of this.store.backlogs()) {
      // Kafka offsets only: a queue's depth is no offset (it is the lag itself, views/lag.ts).
      if (b.kind === 'queue_depth') continue
      let latest = -Infinity
      let value = 0
      for (const [start, v] of b.values) if (start > latest) [latest, value] = [start, v]
      this.offsets.set({ kind: b.kind, consumer_group: b.group, topic: b.topic, partition: b.partition, kafka_cluster_id: b.cluster }, value)
    }
    this.lagMessages.reset()
    this.lagSeconds.reset()
    for (const r of lagRows(this.store, rangeOf(now, 60_000))) {
      if (r.transport !== 'kafka') continue
      const labels = { consumer_group: r.group, topic: r.topic, partition: r.partition }
      if (r.lagMessages !== null) this.lagMessages.set(labels, r.lagMessages)
      if (r.lagSeconds !== null) this.lagSeconds.set(labels, r.lagSeconds)
    }
    this.payloads.reset()
    this.payloads.inc({ result: 'accepted' }, status.payloads.accepted)
    this.payloads.inc({ result: 'rejected' }, status.payloads.rejected)
    yield await this.registry.metrics()
    const counted = [...this.counted.values()]
    for (const family of this.families) {
      yield family.header()
      for (let i = 0; i < counted.length; i += SLICE) {
        let text = ''
        for (const c of counted.slice(i, i + SLICE)) text += family.write(c)
        yield text
        await nextTurn()
      }
    }
  }

  private gauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, labelNames: ['consumer_group', 'topic', 'partition'], registers: [this.registry] })
  }
}
