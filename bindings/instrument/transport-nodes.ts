import type { CheckpointNode } from '../api/data-streams.js'

/** Most keys a transport's cache holds before it starts over: enough for every topic of a real client. */
export const MAX_TRANSPORT_KEYS = 1000

/**
 * The prepared nodes of one client, by a key of the transport's (a topic, a queue URL, a stream),
 * bounded like the DataStreams' own node cache: past MAX_TRANSPORT_KEYS keys it starts over, and
 * an entry whose nodes the DataStreams has forgotten (`live` says so) is prepared again.
 */
export class TransportNodes<T> {
  private readonly entries = new Map<string, T>()

  constructor(
    private readonly make: (key: string) => T,
    private readonly live: (entry: T) => boolean,
  ) {}

  get(key: string): T {
    let entry = this.entries.get(key)
    if (entry === undefined || !this.live(entry)) {
      if (this.entries.size >= MAX_TRANSPORT_KEYS) this.entries.clear()
      entry = this.make(key)
      this.entries.set(key, entry)
    }
    return entry
  }

  clear(): void {
    this.entries.clear()
  }
}

/** A node that is absent (refused tags) or still prepared. */
export function isLive(node: CheckpointNode | null): boolean {
  return node === null || node.live
}
