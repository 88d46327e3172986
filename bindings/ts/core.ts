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
import { pointCaps, type Core, type CoreOptions, type Sketch } from '../core/types.js'
import { NodeIds } from '../core/node-ids.js'
import { Aggregator, type Point } from './aggregator.js'
import { fnv1Bytes, fnv1Pair, fnvOut } from './fnv.js'
import { TsSketch } from './sketch.js'
import { PointWriter } from './stats-point.js'

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
  /** Node edge tags by id, as msgpack: what their drained points carry (none once an id is free). */
  private readonly nodeTags: (Uint8Array | undefined)[] = []
  /** The highest bucket a checkpoint has named: a node released now has no point past it. */
  private maxBucket = -Infinity
  private readonly aggregator: Aggregator
  private readonly batch = new Float64Array(BATCH_CAPACITY * BATCH_STRIDE)
  /** The drain under way: its points, the next one to write, whether its sketches may take the sparse form. */
  private drained: Point[] = []
  private cursor = 0
  private sparse = false
  private readonly writer = new PointWriter()
  private ends = new Uint32Array(256)
  private endCount = 0
  chunkBucket = 0

  constructor(options: CoreOptions = {}) {
    const caps = pointCaps(options)
    this.aggregator = new Aggregator(caps.perBucket, caps.live)
  }

  private readonly define = (id: number, text: string, tags: Uint8Array): void => {
    fnv1Bytes(utf8.encode(text))
    this.nodeHi[id] = fnvOut.hi
    this.nodeLo[id] = fnvOut.lo
    this.nodeTags[id] = tags
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
    // the bucket as the Wasm core's i32 argument takes it (NaN 0, fractions cut, wrapped past 32 bits)
    return this.aggregator.record(bucket | 0, this.hashHi, this.hashLo, parentHi >>> 0, parentLo >>> 0, node, pathwayLatencyS, edgeLatencyS, payloadBytes)
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

  drainBegin(beforeBucket: number, sparse: boolean): number {
    this.drainEnd()
    this.drained = this.aggregator.drain(beforeBucket)
    this.nodes.drainStarted(beforeBucket, this.aggregator.live)
    this.sparse = sparse
    return this.drained.length
  }

  drainChunk(maxBytes: number): number {
    const { drained, writer } = this
    // at least one point is written whatever the bound: anything not a number past 0 asks for one
    const bound = maxBytes > 0 ? maxBytes : 0
    writer.length = 0
    this.endCount = 0
    if (this.cursor >= drained.length) return 0
    const bucket = drained[this.cursor].bucket
    while (this.cursor < drained.length) {
      const p = drained[this.cursor]
      if (p.bucket !== bucket) break
      const tags = this.nodeTags[p.node]
      const size = writer.measure(tags, p.pathway, p.edge, p.payload, this.sparse)
      if (this.endCount > 0 && writer.length + size > bound) break
      writer.write(size, tags, p.hashHi, p.hashLo, p.parentHi, p.parentLo, p.pathway, p.edge, p.payload)
      if (this.endCount === this.ends.length) {
        const ends = new Uint32Array(this.ends.length * 2)
        ends.set(this.ends)
        this.ends = ends
      }
      this.ends[this.endCount++] = writer.length
      this.cursor++
    }
    this.chunkBucket = bucket
    return this.endCount
  }

  chunkBytes(): Uint8Array {
    return this.writer.bytes.subarray(0, this.writer.length)
  }

  chunkEnds(): Uint32Array {
    return this.ends.subarray(0, this.endCount)
  }

  drainEnd(): void {
    for (const id of this.nodes.drainEnded()) this.nodeTags[id] = undefined
    this.drained = []
    this.cursor = 0
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
