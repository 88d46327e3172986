import {
  BATCH_CAPACITY,
  BATCH_EDGE_LATENCY,
  BATCH_NODE,
  BATCH_OUT_HI,
  BATCH_OUT_LO,
  BATCH_PARENT_HI,
  BATCH_PARENT_LO,
  BATCH_PATHWAY_LATENCY,
  BATCH_PAYLOAD,
  BATCH_STRIDE,
  DEFAULT_MAX_POINTS,
  type Core,
  type CoreOptions,
  type DrainedBucket,
  type Sketch,
} from '../core/types.js'
import { nodeKey } from '../core/node-key.js'
import { Aggregator } from './aggregator.js'
import { fnv1Bytes, fnv1Pair, fnvOut } from './fnv.js'
import { TsSketch } from './sketch.js'

const utf8 = new TextEncoder()

/** The pure-TS core: the fallback where WebAssembly is unavailable, and the benchmark baseline. */
export class TsCore implements Core {
  readonly backend = 'ts' as const
  hashHi = 0
  hashLo = 0
  private readonly nodes = new Map<string, number>()
  private nodeHi: number[] = []
  private nodeLo: number[] = []
  private readonly aggregator: Aggregator
  private readonly batch = new Float64Array(BATCH_CAPACITY * BATCH_STRIDE)

  constructor(options: CoreOptions = {}) {
    this.aggregator = new Aggregator(options.maxPoints ?? DEFAULT_MAX_POINTS)
  }

  node(service: string, env: string, edgeTags: readonly string[]): number {
    const sorted = [...edgeTags].sort()
    const key = nodeKey(service, env, sorted)
    let id = this.nodes.get(key)
    if (id === undefined) {
      fnv1Bytes(utf8.encode(service + env + sorted.join('')))
      id = this.nodeHi.length
      this.nodeHi.push(fnvOut.hi)
      this.nodeLo.push(fnvOut.lo)
      this.nodes.set(key, id)
    }
    return id
  }

  nodeHash(node: number): void {
    this.hashHi = this.nodeHi[node]
    this.hashLo = this.nodeLo[node]
  }

  pathwayHash(node: number, parentHi: number, parentLo: number): void {
    fnv1Pair(this.nodeHi[node], this.nodeLo[node], parentHi, parentLo)
    this.hashHi = fnvOut.hi
    this.hashLo = fnvOut.lo
  }

  checkpoint(
    node: number,
    parentHi: number,
    parentLo: number,
    bucket: number,
    pathwayLatencyS: number,
    edgeLatencyS: number,
    payloadBytes: number,
  ): boolean {
    this.pathwayHash(node, parentHi, parentLo)
    // the point keeps the unsigned halves the hash was computed from (a signed half would drain as a negative ParentHash)
    return this.aggregator.record(bucket, this.hashHi, this.hashLo, parentHi >>> 0, parentLo >>> 0, node, pathwayLatencyS, edgeLatencyS, payloadBytes)
  }

  batchBuffer(): Float64Array {
    return this.batch
  }

  checkpointBatch(count: number, bucket: number): number {
    const b = this.batch
    const n = Math.min(count, BATCH_CAPACITY) // past the buffer there are no records
    let recorded = 0
    for (let i = 0, r = 0; i < n; i++, r += BATCH_STRIDE) {
      if (this.checkpoint(b[r + BATCH_NODE], b[r + BATCH_PARENT_HI], b[r + BATCH_PARENT_LO], bucket, b[r + BATCH_PATHWAY_LATENCY], b[r + BATCH_EDGE_LATENCY], b[r + BATCH_PAYLOAD])) recorded++
      b[r + BATCH_OUT_HI] = this.hashHi
      b[r + BATCH_OUT_LO] = this.hashLo
    }
    return recorded
  }

  drain(beforeBucket: number): DrainedBucket[] {
    return this.aggregator.drain(beforeBucket)
  }

  get livePoints(): number {
    return this.aggregator.live
  }

  get droppedPoints(): number {
    return this.aggregator.dropped
  }

  newSketch(): Sketch {
    return new TsSketch()
  }
}
