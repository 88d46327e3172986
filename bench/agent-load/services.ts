/**
 * The simulated services of the agent load bench: what each sends, as a tracer would, built with
 * pathwise's own core (node and pathway hashes, DDSketch protobufs) and payload codec
 * (`encodeStatsPayload`), gzipped at level 1 like pathwise's and dd-trace's exporters.
 *
 * Services form pipelines of PIPELINE_DEPTH stages: a stage consumes the topics its upstream
 * stage produces to (its consume points' parents are the upstream's produce pathways), and
 * produces to topics of its own, so that the agent's topology and pathways have real chains to
 * follow. A service's points alternate consume and produce over a few topics (at most
 * MAX_TOPICS), with as many upstream pathways per topic as it takes to make `points` distinct
 * series: the agent keeps services × points series.
 */
import { gzipSync } from 'node:zlib'
import { BUCKET_MS, createCore, encodeStatsPayload, type Core, type ExportPoint } from 'pathwise/core'

export const ENV = 'load'
const PIPELINE_DEPTH = 4
const MAX_TOPICS = 5
/** Distinct sketch triples the points draw from: building each point's own would cost more than the agent's work. */
const SKETCH_POOL = 64

export interface ServiceSpec {
  services: number
  points: number
}

interface PointShape {
  edgeTags: string[]
  hashHi: number
  hashLo: number
  parentHi: number
  parentLo: number
}

type SketchTriple = Pick<ExportPoint, 'pathwayLatency' | 'edgeLatency' | 'payloadSize'>

/** A small deterministic PRNG (mulberry32): the same payloads on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Log-normal around `median`: latencies and sizes spread over bins as real ones do. */
function logNormal(next: () => number, median: number, sigma: number): number {
  const u = Math.max(next(), 1e-12)
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next())
  return median * Math.exp(sigma * z)
}

/**
 * What a point holds in a 10 s bucket: 1 to 1,000 messages, log-uniform (most pathways are quiet,
 * a few busy), edge latency around 5 ms, pathway latency around 50 ms more, sizes around 600 B.
 */
function sketchPool(core: Core): SketchTriple[] {
  const next = random(0x5eed)
  const pool: SketchTriple[] = []
  for (let i = 0; i < SKETCH_POOL; i++) {
    const edge = core.newSketch()
    const pathway = core.newSketch()
    const size = core.newSketch()
    const messages = Math.round(Math.exp(next() * Math.log(1000)))
    for (let m = 0; m < messages; m++) {
      const e = logNormal(next, 0.005, 0.8)
      edge.add(e)
      pathway.add(e + logNormal(next, 0.05, 0.6))
      size.add(Math.round(logNormal(next, 600, 0.3)))
    }
    pool.push({ edgeLatency: edge.toProto(), pathwayLatency: pathway.toProto(), payloadSize: size.toProto() })
    for (const s of [edge, pathway, size]) s.free()
  }
  return pool
}

export function serviceName(i: number): string {
  return `load-svc-${String(i).padStart(4, '0')}`
}

function hashOf(core: Core, node: number, parentHi: number, parentLo: number): [number, number] {
  core.pathwayHash(node, parentHi, parentLo)
  return [core.hashHi, core.hashLo]
}

/** Every service's points (tags, hash, parent), the same for every bucket. */
function pointShapes(core: Core, spec: ServiceSpec): PointShape[][] {
  const topics = Math.min(MAX_TOPICS, Math.max(1, Math.ceil(spec.points / 2)))
  const topicOf = (service: number, t: number) => `load-p${Math.floor(service / PIPELINE_DEPTH)}-s${service % PIPELINE_DEPTH}-t${t}`
  const shapes: PointShape[][] = []
  for (let s = 0; s < spec.services; s++) {
    const name = serviceName(s)
    const consumed = new Map<number, [number, number]>()
    const points: PointShape[] = []
    for (let j = 0; j < spec.points; j++) {
      const idx = j >> 1
      const t = idx % topics
      let tags: string[]
      let parent: [number, number]
      if (j % 2 === 0) {
        // Consume the upstream stage's topic; a first stage's upstream is outside the simulation.
        const first = s % PIPELINE_DEPTH === 0
        tags = ['direction:in', `group:${name}`, `topic:${first ? `load-p${Math.floor(s / PIPELINE_DEPTH)}-in-t${t}` : topicOf(s - 1, t)}`, 'type:kafka']
        const upstream = first ? undefined : shapesProduced(shapes[s - 1], idx)
        parent = upstream ?? [0x1000 + s, idx]
      } else {
        tags = ['direction:out', `topic:${topicOf(s, t)}`, 'type:kafka']
        parent = consumed.get(idx)!
      }
      const hash = hashOf(core, core.node(name, ENV, tags), parent[0], parent[1])
      if (j % 2 === 0) consumed.set(idx, hash)
      points.push({ edgeTags: tags, hashHi: hash[0], hashLo: hash[1], parentHi: parent[0], parentLo: parent[1] })
    }
    shapes.push(points)
  }
  return shapes
}

/** The upstream service's produce point of the same index, if it has one. */
function shapesProduced(upstream: PointShape[] | undefined, idx: number): [number, number] | undefined {
  const p = upstream?.[idx * 2 + 1]
  return p === undefined ? undefined : [p.hashHi, p.hashLo]
}

export interface Fleet {
  spec: ServiceSpec
  /** Service `i`'s gzipped payload holding bucket `bucket` (number of 10 s since the epoch): built then, unless prepared. */
  payload(service: number, bucket: number): Buffer
  /** Gzipped and msgpack bytes of the payloads built so far, for the report. */
  sizes(): { gzipped: number; msgpack: number; payloads: number }
}

/**
 * The services of `spec`, their payloads built on demand; the buckets prepared are built at once and
 * kept (a run prepares the buckets it will send before it starts timing: `prepare`). Payloads are
 * gzipped at `gzipLevel` (1, as pathwise's and dd-trace's exporters do; 0 stores them, for a test
 * that only needs the agent to hold many).
 */
export function fleet(spec: ServiceSpec, gzipLevel = 1): Fleet & { prepare(buckets: readonly number[]): void } {
  const core = createCore()
  const pool = sketchPool(core)
  const shapes = pointShapes(core, spec)
  const built = new Map<number, Buffer[]>()
  let gzipped = 0
  let msgpack = 0
  let payloads = 0

  const build = (service: number, bucket: number): Buffer => {
    const points: ExportPoint[] = shapes[service].map((shape, j) => ({
      ...shape,
      ...pool[(service * 31 + j * 7 + bucket) % SKETCH_POOL],
      timestampType: 'current',
    }))
    const raw = encodeStatsPayload({ env: ENV, service: serviceName(service), version: '1.0.0', tracerVersion: '0.1.0' }, [
      { bucket, points, backlogs: [] },
    ])
    const body = gzipSync(raw, { level: gzipLevel })
    gzipped += body.length
    msgpack += raw.length
    payloads++
    return body
  }

  return {
    spec,
    prepare(buckets) {
      for (const b of buckets) if (!built.has(b)) built.set(b, Array.from({ length: spec.services }, (_, s) => build(s, b)))
    },
    payload: (service, bucket) => built.get(bucket)?.[service] ?? build(service, bucket),
    sizes: () => ({ gzipped, msgpack, payloads }),
  }
}

/** The bucket a tracer flushing at `ms` sends: the last one that has ended. */
export function finishedBucket(ms: number): number {
  return Math.floor(ms / BUCKET_MS) - 1
}
