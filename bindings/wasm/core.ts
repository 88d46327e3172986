import { BATCH_CAPACITY, BATCH_STRIDE, CHUNK_AT, CHUNK_BUCKET, CHUNK_ENDS, HASH_HI, HASH_LO, OUT_LENGTH, OUT_MIN_KEY, SCRATCH_WORDS } from '../core/layout.js'
import { pointCaps, type Core, type CoreOptions, type Sketch } from '../core/types.js'
import { NodeIds } from '../core/node-ids.js'
import { valueOf } from '../ts/sketch.js'
import { coreModule } from './module.js'

/** What `assembly/index.ts` exports. Addresses and i32 results arrive as signed numbers (hence `>>> 0`). */
interface Exports {
  readonly memory: WebAssembly.Memory
  init(perBucket: number, live: number): void
  scratch(): number
  batch(): number
  reserveInput(size: number): number
  node(id: number, len: number, tagsLen: number): void
  nodeTable(count: number): number
  nodeTags(id: number): number
  nodeTagsSet(id: number, len: number): void
  nodeHash(node: number): void
  pathwayHash(node: number, parentHi: number, parentLo: number): void
  checkpoint(node: number, parentHi: number, parentLo: number, bucket: number, pathwayLatencyS: number, edgeLatencyS: number, payloadBytes: number): number
  checkpointBatch(count: number, bucket: number): number
  livePoints(): number
  droppedPoints(): number
  drainBegin(beforeBucket: number, sparse: number): number
  drainChunk(maxBytes: number): number
  drainEnd(): void
  sketchNew(): number
  sketchAdd(sketch: number, value: number, weight: number): void
  sketchMerge(sketch: number, other: number): void
  sketchMergeInput(sketch: number, zeroCount: number, n: number, minKey: number): void
  sketchBins(sketch: number): number
  sketchQuantileKey(sketch: number, q: number): number
  sketchCount(sketch: number): number
  sketchZeroCount(sketch: number): number
  sketchEncode(sketch: number): number
  sketchFree(sketch: number): void
}

const utf8 = new TextEncoder()

/**
 * A core over its own Wasm instance (so several cores can live in one process). The module is
 * compiled once per process from the embedded bytes, unless the runtime hands one over.
 */
export function createWasmCore(options: CoreOptions, module?: WebAssembly.Module): Core {
  return new WasmCore(options, module ?? coreModule())
}

class WasmCore implements Core {
  readonly backend = 'wasm' as const
  x!: Exports
  private readonly nodes = new NodeIds()
  /** The highest bucket a checkpoint has named: a node released now has no point past it. */
  private maxBucket = -Infinity
  private readonly caps: { perBucket: number; live: number }
  private scratchAt = 0
  private batchAt = 0
  /** Memory size once the instance has started and holds the node table: a drain restarts it only when it grew past this. */
  private startBytes = 0
  /** Points in the last chunk. */
  private chunkCount = 0
  /** Sketches handed out by newSketch and not freed: they pin the instance. */
  liveSketches = 0
  /** Drops counted by the instances this core has replaced. */
  private droppedBefore = 0
  // Views over Wasm memory; a memory growth detaches them (they then read as empty) and they are re-made.
  private words!: Uint32Array
  private batch!: Float64Array

  constructor(
    options: CoreOptions,
    private readonly module: WebAssembly.Module,
  ) {
    this.caps = pointCaps(options)
    this.start()
    this.startBytes = this.x.memory.buffer.byteLength
  }

  private start(): void {
    this.x = new WebAssembly.Instance(this.module, {}).exports as unknown as Exports
    this.x.init(this.caps.perBucket, this.caps.live)
    this.scratchAt = this.x.scratch()
    this.batchAt = this.x.batch()
    this.words = new Uint32Array(this.x.memory.buffer, this.scratchAt, SCRATCH_WORDS)
    this.batch = new Float64Array(this.x.memory.buffer, this.batchAt, BATCH_CAPACITY * BATCH_STRIDE)
  }

  /**
   * Wasm memory never shrinks: once a drain has left nothing alive, a fresh instance (the module
   * is compiled already) gives a burst's memory back. The node table is copied over as it is, a
   * fixed size per id in use however long the nodes' texts: nothing is hashed again, and the
   * baseline is taken with the table in, so that the next drain does not restart for it. Each
   * node's edge tags follow, one id at a time.
   */
  private restartIfGrown(): void {
    if (this.x.livePoints() !== 0 || this.liveSketches !== 0 || this.x.memory.buffer.byteLength <= this.startBytes) return
    this.droppedBefore += this.x.droppedPoints()
    const old = this.x
    const oldScratch = this.scratch()
    const from = old.nodeTable(this.nodes.size) >>> 0
    const bytes = oldScratch[OUT_LENGTH]
    this.start()
    const to = this.x.nodeTable(this.nodes.size) >>> 0
    new Uint8Array(this.x.memory.buffer, to, bytes).set(new Uint8Array(old.memory.buffer, from, bytes))
    for (let id = 0; id < this.nodes.size; id++) {
      const at = old.nodeTags(id) >>> 0
      const len = new Uint32Array(old.memory.buffer, this.scratchAt, SCRATCH_WORDS)[OUT_LENGTH]
      this.input(len).set(new Uint8Array(old.memory.buffer, at, len))
      this.x.nodeTagsSet(id, len)
    }
    this.startBytes = this.x.memory.buffer.byteLength
  }

  /** `size` bytes of the instance's input, to write into before a call that reads them. */
  private input(size: number): Uint8Array {
    const at = this.x.reserveInput(size) >>> 0 // may grow the memory: its buffer is read after
    return new Uint8Array(this.x.memory.buffer, at, size)
  }

