import { encode } from '@msgpack/msgpack'

/**
 * Node ids, shared by both cores so that they hand out the same ids: a lookup from service, env
 * and sorted tags to a live id, and the reuse of released ids once no live stats point can carry
 * them (a drained point names its node by id, and the caller maps that id back to its tags).
 * Everything here is per id in use, live or awaiting a drain: nothing stays of a node once its id
 * is free.
 */
export class NodeIds {
  private readonly byKey = new Map<string, number>()
  /** The lookup key of each live id; undefined for a released or free one. */
  private readonly keys: (string | undefined)[] = []
  private readonly free: number[] = []
  /** Released ids awaiting a drain, in release order, so their buckets never decrease. */
  private readonly released: number[] = []
  /** The highest bucket any checkpoint had named when each of `released` was released. */
  private readonly releasedAfter: number[] = []
  /** The drain under way, if any (see `drainStarted`). */
  private drain: { beforeBucket: number; livePoints: number; eligible: number } | undefined

  /** Nodes registered and not released. */
  get live(): number {
    return this.byKey.size
  }

  /** Ids handed out so far (live, released or free): how long the cores' per-id tables are. */
  get size(): number {
    return this.keys.length
  }

  /**
   * The node's id. A new one takes a free id if there is one (so ids never outnumber the nodes
   * live or awaiting a drain at once), and `define(id, text, tags)` hashes its text there and
   * keeps its sorted edge tags, as the msgpack array its drained points carry.
   */
  id(service: string, env: string, edgeTags: readonly string[], define: (id: number, text: string, tags: Uint8Array) => void): number {
    const sorted = [...edgeTags].sort()
    // NUL cannot occur in service, env or tag text that matters
    const key = service + '\u0000' + env + '\u0000' + sorted.join('\u0000')
    let id = this.byKey.get(key)
    if (id === undefined) {
      id = this.free.length > 0 ? this.free[this.free.length - 1] : this.keys.length
      define(id, service + env + sorted.join(''), encode(sorted))
      if (id !== this.keys.length) this.free.pop() // only once define has not thrown
      this.keys[id] = key
      this.byKey.set(key, id)
    }
    return id
  }

  /** Forgets a live id; `maxBucket` is the highest bucket any checkpoint has named so far. */
  release(id: number, maxBucket: number): void {
    // anything but an integer (a numeric string, a BigInt: both would index `keys`) is no id of ours
    const key = Number.isInteger(id) ? this.keys[id] : undefined
    if (key === undefined) return
    this.byKey.delete(key)
    this.keys[id] = undefined
    this.released.push(id)
    this.releasedAfter.push(maxBucket)
  }

  /**
   * A drain of the buckets below `beforeBucket` started, leaving `livePoints` alive. When it ends,
   * the ids released before it started that none of its points, nor any live one, can carry are
   * freed: those released while no checkpoint had named a bucket from `beforeBucket` on, or all of
   * them when no point was left alive.
   */
  drainStarted(beforeBucket: number, livePoints: number): void {
    this.drain = { beforeBucket, livePoints, eligible: this.released.length }
  }

  /** The drain started last ended (its points are written or dropped): frees what it can, and returns those ids (their tags can go). */
  drainEnded(): number[] {
    const drain = this.drain
    if (drain === undefined) return []
    this.drain = undefined
    let n = 0
    while (n < drain.eligible && (drain.livePoints === 0 || this.releasedAfter[n] < drain.beforeBucket)) n++
    if (n === 0) return []
    const freed = this.released.splice(0, n)
    this.free.push(...freed)
    this.releasedAfter.splice(0, n)
    return freed
  }
}
