import type { Range } from '../model/range.js'
import type { BacklogKind, BacklogSeries, Store } from '../model/store.js'

/**
 * Kafka consumer lag from the backlogs: per consumer group, topic and partition, the partition's
 * end minus the latest committed offset, in messages; in seconds, that many messages divided by
 * the partition's produce rate (how fast its end grew over the range, or over the whole window
 * when the range holds a single bucket). The end is the larger of the latest produce offset
 * (`kafka_produce`, from instrumented producers) and the latest high watermark (`kafka_high_watermark`,
 * which consumers report from their fetches, as dd-trace-go and pathwise do): so the lag shows
 * when no producer reports (another language, no tracer), and where both arrive the fresher one
 * counts. (A produce offset is the last message's, a watermark the next one's: a consumer k
 * messages behind is k - 1 from the first, k from the second.)
 *
 * A JetStream consumer's lag is the num_pending its messages last stated (`nats_pending`, per
 * durable consumer and stream): no offsets, and no rate to turn it into seconds.
 */

export interface LagRow {
  transport: 'kafka' | 'nats'
  group: string
  topic: string
  partition: string
  cluster: string
  produceOffset: number | null
  /** The latest high watermark a consumer of the partition reported; null while none is known. */
  highWatermark: number | null
  /** Null for a JetStream consumer. */
  commitOffset: number | null
  /** Null while neither a produce offset nor a high watermark of the partition is known. */
  lagMessages: number | null
  /** Null while the produce rate is unknown (fewer than two produce offsets) and the lag is not 0. */
  lagSeconds: number | null
  /** Messages per second written to the partition. */
  produceRate: number | null
}

/** (bucket start, offset) pairs, oldest first. */
function samples(s: BacklogSeries): Array<[number, number]> {
  return [...s.values].sort((a, b) => a[0] - b[0])
}

function latest(s: BacklogSeries): [number, number] {
  const all = samples(s)
  return all[all.length - 1]
}

/** The produce (or high watermark) series of a commit series' partition: same cluster, or either cluster unknown. */
function producerOf(commit: BacklogSeries, produces: BacklogSeries[]): BacklogSeries | undefined {
  const candidates = produces.filter(
    (p) => p.topic === commit.topic && p.partition === commit.partition && (p.cluster === commit.cluster || !p.cluster || !commit.cluster),
  )
  return candidates.sort((a, b) => latest(b)[0] - latest(a)[0])[0]
}

function produceRate(s: BacklogSeries, range: Range): number | null {
  const all = samples(s)
  if (all.length < 2) return null
  const [t1, v1] = all[all.length - 1]
  const inRange = all.filter(([t]) => t >= t1 - range.rangeMs)
  const [t0, v0] = inRange.length >= 2 ? inRange[0] : all[0]
  return v1 >= v0 ? (v1 - v0) / ((t1 - t0) / 1000) : null
}

function split(store: Store): Record<BacklogKind, BacklogSeries[]> {
  const kinds: Record<BacklogKind, BacklogSeries[]> = { produce: [], commit: [], high_watermark: [], nats_pending: [], queue_depth: [] }
  for (const s of store.backlogs()) kinds[s.kind].push(s)
  return kinds
}

/** The end of a partition: the larger of the latest produce offset and the latest high watermark, and the series it came from. */
function endOf(
  p: BacklogSeries | undefined,
  w: BacklogSeries | undefined,
): { end: number | null; from: BacklogSeries | undefined; produced: number | null; watermark: number | null } {
  const produced = p ? latest(p)[1] : null
  const watermark = w ? latest(w)[1] : null
  if (watermark === null || (produced !== null && produced >= watermark)) return { end: produced, from: p, produced, watermark }
  return { end: watermark, from: w, produced, watermark }
}

