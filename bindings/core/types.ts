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
  /** The DDSketch protobuf (ddsketch.proto of sketches-go), its store in the contiguous form (bins from the lowest occupied to the highest), which every reader takes. */
  toProto(): Uint8Array
  /** Releases the sketch's memory; the sketch must not be used afterwards. */
  free(): void
}

export interface CoreOptions {
  backend?: Backend
  /** Most stats points of one bucket; a checkpoint that needs a new point past this is dropped and counted. */
  maxPoints?: number
  /** Most stats points alive at once, all buckets together (default LIVE_BUCKETS × maxPoints): the memory bound. */
  maxLivePoints?: number
}

export interface Core {
  readonly backend: Backend

  /**
   * The id of the node (service, env, edge tags), registering it when it is not live (new, or
   * released since; it may then get the id of a node released before). Its FNV-1 64
   * hash of utf8(service + env + sortedTags.join('')), and its sorted edge tags as msgpack (what
   * its drained points carry), are computed once here. Callers cache the id.
   */
  node(service: string, env: string, edgeTags: readonly string[]): number
  /**
   * Forgets node `id`: the caller makes no further checkpoint with it. The core drops it from its
   * lookup (the same service, env and tags then register anew) and hands its id out
   * again from a later `node()` call once no stats point can carry it: after a drain (at its
   * `drainEnd`) whose `beforeBucket` is above the highest bucket any checkpoint had named when it
   * was released, or after any drain that leaves no point alive. Until then a drained point of it
   * still carries its tags. Unknown or already released ids are ignored.
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
   * point (bucket, hash, parent, node). Returns false when a point cap dropped it (the hash is
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

  /**
   * Starts a drain (ending one under way): every point of a bucket numbered below `beforeBucket`
   * leaves the live points (checkpoints go on into new ones meanwhile), to be written out by
   * `drainChunk`. Returns how many. `sparse`: each sketch in the smaller of its two protobuf forms
   * (the `binCounts` map is read by some readers only: see README); else the contiguous form.
   */
  drainBegin(beforeBucket: number, sparse: boolean): number
  /**
   * Writes the next drained points, all of one bucket (buckets ascending, points in insertion order
   * within one), as msgpack StatsPoint maps: as many as fit in `maxBytes`, and at least one.
   * Returns how many (0 once the drain is written). No JS object is made per point.
   */
  drainChunk(maxBytes: number): number
  /** The bucket of the last chunk. */
  readonly chunkBucket: number
  /** The last chunk's bytes: a view, valid until the next call into the core. */
  chunkBytes(): Uint8Array
  /** Where each point of the last chunk ends in its bytes: a view, valid until the next call into the core. */
  chunkEnds(): Uint32Array
  /** Ends the drain: frees its points, written or not, and the ids of released nodes they held. */
  drainEnd(): void

  /** Stats points alive now. */
  readonly livePoints: number
  /** Checkpoints dropped because a cap on points was reached, since creation. */
  readonly droppedPoints: number

  newSketch(): Sketch
}

export const DEFAULT_MAX_POINTS = 50_000
/** Buckets' worth of points alive at once by default: the current bucket, the one before (until a flush drains it) and one more for a late timer. */
export const LIVE_BUCKETS = 3

/** The caps as both cores count them: integers, a count past which a new point is dropped. */
export function pointCaps(options: CoreOptions): { perBucket: number; live: number } {
  const perBucket = cap(options.maxPoints ?? DEFAULT_MAX_POINTS)
  return { perBucket, live: cap(options.maxLivePoints ?? perBucket * LIVE_BUCKETS) }
}

/** A cap as the i32 the Wasm core keeps: NaN or anything past i32 means no cap, a fraction rounds up. */
function cap(n: number): number {
  if (!(n < 0x7fffffff)) return 0x7fffffff
  return Math.max(0, Math.ceil(n))
}
