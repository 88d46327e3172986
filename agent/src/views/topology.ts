import { mergeCells, type Range } from '../model/range.js'
import { quantilesOf, type Quantiles } from '../model/sketch.js'
import type { Series, Store } from '../model/store.js'
import { queueRole, type EdgeInfo } from '../model/tags.js'

/**
 * The pipeline from the stats points. Edge tags give the hops: `direction:out, topic:T, type:X`
 * from service S is S → queue X:T; `direction:in, topic:T, type:X, group:G` is X:T → S. A point
 * with no queue in its tags whose parent is another service's point is a direct hop between the
 * two services. Parent links (a point's ParentHash is the Hash of the point upstream) chain the
 * points of a pathway from its first producer to each consumer it reaches; the PathwayLatency of
 * the consumer's point is the end-to-end latency. Kinesis carries no context, so its consume
 * points start a new segment (parent 0): such a segment is joined to the produce points into the
 * same stream, and the latency of the joined pathway is the sum of the segments' quantiles,
 * which is an approximation (quantiles do not add). A RabbitMQ publish to a named exchange
 * (`exchange:X`, no topic) goes to an exchange node; a consume from queue Q whose parent published
 * to exchange X makes a route edge X → Q, the binding the message took.
 */

export interface NodeView {
  id: string
  kind: 'service' | 'queue' | 'exchange'
  name: string
  /** Queues: kafka, sqs, kinesis, ... */
  type?: string
  /** Queues: topic, queue, stream, ... */
  role?: string
  /** Messages per second into and out of the node. */
  inRate: number
  outRate: number
  /** Services: p99 end-to-end latency of the messages they consume; queues: p99 latency of the hops out of them (s). */
  p99: number | null
  /** Queues whose clients sample their depth (BullMQ): the latest count of jobs per state (views/queue-jobs.ts). */
  jobs?: Record<string, number>
}

export interface EdgeView {
  id: string
  from: string
  to: string
  kind: 'produce' | 'consume' | 'direct' | 'route'
  type: string
  topic?: string
  /** Produce edges into an exchange, route edges out of one: its name. */
  exchange?: string
  group?: string
  /** Messages over the range. */
  count: number
  /** Of `count`, the messages in buckets still filling: not in `rate` and `latency`, unless they are all of them (model/range.ts). */
  filling: number
  /** Messages per second. */
  rate: number
  /** Edge latency (s). */
  latency: Quantiles | null
  /** Payload size (bytes). */
  payloadSize: Quantiles | null
  /** Kafka consume edges: the group's lag on the topic, summed over partitions (seconds: the largest); a queue's consume edges: its depth where clients report it (views/lag.ts queueLag). */
  lag?: { messages: number | null; seconds: number | null }
  /** Produce edges of pathwise tracers: sends checkpointed over the range whose send finally failed (counted in `count` too). */
  failedSends?: number
}

export interface PathwayView {
  /** The pathway hashes of its points, first to last, hex. */
  id: string
  /** Node ids from the first producer to the consumer. */
  nodes: string[]
  /** The consuming service the pathway reaches. */
  service: string
  count: number
  /** As an edge's. */
  filling: number
  rate: number
  /** End-to-end latency (s). */
  latency: Quantiles | null
  /** Summed over Kinesis segments. */
  approximate: boolean
  /** False when a parent could not be found (an upstream service not reporting, or outside the window). */
  complete: boolean
}

export interface Topology {
  nodes: NodeView[]
  edges: EdgeView[]
}

const serviceId = (name: string): string => `service:${name}`
const queueId = (type: string, topic: string): string => `${type}:${topic}`
const exchangeId = (type: string, name: string): string => `${type}:exchange:${name}`

/** The node a point's hop goes through: its queue (topic, stream), or the exchange a RabbitMQ publish names; null for a direct hop. */
function hopId(info: EdgeInfo): string | null {
  if (!info.type || !info.topic) return null
  return info.exchange !== undefined ? exchangeId(info.type, info.exchange) : queueId(info.type, info.topic)
}

export interface EdgeAcc {
  view: Omit<EdgeView, 'count' | 'filling' | 'rate' | 'latency' | 'payloadSize' | 'lag'>
  series: Series[]
}

/** The pathway hash's 16 hex digits, as tracers log them. */
const hex = (hash: bigint): string => hash.toString(16).padStart(16, '0')

function byHash(store: Store): Map<bigint, Series> {
  const map = new Map<bigint, Series>()
  for (const s of store.series()) if (!map.has(s.hash)) map.set(s.hash, s)
  return map
}

