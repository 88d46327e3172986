import type { Backend } from './types.js'

/**
 * The sketch store both cores implement (`bindings/wasm/sketch-store.ts` over `assembly/sketch-store.ts`,
 * and `bindings/ts/sketch-store.ts`): many cells of `width` DDSketches each, every cell kept in the
 * compact form below rather than as dense bins, merged and summed by the same steps as the cores'
 * `Sketch.merge`, so that a cell's sketches are those a core's sketches would be after the same
 * merges, bit for bit. The pathwise agent keeps its history in one (a cell: a series' bucket).
 *
 * The compact form of one sketch: a flags byte, then its fields.
 *   flags 1: a zero count follows; 2: bins follow; 4: counts are doubles (otherwise integers).
 *   integers: [zero count: varint] [lowest key: zigzag varint, span: varint, tokens]
 *     tokens cover the span's keys in order, each a varint t: t even, the next key counts t / 2
 *     (at least 1); t odd, the next (t - 1) / 2 keys count nothing. The first and last keys count.
 *     The bins' total is their sum, which integers below 2^53 keep exact.
 *   doubles: [zero count: f64] [total of the bins: f64, lowest key: zigzag varint, span: varint,
 *     span counts: f64], little-endian; used when a count is not an integer, or past 2^52.
 * A cell is its `width` sketches one after the other; an empty cell is `width` zero bytes.
 * Spans are at most BIN_LIMIT keys, as in the cores' sketches. A sketch of a real latency
 * distribution takes one or two bytes a bin (a 1% sketch of 1,000 latencies about 150 bytes,
 * where its dense bins take 2 KB).
 */

/** Cells' compact bytes and where each ends, for moving cells between stores (and to disk). */
export interface CellBytes {
  bytes: Uint8Array
  /** `ends[i]` is where cell i's bytes end in `bytes` (and cell i + 1's begin). */
  ends: Uint32Array
}

export interface SketchStore {
  readonly backend: Backend
  /** Sketches per cell. */
  readonly width: number
  /** Cells alive. */
  readonly cellCount: number
  /** Bytes the cells' compact forms take together. */
  readonly byteCount: number

  /** A new empty cell's id (ids start at 1; a freed id is handed out again). */
  newCell(): number
  /** Frees a cell; its id must not be used afterwards. Unknown ids are ignored. */
  freeCell(id: number): void

  /**
   * Merges compact cells into cells: for each i < count, the bytes `input[starts[i], starts[i + 1])`
   * (`width` sketches in the compact form) into cell `ids[i]`, as `Sketch.merge` would merge each
   * of its sketches. Bytes that are not a valid compact cell leave that cell as it was. Returns how
   * many were merged; with `merged`, sets merged[i] to 1 or 0 for each.
   */
  merge(ids: ArrayLike<number>, input: Uint8Array, starts: ArrayLike<number>, count: number, merged?: Uint8Array): number
  /** Merges every cell of `sources[0, count)` into cell `target` (a roll-up: the sources stay as they are). */
  mergeCells(target: number, sources: ArrayLike<number>, count: number): void
  /** The compact bytes of cells `ids[0, count)`. */
  bytesOf(ids: ArrayLike<number>, count: number): CellBytes
  /** Merges cells `ids[0, count)` into the sum, which starts empty: what the sum* methods read. */
  sum(ids: ArrayLike<number>, count: number): void
  /** The total count (zeros included) of sketch `i` of the sum. */
  sumCount(i: number): number
  sumZeroCount(i: number): number
  /** The value at quantile `q` of sketch `i` of the sum, as `Sketch.quantile`. */
  sumQuantile(i: number, q: number): number
  /** The DDSketch protobuf of sketch `i` of the sum, as `Sketch.toProto`. */
  sumProto(i: number): Uint8Array
}

export interface SketchStoreOptions {
  backend?: Backend
  /** Sketches per cell, 1 to 8 (anything else counts as 1). Default 1. */
  width?: number
}