  private readonly define = (id: number, text: string, tags: Uint8Array): void => {
    const room = text.length * 3 // UTF-8 takes at most 3 bytes per UTF-16 unit
    const input = this.input(room + tags.length)
    const { written } = utf8.encodeInto(text, input.subarray(0, room))
    input.set(tags, written)
    this.x.node(id, written, tags.length)
  }

  scratch(): Uint32Array {
    if (this.words.length === 0) this.words = new Uint32Array(this.x.memory.buffer, this.scratchAt, SCRATCH_WORDS)
    return this.words
  }

  /** `len` fresh bytes copied out of Wasm memory. */
  copyOut(at: number, len: number): Uint8Array {
    return new Uint8Array(this.x.memory.buffer, at >>> 0, len).slice()
  }

  get hashHi(): number {
    return this.scratch()[HASH_HI]
  }

  get hashLo(): number {
    return this.scratch()[HASH_LO]
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
    this.x.nodeHash(node)
  }

  // `| 0` before the call: JavaScriptCore converts a double (a u32 above 2^31) to an i32 argument
  // on a slow path, ~30 ns a call; V8 does not care. Bucket numbers cross as i32 (10 s buckets
  // since the epoch fit until the year 2650).
  pathwayHash(node: number, parentHi: number, parentLo: number): void {
    this.x.pathwayHash(node, parentHi | 0, parentLo | 0)
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
    if (bucket > this.maxBucket) this.maxBucket = bucket
    return this.x.checkpoint(node, parentHi | 0, parentLo | 0, bucket, pathwayLatencyS, edgeLatencyS, payloadBytes) !== 0
  }

  batchBuffer(): Float64Array {
    if (this.batch.length === 0) this.batch = new Float64Array(this.x.memory.buffer, this.batchAt, BATCH_CAPACITY * BATCH_STRIDE)
    return this.batch
  }

  checkpointBatch(count: number, bucket: number): number {
    if (bucket > this.maxBucket) this.maxBucket = bucket
    return this.x.checkpointBatch(count, bucket)
  }

  drainBegin(beforeBucket: number, sparse: boolean): number {
    this.drainEnd()
    const n = this.x.drainBegin(beforeBucket, sparse ? 1 : 0)
    this.nodes.drainStarted(beforeBucket, this.x.livePoints())
    return n
  }

  drainChunk(maxBytes: number): number {
    // at least one point is written whatever the bound: anything not a number past 0 asks for one
    return (this.chunkCount = this.x.drainChunk(maxBytes > 0 ? Math.min(maxBytes, 0x7fffffff) : 0))
  }

  get chunkBucket(): number {
    return this.scratch()[CHUNK_BUCKET] | 0
  }

  chunkBytes(): Uint8Array {
    const w = this.scratch()
    return this.chunkCount === 0 ? new Uint8Array(0) : new Uint8Array(this.x.memory.buffer, w[CHUNK_AT], w[OUT_LENGTH])
  }

  chunkEnds(): Uint32Array {
    return new Uint32Array(this.x.memory.buffer, this.scratch()[CHUNK_ENDS], this.chunkCount)
  }

  drainEnd(): void {
    this.chunkCount = 0
    this.x.drainEnd()
    for (const id of this.nodes.drainEnded()) this.x.nodeTagsSet(id, 0)
    this.restartIfGrown()
  }

  get livePoints(): number {
    return this.x.livePoints()
  }

  get droppedPoints(): number {
    return this.droppedBefore + this.x.droppedPoints()
  }

  newSketch(): Sketch {
    this.liveSketches++
    return new WasmSketch(this, this.x.sketchNew())
  }
}

/** A sketch inside a core's Wasm instance, known by its address there. */
export class WasmSketch implements Sketch {
  constructor(
    private readonly core: WasmCore,
    private ptr: number,
  ) {}

  add(value: number, weight = 1): void {
    this.core.x.sketchAdd(this.ptr, value, weight)
  }

  merge(other: Sketch): void {
    const o = other as WasmSketch
    if (o.core === this.core) {
      this.core.x.sketchMerge(this.ptr, o.ptr)
      return
    }
    // another instance: copy its occupied bins into this one's input
    const ox = o.core.x
    const zeroCount = ox.sketchZeroCount(o.ptr)
    const binsAt = ox.sketchBins(o.ptr)
    const w = o.core.scratch()
    const n = w[OUT_LENGTH] | 0
    const minKey = w[OUT_MIN_KEY] | 0
    const at = this.core.x.reserveInput(n * 8) >>> 0
    new Uint8Array(this.core.x.memory.buffer, at, n * 8).set(new Uint8Array(ox.memory.buffer, binsAt >>> 0, n * 8))
    this.core.x.sketchMergeInput(this.ptr, zeroCount, n, minKey)
  }

  quantile(q: number): number {
    const key = this.core.x.sketchQuantileKey(this.ptr, q)
    // NaN: no quantile; Infinity: the rank falls among the zeros
    if (key !== key) return NaN
    return key === Infinity ? 0 : valueOf(key)
  }

  get count(): number {
    return this.core.x.sketchCount(this.ptr)
  }

  get zeroCount(): number {
    return this.core.x.sketchZeroCount(this.ptr)
  }

  toProto(): Uint8Array {
    const at = this.core.x.sketchEncode(this.ptr)
    return this.core.copyOut(at, this.core.scratch()[OUT_LENGTH])
  }

  free(): void {
    if (this.ptr === 0) return
    this.core.x.sketchFree(this.ptr)
    this.core.liveSketches--
    this.ptr = 0
  }
}
