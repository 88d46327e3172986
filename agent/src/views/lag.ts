import type { Range } from '../model/range.js'
import { BUCKET_MS, type BacklogKind, type BacklogSeries, type Store } from '../model/store.js'

/**
 * Kafka consumer lag from the backlogs: per consumer group, topic and partition, the partition's
 * end minus the committed offset, in messages, both as they were at the same moment. The end is the
 * larger of the produce offset (`kafka_produce`, from instrumented producers) and the high watermark
 * (`kafka_high_watermark`, which consumers report from their fetches, as dd-trace-go and pathwise do):
 * so the lag shows when no producer reports (another language, no tracer), and where both arrive the
 * fresher one counts. (A produce offset is the last message's, a watermark the next one's: a consumer
 * k messages behind is k - 1 from the first, k from the second.)
 *
 * Offsets are kept per 10 s bucket, and a bucket's offsets were taken within the same 10 s; but the
 * latest bucket of the producers and of the consumer differ for up to a flush interval (each tracer
 * flushes on its own timer), and a caught-up consumer would show the messages of that difference as
 * lag. So the lag is read at the latest bucket both sides have reported, each side's offset the
 * latest at or before it: the consumer's commits beside the watermarks it fetched in the same flush
 * where it reports them, else beside the producers' offsets of the same bucket. A consumer that has
 * stopped committing (two buckets after its last commit have settled while the end moved on) is read
 * at the end's latest bucket: its lag grows.
 *
 * In seconds: how long before that moment the partition's end was at the committed offset, read
 * from the end's history bucket by bucket (linear within a bucket); when the history does not reach
 * back that far, the lag in messages over the end's growth rate. Neither depends on when it is read.
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
  /** At the moment the lag is read, the latest produce offset of the partition; null while none is known. */
  produceOffset: number | null
  /** At the same moment, the latest high watermark a consumer of the partition reported; null while none is known. */
  highWatermark: number | null
  /** Null for a JetStream consumer. */
  commitOffset: number | null
  /** Null while neither a produce offset nor a high watermark of the partition is known. */
  lagMessages: number | null
  /** Null while neither the end's history nor its rate says, and the lag is not 0. */
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

