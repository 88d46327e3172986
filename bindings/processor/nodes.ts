import { Direction } from '../pathway/context.js'
import type { Core } from '../core/types.js'
import type { CheckpointNode } from '../api/data-streams.js'

/**
 * `value` if it is a node of `cache` (and, for liveNodeOf, not forgotten); null for anything else.
 * Asking runs no code of the value's (a Proxy's traps included).
 */
export let liveNodeOf: (value: unknown, cache: NodeCache) => PreparedNode | null
export let nodeOf: (value: unknown, cache: NodeCache) => PreparedNode | null

/**
 * A node prepared by one cache; `live` turns false when the cache forgets it (then it is prepared
 * again on use). What a checkpoint uses of it is held in private fields, which no caller can
 * change: a node handed back is found to be one of its cache's, and used, without validating it again.
 */
export class PreparedNode implements CheckpointNode {
  readonly #owner: NodeCache
  readonly #id: number
  readonly #direction: Direction
  readonly #edgeTags: readonly string[]
  #live = true

  constructor(owner: NodeCache, id: number, direction: Direction, edgeTags: readonly string[]) {
    this.#owner = owner
    this.#id = id
    this.#direction = direction
    this.#edgeTags = edgeTags
  }

  get id(): number {
    return this.#id
  }

  get direction(): Direction {
    return this.#direction
  }

  get edgeTags(): readonly string[] {
    return this.#edgeTags
  }

  get live(): boolean {
    return this.#live
  }

  forget(): void {
    this.#live = false
  }

  static {
    liveNodeOf = (value, cache) => (typeof value === 'object' && value !== null && #owner in value && value.#owner === cache && value.#live ? value : null)
    nodeOf = (value, cache) => (typeof value === 'object' && value !== null && #owner in value && value.#owner === cache ? value : null)
  }
}


interface TagTrie {
  node: PreparedNode | undefined
  next: Map<string, TagTrie>
}

/**
 * The nodes (service, env, edge tags) of one DataStreams, registered in its core, bounded: past
 * `maxNodes` the cache starts over. Hot nodes are prepared again on their next use (one hash each);
 * the core keeps the tags of forgotten nodes for their points, and reuses the ids once those are drained.
 */
export class NodeCache {
  /** Nodes by their edge tags as given, one trie level per tag: a lookup builds no string. */
  private trie: TagTrie = { node: undefined, next: new Map() }
  /** The nodes the cache holds, to forget them all when it is full. */
  private live: PreparedNode[] = []
  /** Nodes of the manual API by direction (0 in, 1 out), then type, then topic. */
  private manual = [new Map<string, Map<string, PreparedNode>>(), new Map<string, Map<string, PreparedNode>>()]
  /** Nodes forgotten because the cache was full. */
  evicted = 0

  constructor(
    private readonly core: Core,
    private readonly service: string,
    private readonly env: string,
    private readonly maxNodes: number,
  ) {}

  /** The node of valid edge tags, prepared on first use. */
  get(edgeTags: readonly string[]): PreparedNode {
    let level = this.trie
    for (let i = 0; i < edgeTags.length; i++) {
      let next = level.next.get(edgeTags[i])
      if (next === undefined) level.next.set(edgeTags[i], (next = { node: undefined, next: new Map() }))
      level = next
    }
    if (level.node !== undefined) return level.node
    if (this.live.length >= this.maxNodes) {
      this.forgetAll()
      return this.get(edgeTags)
    }
    const tags = [...edgeTags].sort()
    const id = this.core.node(this.service, this.env, tags)
    const node = new PreparedNode(this, id, directionOf(tags), tags)
    level.node = node
    this.live.push(node)
    return node
  }

  /** The node of a manual checkpoint (type and topic valid tag parts), prepared on first use. */
  manualNode(direction: typeof Direction.In | typeof Direction.Out, type: string, topic: string): PreparedNode {
    const byType = this.manual[direction === Direction.In ? 0 : 1]
    let byTopic = byType.get(type)
    if (byTopic === undefined) byType.set(type, (byTopic = new Map()))
    let node = byTopic.get(topic)
    if (node === undefined || !node.live) {
      node = this.get([direction === Direction.In ? 'direction:in' : 'direction:out', `topic:${topic}`, `type:${type}`, 'manual_checkpoint:true'])
      // (had the cache started over meanwhile, this map is no longer looked up: harmless)
      byTopic.set(topic, node)
    }
    return node
  }

  /** Forgets every node: the core releases their ids (and reuses them once their points are drained). */
  private forgetAll(): void {
    for (const node of this.live) {
      node.forget()
      this.core.releaseNode(node.id)
    }
    this.evicted += this.live.length
    this.live = []
    this.trie = { node: undefined, next: new Map() }
    this.manual = [new Map(), new Map()]
  }
}

function directionOf(tags: readonly string[]): Direction {
  for (const t of tags) {
    if (t === 'direction:in') return Direction.In
    if (t === 'direction:out') return Direction.Out
  }
  return Direction.None
}
