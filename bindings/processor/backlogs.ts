/** The highest value seen per backlog key in each bucket (Kafka produce and commit offsets, high watermarks, NATS pending counts, queue depths), or a count (failed sends). */
export interface Backlog {
  tags: string[]
  value: number
}

/** Most backlog keys (topic, partition, group) in one bucket: past it new keys are dropped and counted. */
export const MAX_BACKLOGS_PER_BUCKET = 10_000
/** Most keys BacklogKeys holds before it starts over. */
export const MAX_BACKLOG_KEYS = 10_000

/** A backlog's key: its tags in the order written, and their join, by which a bucket keeps it. */
export interface BacklogKey {
  readonly tags: string[]
  readonly key: string
}

type Level = Map<string | number, Level | BacklogKey>

/**
 * The keys of the backlogs tracked, made once each: found by their parts (kind, two names, the
 * partition, the cluster id; a queue depth's state in the cluster id's place), one map level a
 * part, so that tracking an offset builds no string.
 * Bounded: past MAX_BACKLOG_KEYS it starts over.
 */
export class BacklogKeys {
  private root: Level = new Map()
  private size = 0

  /** The key of these parts; `tags` makes its tags the first time. */
  get(kind: string, a: string, b: string, partition: number, cluster: string, tags: () => string[]): BacklogKey {
    const level = below(below(below(below(this.root, kind), a), b), partition)
    const found = level.get(cluster) as BacklogKey | undefined
    if (found !== undefined) return found
    if (this.size >= MAX_BACKLOG_KEYS) {
      this.root = new Map()
      this.size = 0
      return this.get(kind, a, b, partition, cluster, tags)
    }
    const made = tags()
    const key = { tags: made, key: made.join(',') }
    level.set(cluster, key)
    this.size++
    return key
  }
}

function below(level: Level, part: string | number): Level {
  let next = level.get(part) as Level | undefined
  if (next === undefined) level.set(part, (next = new Map()))
  return next
}

export class Backlogs {
  private readonly buckets = new Map<number, Map<string, Backlog>>()
  /** New keys dropped because their bucket was full. */
  dropped = 0

  track(bucket: number, key: BacklogKey, offset: number): void {
    let entries = this.buckets.get(bucket)
    if (entries === undefined) this.buckets.set(bucket, (entries = new Map()))
    const entry = entries.get(key.key)
    if (entry !== undefined) {
      if (offset > entry.value) entry.value = offset
    } else if (entries.size < MAX_BACKLOGS_PER_BUCKET) entries.set(key.key, { tags: key.tags, value: offset })
    else this.dropped++
  }

  /** Whether a bucket below `beforeBucket` holds backlogs. */
  has(beforeBucket: number): boolean {
    for (const bucket of this.buckets.keys()) if (bucket < beforeBucket) return true
    return false
  }

  /** Adds `n` to the key's count in `bucket` (a count backlog: failed sends). */
  count(bucket: number, tags: string[], n: number): void {
    let entries = this.buckets.get(bucket)
    if (entries === undefined) this.buckets.set(bucket, (entries = new Map()))
    const key = tags.join(',')
    const entry = entries.get(key)
    if (entry !== undefined) entry.value += n
    else if (entries.size < MAX_BACKLOGS_PER_BUCKET) entries.set(key, { tags, value: n })
    else this.dropped++
  }

  /** Removes and returns the backlogs of every bucket below `beforeBucket`. */
  drain(beforeBucket: number): Map<number, Backlog[]> {
    const out = new Map<number, Backlog[]>()
    for (const [bucket, entries] of this.buckets) {
      if (bucket < beforeBucket) {
        out.set(bucket, [...entries.values()])
        this.buckets.delete(bucket)
      }
    }
    return out
  }
}