/** The hops of the pipeline, each with the series of stats points it is made of. */
export function collectEdges(store: Store): Map<string, EdgeAcc> {
  const hashes = byHash(store)
  const edges = new Map<string, EdgeAcc>()
  const add = (view: EdgeAcc['view'], s: Series): void => {
    let acc = edges.get(view.id)
    if (!acc) edges.set(view.id, (acc = { view, series: [] }))
    acc.series.push(s)
  }
  for (const s of store.series()) {
    const { direction, type, topic, group, exchange } = s.info
    const svc = serviceId(s.service)
    const q = hopId(s.info)
    if (direction && type && q) {
      if (direction === 'out') add({ id: `${svc}>${q}`, from: svc, to: q, kind: 'produce', type, topic, ...(exchange !== undefined && { exchange }) }, s)
      else {
        add({ id: `${q}>${svc}${group ? `#${group}` : ''}`, from: q, to: svc, kind: 'consume', type, topic, group }, s)
        const up = s.parent !== 0n ? hashes.get(s.parent) : undefined
        const x = up?.info.direction === 'out' && up.info.type === type && up.info.exchange !== undefined ? up.info.exchange : undefined
        if (x !== undefined) add({ id: `${exchangeId(type, x)}>${q}`, from: exchangeId(type, x), to: q, kind: 'route', type, topic, exchange: x }, s)
      }
    } else if (s.parent !== 0n) {
      const up = hashes.get(s.parent)
      if (up && up.service !== s.service) {
        const from = serviceId(up.service)
        add({ id: `${from}>${svc}`, from, to: svc, kind: 'direct', type: type ?? 'direct' }, s)
      }
    }
  }
  return edges
}

export function topology(store: Store, range: Range): Topology {
  const services = new Set<string>()
  const serviceInputs = new Map<string, Series[]>()
  for (const s of store.series()) {
    services.add(s.service)
    if (s.info.direction === 'in') push(serviceInputs, s.service, s)
  }
  const edges = collectEdges(store)

  const edgeViews: EdgeView[] = []
  const queueOut = new Map<string, Series[]>()
  for (const { view, series } of edges.values()) {
    const m = mergeCells(series.map((s) => s.cells), range)
    // A first producer's points time no hop before them (their edge latency is 0): such an edge has no latency.
    // A route edge's points are its queue's consumes, whose latency is the consume edge's.
    const latency = (view.kind === 'produce' && m.edge.zeroCount === m.edge.count) || view.kind === 'route' ? null : quantilesOf(m.edge)
    edgeViews.push({ ...view, count: m.count, filling: m.filling, rate: m.rate, latency, payloadSize: quantilesOf(m.size) })
    if (view.kind === 'consume') push(queueOut, view.from, ...series)
  }
  edgeViews.sort((a, b) => a.id.localeCompare(b.id))

  const nodes = new Map<string, NodeView>()
  for (const name of services) {
    const inputs = serviceInputs.get(name) ?? []
    const p99 = inputs.length > 0 ? quantilesOf(mergeCells(inputs.map((s) => s.cells), range).pathway)?.p99 ?? null : null
    nodes.set(serviceId(name), { id: serviceId(name), kind: 'service', name, inRate: 0, outRate: 0, p99 })
  }
  for (const e of edgeViews) {
    for (const id of [e.from, e.to]) {
      if (nodes.has(id) || e.kind === 'direct') continue
      const out = queueOut.get(id) ?? []
      const p99 = out.length > 0 ? quantilesOf(mergeCells(out.map((s) => s.cells), range).edge)?.p99 ?? null : null
      const exchange = (e.kind === 'produce' && id === e.to) || (e.kind === 'route' && id === e.from) ? e.exchange : undefined
      if (exchange !== undefined) nodes.set(id, { id, kind: 'exchange', name: exchange, type: e.type, role: 'exchange', inRate: 0, outRate: 0, p99: null })
      else nodes.set(id, { id, kind: 'queue', name: e.topic ?? id, type: e.type, role: queueRole(e.type), inRate: 0, outRate: 0, p99 })
    }
    nodes.get(e.from)!.outRate += e.rate
    nodes.get(e.to)!.inRate += e.rate
  }
  return { nodes: [...nodes.values()].sort((a, b) => a.id.localeCompare(b.id)), edges: edgeViews }
}

/** Most pathways listed; past this the rest are left out (each is a walk over parent links). */
const MAX_PATHWAYS = 500
/** Longest chain of parent links followed, and most Kinesis producers joined per segment. */
const MAX_DEPTH = 64
const MAX_UPSTREAMS = 8

/** Points of a pathway, split into segments (more than one only through Kinesis). */
interface Chain {
  segments: Series[][]
  complete: boolean
}

/** One pathway per consume point and per way of reaching it. */
export function pathways(store: Store, range: Range): PathwayView[] {
  const walk: Walk = { hashes: byHash(store), kinesisProducers: new Map(), left: MAX_PATHWAYS }
  for (const s of store.series()) {
    if (s.info.direction === 'out' && s.info.type === 'kinesis' && s.info.topic) push(walk.kinesisProducers, s.info.topic, s)
  }
  const out: PathwayView[] = []
  for (const end of store.series()) {
    if (walk.left <= 0) break
    if (end.info.direction !== 'in' || !hasRecent(end, range)) continue
    for (const chain of chainsTo(end, walk, new Set())) out.push(view(chain, end, range))
  }
  return out.sort((a, b) => a.nodes.join('>').localeCompare(b.nodes.join('>')) || a.id.localeCompare(b.id))
}

function hasRecent(s: Series, range: Range): boolean {
  for (const start of s.cells.keys()) if (start >= range.from) return true
  return false
}

interface Walk {
  hashes: Map<bigint, Series>
  /** Produce points into each Kinesis stream. */
  kinesisProducers: Map<string, Series[]>
  /** Pathways still to be listed: joining Kinesis segments multiplies them, so their number is capped. */
  left: number
}

/**
 * Walks parent links up from `end`; at a Kinesis segment start, joins each producer into that
 * stream (`joined` holds the producers joined on the way, so that a loop through a stream ends).
 */
function chainsTo(end: Series, walk: Walk, joined: Set<Series>): Chain[] {
  const points = [end]
  const seen = new Set<bigint>([end.hash])
  let complete = true
  for (let cur = end; cur.parent !== 0n; ) {
    const up = walk.hashes.get(cur.parent)
    if (!up || seen.has(up.hash) || points.length >= MAX_DEPTH) {
      complete = false
      break
    }
    seen.add(up.hash)
    points.unshift(up)
    cur = up
  }
  const root = points[0]
  const segmentStart = complete && root.info.type === 'kinesis' && root.info.direction === 'in'
  const producers = segmentStart ? (walk.kinesisProducers.get(root.info.topic ?? '') ?? []) : []
  const fresh = producers.filter((p) => !joined.has(p)).slice(0, MAX_UPSTREAMS)
  if (fresh.length === 0) {
    walk.left--
    // A Kinesis segment whose producer is not known (or only through a loop) is incomplete.
    return [{ segments: [points], complete: complete && !segmentStart }]
  }
  const out: Chain[] = []
  for (const p of fresh) {
    if (walk.left <= 0) break
    joined.add(p)
    for (const up of chainsTo(p, walk, joined)) out.push({ segments: [...up.segments, points], complete: up.complete })
    joined.delete(p)
  }
  return out
}

function view(chain: Chain, end: Series, range: Range): PathwayView {
  const nodes: string[] = []
  const visit = (id: string): void => {
    if (nodes[nodes.length - 1] !== id) nodes.push(id)
  }
  for (const segment of chain.segments) {
    for (const p of segment) {
      const { direction } = p.info
      const q = hopId(p.info)
      if (direction === 'in' && q) visit(q)
      visit(serviceId(p.service))
      if (direction === 'out' && q) visit(q)
    }
  }
  const merged = mergeCells([end.cells], range)
  let latency = quantilesOf(merged.pathway)
  if (chain.segments.length > 1 && latency) {
    // Each segment's latency is the PathwayLatency of its last point; the sum is approximate.
    for (const segment of chain.segments.slice(0, -1)) {
      const last = segment[segment.length - 1]
      const q = quantilesOf(mergeCells([last.cells], range).pathway)
      if (q) latency = { p50: latency.p50 + q.p50, p95: latency.p95 + q.p95, p99: latency.p99 + q.p99 }
    }
  }
  return {
    id: chain.segments.flat().map((p) => hex(p.hash)).join('-'),
    nodes,
    service: end.service,
    count: merged.count,
    filling: merged.filling,
    rate: merged.rate,
    latency,
    approximate: chain.segments.length > 1,
    complete: chain.complete,
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, ...values: V[]): void {
  let list = map.get(key)
  if (!list) map.set(key, (list = []))
  list.push(...values)
}
