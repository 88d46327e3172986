/**
 * The interface both cores implement: the AssemblyScript core compiled to Wasm
 * (`bindings/wasm`) and the pure-TS core (`bindings/ts`). Both must give the same
 * results bit for bit: same hashes, same keys, same counts, same protobuf bytes.
 *
 * 64-bit hashes cross this interface as two unsigned 32-bit halves (`hi`, `lo`),
 * never as BigInt: handing a BigInt to Wasm costs microseconds.
 */

export type Backend = 'wasm' | 'ts'

/** A DDSketch (logarithmic mapping, 1% relative accuracy, collapsing-lowest dense store). */
export interface Sketch {
  /** Adds `value` with `weight` (default 1). Values at or below the smallest indexable value, negative ones included, count as zeros; a weight that is not > 0 is ignored. */
  add(value: number, weight?: number): void
  /** Adds every count of `other` (a sketch of the same backend). */
  merge(other: Sketch): void
  /** The value at quantile `q` in [0, 1]; NaN when empty or when q is out of range. */
  quantile(q: number): number
  /** Total weight, zeros included. */
  readonly count: number
  readonly zeroCount: number
  /** The DDSketch protobuf (ddsketch.proto of sketches-go), writing only the occupied bins. */
  toProto(): Uint8Array
  /** Releases the sketch's memory; the sketch must not be used afterwards. */
  free(): void
}

/** One stats point handed out by `drain`. */
export interface DrainedPoint {
  hashHi: number
  hashLo: number
  parentHi: number
  parentLo: number
  /** The node id (`Core.node`) whose edge tags this point carries. */
  node: number
  /** DDSketch protobufs. */
  pathwayLatency: Uint8Array
  edgeLatency: Uint8Array
  payloadSize: Uint8Array
}

export interface DrainedBucket {
  /** Bucket number: the bucket starts at `bucket * 10 s` since the epoch. */
  bucket: number
  points: DrainedPoint[]
}

export interface CoreOptions {
  backend?: Backend
  /** Most stats points alive at once; a checkpoint that needs a new point past this is dropped and counted. */
  maxPoints?: number
}

export interface Core {
  readonly backend: Backend

  /**
   * The id of the node (service, env, edge tags), registering it when it is not live (new, or
   * released since; it may then get the id of a node released before). Its FNV-1 64
   * hash of utf8(service + env + sortedTags.join('')) is computed once here. Callers cache the id.
   */
  node(service: string, env: string, edgeTags: readonly string[]): number
  /**
   * Forgets node `id`: the caller makes no further checkpoint with it. The core drops it from its
   * lookup (the same service, env and tags then register anew) and hands its id out
   * again from a later `node()` call once no live stats point can carry it: after a `drain` whose
   * `beforeBucket` is above the highest bucket any checkpoint had named when it was released, or
   * after any drain that leaves no point alive. Until then a drained point of it still carries
   * `id`. Unknown or already released ids are ignored.
   */
  releaseNode(id: number): void
  /** Nodes registered and not released. */
  readonly liveNodes: number
  /** The node's hash, into `hashHi` / `hashLo`. */
  nodeHash(node: number): void

  /** pathwayHash = fnv1_64(le64(nodeHash) ++ le64(parent)), into `hashHi` / `hashLo`. */
  pathwayHash(node: number, parentHi: number, parentLo: number): void

  /**
   * Computes the pathway hash (into `hashHi` / `hashLo`) and records the checkpoint into the stats
   * point (bucket, hash, parent, node). Returns false when the point cap dropped it (the hash is
   * still computed, so the message's context stays right).
   */
  checkpoint(
    node: number,
    parentHi: number,
    parentLo: number,
    bucket: number,
    pathwayLatencyS: number,
    edgeLatencyS: number,
    payloadBytes: number,
  ): boolean

  /** Result of the last `nodeHash`, `pathwayHash` or `checkpoint`. */
  readonly hashHi: number
  readonly hashLo: number

  /**
   * The shared batch buffer: BATCH_STRIDE float64 slots a record, BATCH_CAPACITY records.
   * Call again before each batch (a Wasm memory growth replaces the view).
   */
  batchBuffer(): Float64Array
  /**
   * Records `count` (at most BATCH_CAPACITY) checkpoints from the batch buffer, all in `bucket`;
   * writes each record's pathway hash into its BATCH_OUT_HI / BATCH_OUT_LO slots. Returns how many
   * were recorded. The call may grow Wasm memory: read the results through a new `batchBuffer()`.
   */
  checkpointBatch(count: number, bucket: number): number

  /** Hands out every bucket numbered below `beforeBucket` (ascending; points in insertion order) and frees them. */
  drain(beforeBucket: number): DrainedBucket[]

  /** Stats points alive now. */
  readonly livePoints: number
  /** Checkpoints dropped because the cap on live points was reached, since creation. */
  readonly droppedPoints: number

  newSketch(): Sketch
}

export const DEFAULT_MAX_POINTS = 50_000
