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
} from '../core/layout.js'
import { DEFAULT_MAX_POINTS, type Core, type CoreOptions, type DrainedBucket, type Sketch } from '../core/types.js'
import { NodeIds } from '../core/node-ids.js'
import { Aggregator } from './aggregator.js'
import { fnv1Bytes, fnv1Pair, fnvOut } from './fnv.js'
import { TsSketch } from './sketch.js'

const utf8 = new TextEncoder()

/** The pure-TS core: the fallback where WebAssembly is unavailable, and the benchmark baseline. */
export class TsCore implements Core {
  readonly backend = 'ts' as const
  hashHi = 0
  hashLo = 0
  private readonly nodes = new NodeIds()
  /** Node hashes by id; a free id keeps its last node's until reused, as in the Wasm core. */
  private readonly nodeHi: number[] = []
  private readonly nodeLo: number[] = []
  /** The highest bucket a checkpoint has named: a node released now has no point past it. */
  private maxBucket = -Infinity
  private readonly aggregator: Aggregator
  private readonly batch = new Float64Array(BATCH_CAPACITY * BATCH_STRIDE)

  constructor(options: CoreOptions = {}) {
    this.aggregator = new Aggregator(options.maxPoints ?? DEFAULT_MAX_POINTS)
  }

  private readonly define = (id: number, text: string): void => {
    fnv1Bytes(utf8.encode(text))
    this.nodeHi[id] = fnvOut.hi
    this.nodeLo[id] = fnvOut.lo
  }

  node(service: string, env: string, edgeTags: readonly string[]): number {
    return this.nodes.id(service, env, edgeTags, this.define)
  }

  releaseNode(id: number): void {
    this.nodes.release(id, this.maxBucket)
  }

  get liveNodes(): number {
    return this.nodes.live
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
    if (bucket > this.maxBucket) this.maxBucket = bucket
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
    const drained = this.aggregator.drain(beforeBucket)
    this.nodes.drained(beforeBucket, this.aggregator.live)
    return drained
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
