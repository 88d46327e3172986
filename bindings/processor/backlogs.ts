/** The highest value seen per backlog key in each bucket (Kafka produce and commit offsets, queue depths), or a count (failed sends). */
export interface Backlog {
  tags: string[]
  value: number
}

/** Most backlog keys (topic, partition, group) in one bucket: past it new keys are dropped and counted. */
export const MAX_BACKLOGS_PER_BUCKET = 10_000

export class Backlogs {
  private readonly buckets = new Map<number, Map<string, Backlog>>()
  /** New keys dropped because their bucket was full. */
  dropped = 0

  /** `tags` must already be in a stable order: it is the key. */
  track(bucket: number, tags: string[], offset: number): void {
    let entries = this.buckets.get(bucket)
    if (entries === undefined) this.buckets.set(bucket, (entries = new Map()))
    const key = tags.join(',')
    const entry = entries.get(key)
    if (entry !== undefined) {
      if (offset > entry.value) entry.value = offset
    } else if (entries.size < MAX_BACKLOGS_PER_BUCKET) entries.set(key, { tags, value: offset })
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
