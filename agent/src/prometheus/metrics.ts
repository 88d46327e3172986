import { setImmediate as nextTurn } from 'node:timers/promises'
import { Counter, Gauge, Registry } from 'prom-client'
import type { Status } from '../views/api.js'
import type { IntakePayload, IntakePoint } from '../model/payload.js'
import { lagRows } from '../views/lag.js'
import { rangeOf } from '../model/range.js'
import { FAILED_SENDS, type Store } from '../model/store.js'
import { tagMap } from '../model/tags.js'
import { Buckets, HistogramFamily, labelText, LATENCY, SIZE } from './histogram.js'
import { pointLabels, toLabel } from './labels.js'

/**
 * `GET /metrics` in the Prometheus exposition format: what Prometheus scrapes so that one view can
 * draw the map of a fleet of agents (fleet.ts).
 *
 * Per stats point series (a service's pathway hash and parent hash with its edge tags: labels.ts),
 * three histograms count everything the agent received since it started: edge latency, end-to-end
 * (pathway) latency and payload size; their `_count` is the messages, their `_sum` the seconds or
 * bytes. Counters of several agents add up, so the fleet's quantiles come from the summed buckets,
 * written sparsely (histogram.ts). Kafka offsets are gauges, each with the start of the 10 s bucket
 * it was reported in, from which the fleet view pairs offsets of the same moment (views/lag.ts);
 * queue depths likewise. Failed sends are counters since the agent started, per service, transport
 * and destination, which the fleet view reads as their increase over its range.
 */

/** Label sets (stats point series) counted by default: as many as the store keeps series (--max-series). */
export const DEFAULT_MAX_METRIC_SERIES = 10_000

interface FailedSends {
  labels: { service: string; transport: string; topic: string }
  count: number
  lastSeen: number
}

interface Counted {
  /** The labels as written between braces. */
  labelText: string
  edge: Buckets
  pathway: Buckets
  size: Buckets
  lastSeen: number
}

/** Label sets written between two turns of the event loop. */
const SLICE = 200

export class Metrics {
  private readonly registry = new Registry()
  private readonly counted = new Map<string, Counted>()
  /** A point's service, env, hashes and tags as written → its label set. */
  private readonly seen = new Map<string, Counted>()
  private readonly offsets = this.offsetGauge(
    'pathwise_kafka_offset',
    'Latest Kafka offset seen: kind="produce" or "high_watermark" (per topic and partition) or "commit" (per consumer group, topic and partition); kind="nats_pending": a JetStream durable consumer\'s pending messages (topic: its stream).',
  )
  private readonly offsetTimes = this.offsetGauge(
    'pathwise_kafka_offset_timestamp_seconds',
    'Start of the 10 s bucket the latest offset of pathwise_kafka_offset was reported in (Unix seconds): offsets of the same bucket are of the same moment.',
  )
  private readonly queueDepths = this.depthGauge(
    'pathwise_queue_depth',
    "Latest depth of a queue as its clients report it (trackQueueDepth): the messages or jobs in a state (RabbitMQ's ready, BullMQ's waiting, delayed, active, failed).",
  )
  private readonly queueDepthTimes = this.depthGauge(
    'pathwise_queue_depth_timestamp_seconds',
    'Start of the 10 s bucket the latest depth of pathwise_queue_depth was reported in (Unix seconds).',
  )
  private readonly failedSends = new Counter({
    name: 'pathwise_failed_sends_total',
    help: "Sends a pathwise tracer checkpointed whose send finally failed (pathwise_failed_sends backlogs), per service, transport and destination, since the agent started.",
    labelNames: ['service', 'transport', 'topic'],
    registers: [this.registry],
  })
  /** Failed sends by service, transport and destination, as many as label sets are counted. */
  private readonly failed = new Map<string, FailedSends>()
  private readonly lagMessages = this.lagGauge('pathwise_kafka_lag_messages', 'Kafka consumer lag in messages, as this agent sees it.')
  private readonly lagSeconds = this.lagGauge('pathwise_kafka_lag_seconds', 'Kafka consumer lag in seconds (how long ago the partition\'s end was at the committed offset), as this agent sees it.')
  private readonly lastPayload = new Gauge({
    name: 'pathwise_last_payload_timestamp_seconds',
    help: 'When the last pipeline stats payload was taken (Unix seconds).',
    registers: [this.registry],
  })
  private readonly payloads = new Counter({
    name: 'pathwise_intake_payloads_total',
    help: 'Pipeline stats payloads received.',
    labelNames: ['result'],
    registers: [this.registry],
  })
  private readonly dropped = new Counter({
    name: 'pathwise_metrics_points_dropped_total',
    help: 'Stats points (or failed-send counts) not counted because --max-metric-series label sets were already counted.',
    registers: [this.registry],
  })