/** The latest value at or before `t`, or null. */
function atOrBefore(s: BacklogSeries | undefined, t: number): number | null {
  let best = -Infinity
  let value: number | null = null
  if (s) for (const [start, v] of s.values) if (start <= t && start > best) [best, value] = [start, v]
  return value
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

/** The partition's end bucket by bucket: (bucket start, the larger of the produce offset and watermark known then), oldest first. */
function endHistory(p: BacklogSeries | undefined, w: BacklogSeries | undefined): Array<[number, number]> {
  const starts = [...new Set([...(p?.values.keys() ?? []), ...(w?.values.keys() ?? [])])].sort((a, b) => a - b)
  const out: Array<[number, number]> = []
  for (const t of starts) {
    const produced = atOrBefore(p, t)
    const fetched = atOrBefore(w, t)
    const end = produced === null ? fetched! : fetched === null ? produced : Math.max(produced, fetched)
    if (out.length === 0 || end > out[out.length - 1][1]) out.push([t, end])
  }
  return out
}

/** The bucket a commit series' lag is read at (see the comment above), or null when the partition's end is unknown. */
function momentOf(c: BacklogSeries, p: BacklogSeries | undefined, w: BacklogSeries | undefined, range: Range): number | null {
  if (!p && !w) return null
  const lastEnd = Math.max(p ? latest(p)[0] : -Infinity, w ? latest(w)[0] : -Infinity)
  const lastCommit = latest(c)[0]
  // Two settled buckets without a commit: a flush is late by a few seconds at most (and a scrape by its interval), never by 20 s.
  const stopped = lastCommit < lastEnd && lastCommit + 2 * BUCKET_MS < range.settled
  // Commits only after the end's last report: the end has stopped moving, and is read as it was last.
  const firstCommit = samples(c)[0][0]
  return stopped || firstCommit > lastEnd ? Math.max(lastEnd, lastCommit) : Math.min(lastEnd, lastCommit)
}

/** When (ms, a bucket's end) the end reached `offset`, read from its history; null when the history starts above it. */
function reachedAt(end: Array<[number, number]>, offset: number, until: number): number | null {
  let prev: [number, number] | null = null
  for (const [t, v] of end) {
    if (t > until) break
    if (v >= offset) {
      if (v === offset) return t + BUCKET_MS
      if (!prev) return null
      return prev[0] + BUCKET_MS + ((offset - prev[1]) / (v - prev[1])) * (t - prev[0])
    }
    prev = [t, v]
  }
  return until + BUCKET_MS
}

export function lagRows(store: Store, range: Range): LagRow[] {
  const { produce, commit, high_watermark: watermark, nats_pending: pending } = split(store)
  const rows = commit.map((c): LagRow => {
    const p = producerOf(c, produce)
    const w = producerOf(c, watermark)
    const end = endHistory(p, w)
    const moment = momentOf(c, p, w, range) ?? latest(c)[0]
    const commitOffset = atOrBefore(c, moment)!
    const produced = atOrBefore(p, moment)
    const high = atOrBefore(w, moment)
    const top = produced === null ? high : high === null ? produced : Math.max(produced, high)
    const lagMessages = top === null ? null : Math.max(0, top - commitOffset)
    // The growth of the series that gave the end; of the other if that one has a single sample.
    const [from, other] = high !== null && (produced === null || high > produced) ? [w, p] : [p, w]
    const rate = (from ? produceRate(from, range) : null) ?? (other ? produceRate(other, range) : null)
    let lagSeconds: number | null = null
    if (lagMessages === 0) lagSeconds = 0
    else if (lagMessages !== null) {
      const at = reachedAt(end, commitOffset, moment)
      lagSeconds = at !== null ? Math.max(0, moment + BUCKET_MS - at) / 1000 : rate ? lagMessages / rate : null
    }
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
    (a, b) =>
      a.group.localeCompare(b.group) ||
      a.topic.localeCompare(b.topic) ||
      Number(a.partition) - Number(b.partition) ||
      a.partition.localeCompare(b.partition) ||
      a.cluster.localeCompare(b.cluster),
  )
}

export interface LagHistory {
  partition: string
  /** Kafka cluster id; '' when the tracer did not know it. */
  cluster: string
  /** (bucket start ms, lag in messages), oldest first. */
  points: Array<[number, number]>
}

/** Lag per partition of a group on a topic, bucket by bucket up to the moment `lagRows` reads: the latest offsets known at each bucket. */
export function lagHistory(store: Store, group: string, topic: string, range: Range): LagHistory[] {
  const { produce, commit, high_watermark: watermark } = split(store)
  return commit
    .filter((c) => c.group === group && c.topic === topic)
    .map((c) => {
      const p = producerOf(c, produce)
      const w = producerOf(c, watermark)
      const end = endHistory(p, w)
      const moment = momentOf(c, p, w, range) ?? latest(c)[0]
      const starts = [...new Set([...c.values.keys(), ...end.map(([t]) => t)])].filter((t) => t <= moment).sort((a, b) => a - b)
      const points: Array<[number, number]> = []
      for (const t of starts) {
        const committed = atOrBefore(c, t)
        const top = end.filter(([s]) => s <= t).at(-1)?.[1]
        if (committed !== null && top !== undefined) points.push([t, Math.max(0, top - committed)])
      }
      return { partition: c.partition, cluster: c.cluster, points }
    })
    .sort((a, b) => Number(a.partition) - Number(b.partition) || a.partition.localeCompare(b.partition) || a.cluster.localeCompare(b.cluster))
}

/** A JetStream consumer's pending count bucket by bucket, one series per stream (named in `partition`). */
export function natsLagHistory(store: Store, group: string): LagHistory[] {
  return split(store)
    .nats_pending.filter((p) => p.group === group)
    .map((p) => ({ partition: p.topic, cluster: '', points: samples(p) }))
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