export function lagRows(store: Store, range: Range): LagRow[] {
  const { produce, commit, high_watermark: watermark, nats_pending: pending } = split(store)
  const rows = commit.map((c): LagRow => {
    const commitOffset = latest(c)[1]
    const p = producerOf(c, produce)
    const w = producerOf(c, watermark)
    const { end, from, produced, watermark: high } = endOf(p, w)
    const lagMessages = end === null ? null : Math.max(0, end - commitOffset)
    // The growth of the series that gave the end; of the other if that one has a single sample.
    const other = from === p ? w : p
    const rate = (from ? produceRate(from, range) : null) ?? (other ? produceRate(other, range) : null)
    const lagSeconds = lagMessages === null ? null : lagMessages === 0 ? 0 : rate ? lagMessages / rate : null
    return {
      transport: 'kafka',
      group: c.group,
      topic: c.topic,
      partition: c.partition,
      cluster: c.cluster,
      produceOffset: produced,
      highWatermark: high,
      commitOffset,
      lagMessages,
      lagSeconds,
      produceRate: rate,
    }
  })
  for (const p of pending) {
    const [, value] = latest(p)
    rows.push({ transport: 'nats', group: p.group, topic: p.topic, partition: '', cluster: '', produceOffset: null, highWatermark: null, commitOffset: null, lagMessages: value, lagSeconds: value === 0 ? 0 : null, produceRate: null })
  }
  return rows.sort(
    (a, b) => a.group.localeCompare(b.group) || a.topic.localeCompare(b.topic) || Number(a.partition) - Number(b.partition) || a.partition.localeCompare(b.partition),
  )
}

export interface LagHistory {
  partition: string
  /** (bucket start ms, lag in messages), oldest first. */
  points: Array<[number, number]>
}

/** Lag per partition of a group on a topic, bucket by bucket: the latest offsets known at each bucket. */
export function lagHistory(store: Store, group: string, topic: string): LagHistory[] {
  const { produce, commit, high_watermark: watermark } = split(store)
  return commit
    .filter((c) => c.group === group && c.topic === topic)
    .map((c) => {
      const p = producerOf(c, produce)
      const w = producerOf(c, watermark)
      const events = [
        ...samples(c).map(([t, v]) => [t, v, 0] as const),
        ...(p ? samples(p) : []).map(([t, v]) => [t, v, 1] as const),
        ...(w ? samples(w) : []).map(([t, v]) => [t, v, 2] as const),
      ]
      events.sort((a, b) => a[0] - b[0] || a[2] - b[2])
      let committed: number | null = null
      let produced: number | null = null
      let fetched: number | null = null
      const points: Array<[number, number]> = []
      for (const [t, v, kind] of events) {
        if (kind === 0) committed = v
        else if (kind === 1) produced = v
        else fetched = v
        const end = produced === null ? fetched : fetched === null ? produced : Math.max(produced, fetched)
        if (committed === null || end === null) continue
        const lag = Math.max(0, end - committed)
        if (points.length > 0 && points[points.length - 1][0] === t) points[points.length - 1][1] = lag
        else points.push([t, lag])
      }
      return { partition: c.partition, points }
    })
    .sort((a, b) => Number(a.partition) - Number(b.partition))
}

/** A JetStream consumer's pending count bucket by bucket, one series per stream (named in `partition`). */
export function natsLagHistory(store: Store, group: string): LagHistory[] {
  return split(store)
    .nats_pending.filter((p) => p.group === group)
    .map((p) => ({ partition: p.topic, points: samples(p) }))
    .sort((a, b) => a.partition.localeCompare(b.partition))
}

/** The states of a queue's messages that its consumers have yet to take (RabbitMQ's ready messages, BullMQ's waiting jobs). */
const WAITING_STATES = new Set(['ready', 'waiting'])

/**
 * The lag of a queue's consumers where clients report its depth (`queue_depth` backlogs): the
 * messages waiting, the latest depth reported (summed over the waiting states); in seconds, that
 * many divided by the rate the queue's consumers take them (`consumeRate`, messages per second:
 * how long the backlog takes to drain at that rate). Null when no depth of the queue is known.
 */
export function queueLag(store: Store, queueType: string, queue: string, consumeRate: number): { messages: number; seconds: number | null } | null {
  const depths = [...store.backlogs()].filter((s) => s.kind === 'queue_depth' && s.queueType === queueType && s.topic === queue && WAITING_STATES.has(s.state ?? ''))
  if (depths.length === 0) return null
  const messages = depths.reduce((sum, s) => sum + latest(s)[1], 0)
  return { messages, seconds: messages === 0 ? 0 : consumeRate > 0 ? messages / consumeRate : null }
}