  private readonly families = [
    new HistogramFamily<Counted>('pathwise_edge_latency_seconds', 'Edge latency of the messages of a stats point series (its _count: messages).', (c) => c.edge),
    new HistogramFamily<Counted>('pathwise_pathway_latency_seconds', 'End-to-end latency from the first producer of the pathway.', (c) => c.pathway),
    new HistogramFamily<Counted>('pathwise_payload_size_bytes', 'Payload size of the messages (its _sum: payload bytes).', (c) => c.size),
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
        c.edge.addSketch(edge)
        c.pathway.addSketch(pathway)
        c.size.addSketch(size)
        c.lastSeen = now
      }
      for (const b of bucket.backlogs) if (b.tags.includes(FAILED_SENDS)) this.countFailedSends(payload.service, b.tags, b.value, now)
    }
  }

  /** Adds a `pathwise_failed_sends` backlog's count to its service's, transport's and destination's counter. */
  private countFailedSends(service: string, tags: string[], value: number, now: number): void {
    if (!Number.isFinite(value) || value <= 0) return
    const map = tagMap(tags)
    const transport = map.get('transport') ?? ''
    const topic = map.get('topic') ?? map.get('exchange') ?? ''
    const key = `${service}\u0000${transport}\u0000${topic}`
    let f = this.failed.get(key)
    if (!f) {
      if (this.failed.size >= this.maxSeries) {
        this.dropped.inc()
        return
      }
      f = { labels: { service: toLabel(service), transport: toLabel(transport), topic: toLabel(topic) }, count: 0, lastSeen: now }
      this.failed.set(key, f)
    }
    f.count += value
    f.lastSeen = now
  }

  /** The label set of a point not seen as it is written (its tags in this order), or null past the cap. */
  private labelSet(payload: IntakePayload, p: IntakePoint, seen: string, now: number): Counted | null {
    const text = labelText(pointLabels(payload.service, payload.env, p.hash, p.parent, p.edgeTags))
    let c = this.counted.get(text)
    if (!c) {
      if (this.counted.size >= this.maxSeries) return null
      c = { labelText: text, edge: new Buckets(LATENCY), pathway: new Buckets(LATENCY), size: new Buckets(SIZE), lastSeen: now }
      this.counted.set(text, c)
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
    this.offsetTimes.reset()
    this.queueDepths.reset()
    this.queueDepthTimes.reset()
    for (const b of this.store.backlogs()) {
      let latest = -Infinity
      let value = 0
      for (const [start, v] of b.values) if (start > latest) [latest, value] = [start, v]
      // A queue's depth is no offset (it is the lag itself, views/lag.ts): a gauge of its own.
      const [values, times, labels] =
        b.kind === 'queue_depth'
          ? [this.queueDepths, this.queueDepthTimes, { queue_type: toLabel(b.queueType ?? ''), topic: toLabel(b.topic), state: toLabel(b.state ?? '') }]
          : [this.offsets, this.offsetTimes, { kind: b.kind, consumer_group: toLabel(b.group), topic: toLabel(b.topic), partition: toLabel(b.partition), kafka_cluster_id: toLabel(b.cluster) }]
      values.set(labels, value)
      times.set(labels, latest / 1000)
    }
    this.failedSends.reset()
    for (const [key, f] of this.failed) {
      // Quiet for the whole window, as label sets: a count that comes back starts again (a counter reset).
      if (f.lastSeen <= now - this.store.windowMs) this.failed.delete(key)
      else this.failedSends.inc(f.labels, f.count)
    }
    this.lagMessages.reset()
    this.lagSeconds.reset()
    for (const r of lagRows(this.store, rangeOf(now, 60_000))) {
      if (r.transport !== 'kafka') continue
      const labels = { consumer_group: toLabel(r.group), topic: toLabel(r.topic), partition: toLabel(r.partition), kafka_cluster_id: toLabel(r.cluster) }
      if (r.lagMessages !== null) this.lagMessages.set(labels, r.lagMessages)
      if (r.lagSeconds !== null) this.lagSeconds.set(labels, r.lagSeconds)
    }
    this.lastPayload.reset()
    if (status.lastPayloadAt !== null) this.lastPayload.set(status.lastPayloadAt / 1000)
    this.payloads.reset()
    this.payloads.inc({ result: 'accepted' }, status.payloads.accepted)
    this.payloads.inc({ result: 'rejected' }, status.payloads.rejected)
    yield await this.registry.metrics()
    const counted = [...this.counted.values()]
    for (const family of this.families) {
      yield family.header()
      for (let i = 0; i < counted.length; i += SLICE) {
        let text = ''
        for (let j = i; j < Math.min(i + SLICE, counted.length); j++) text += family.write(counted[j], counted[j].labelText)
        yield text
        await nextTurn()
      }
    }
  }

  private offsetGauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, labelNames: ['kind', 'consumer_group', 'topic', 'partition', 'kafka_cluster_id'], registers: [this.registry] })
  }

  private depthGauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, labelNames: ['queue_type', 'topic', 'state'], registers: [this.registry] })
  }

  private lagGauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, labelNames: ['consumer_group', 'topic', 'partition', 'kafka_cluster_id'], registers: [this.registry] })
  }
}
