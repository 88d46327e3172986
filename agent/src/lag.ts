import type { Range } from './range.js'
import type { BacklogSeries, Store } from './store.js'

/**
 * Kafka consumer lag from the backlogs: per consumer group, topic and partition, the latest
 * produce offset minus the latest committed offset, in messages; in seconds, that many messages
 * divided by the partition's produce rate (how fast its produce offset grew over the range, or
 * over the whole window when the range holds a single bucket).
 */

export interface LagRow {
  group: string
  topic: string
  partition: string
  cluster: string
  produceOffset: number | null
  commitOffset: number
  /** Null while no produce offset of the partition is known. */
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

/** The produce series of a commit series' partition: same cluster, or either cluster unknown. */
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

function split(store: Store): { produces: BacklogSeries[]; commits: BacklogSeries[] } {
  const produces: BacklogSeries[] = []
  const commits: BacklogSeries[] = []
  for (const s of store.backlogs()) (s.kind === 'produce' ? produces : commits).push(s)
  return { produces, commits }
}

export function lagRows(store: Store, range: Range): LagRow[] {
  const { produces, commits } = split(store)
  const rows = commits.map((c): LagRow => {
    const commitOffset = latest(c)[1]
    const p = producerOf(c, produces)
    const produceOffset = p ? latest(p)[1] : null
    const lagMessages = produceOffset === null ? null : Math.max(0, produceOffset - commitOffset)
    const rate = p ? produceRate(p, range) : null
    const lagSeconds = lagMessages === null ? null : lagMessages === 0 ? 0 : rate ? lagMessages / rate : null
    return { group: c.group, topic: c.topic, partition: c.partition, cluster: c.cluster, produceOffset, commitOffset, lagMessages, lagSeconds, produceRate: rate }
  })
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
  const { produces, commits } = split(store)
  return commits
    .filter((c) => c.group === group && c.topic === topic)
    .map((c) => {
      const p = producerOf(c, produces)
      const events = [...samples(c).map(([t, v]) => [t, v, 0] as const), ...(p ? samples(p) : []).map(([t, v]) => [t, v, 1] as const)]
      events.sort((a, b) => a[0] - b[0] || a[2] - b[2])
      let commit: number | null = null
      let produce: number | null = null
      const points: Array<[number, number]> = []
      for (const [t, v, kind] of events) {
        if (kind === 0) commit = v
        else produce = v
        if (commit === null || produce === null) continue
        const lag = Math.max(0, produce - commit)
        if (points.length > 0 && points[points.length - 1][0] === t) points[points.length - 1][1] = lag
        else points.push([t, lag])
      }
      return { partition: c.partition, points }
    })
    .sort((a, b) => Number(a.partition) - Number(b.partition))
}
