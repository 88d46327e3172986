import type { TsSketch } from './sketch.js'

/**
 * Drained stats points as msgpack StatsPoint maps, written into one growing buffer: the bytes of
 * `assembly/stats-point.ts` (see there), and those @msgpack/msgpack writes for the same maps.
 * A point is measured first (`measure`, which picks each sketch's protobuf form), then written.
 */

const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0))
/** fixmap of 7, then the key "EdgeTags" */
const HEAD = Uint8Array.of(0x87, 0xa8, ...ascii('EdgeTags'))
const HASH_KEY = Uint8Array.of(0xa4, ...ascii('Hash'))
const PARENT_KEY = Uint8Array.of(0xaa, ...ascii('ParentHash'))
const PATHWAY_KEY = Uint8Array.of(0xae, ...ascii('PathwayLatency'))
const EDGE_KEY = Uint8Array.of(0xab, ...ascii('EdgeLatency'))
const SIZE_KEY = Uint8Array.of(0xab, ...ascii('PayloadSize'))
const TAIL = Uint8Array.of(0xad, ...ascii('TimestampType'), 0xa7, ...ascii('current'))
/** Everything but the tags and the sketches: keys, two uint64 (9 bytes each), the tail. */
const FIXED_LENGTH = HEAD.length + HASH_KEY.length + 9 + PARENT_KEY.length + 9 + PATHWAY_KEY.length + EDGE_KEY.length + SIZE_KEY.length + TAIL.length
/** An unknown node's tags: an empty array. */
const NO_TAGS = Uint8Array.of(0x90)

function binLength(size: number): number {
  return (size < 0x100 ? 2 : size < 0x10000 ? 3 : 5) + size
}

export class PointWriter {
  bytes = new Uint8Array(64 * 1024)
  private view = new DataView(this.bytes.buffer)
  length = 0
  /** The forms and sizes of the point last measured (pathway, edge, payload). */
  private readonly forms = [0, 0, 0]
  private readonly sizes = [0, 0, 0]

  /** The bytes of a point, its sketches in the sparse form where `allowSparse` and smaller; `write` writes what this measured. */
  measure(tags: Uint8Array | undefined, pathway: TsSketch, edge: TsSketch, payload: TsSketch, allowSparse: boolean): number {
    const { forms, sizes } = this
    forms[0] = pathway.measure(allowSparse)
    forms[1] = edge.measure(allowSparse)
    forms[2] = payload.measure(allowSparse)
    sizes[0] = pathway.protoSize(forms[0])
    sizes[1] = edge.protoSize(forms[1])
    sizes[2] = payload.protoSize(forms[2])
    return FIXED_LENGTH + (tags ?? NO_TAGS).length + binLength(sizes[0]) + binLength(sizes[1]) + binLength(sizes[2])
  }

  /** Appends the point `measure` measured last (`size` bytes, as it said). */
  write(size: number, tags: Uint8Array | undefined, hashHi: number, hashLo: number, parentHi: number, parentLo: number, pathway: TsSketch, edge: TsSketch, payload: TsSketch): void {
    if (this.length + size > this.bytes.length) this.grow(this.length + size)
    const { bytes: out, view, forms, sizes } = this
    let at = this.length
    out.set(HEAD, at)
    at += HEAD.length
    const t = tags ?? NO_TAGS
    out.set(t, at)
    at += t.length
    out.set(HASH_KEY, at)
    at = uint64(out, view, at + HASH_KEY.length, hashHi, hashLo)
    out.set(PARENT_KEY, at)
    at = uint64(out, view, at + PARENT_KEY.length, parentHi, parentLo)
    out.set(PATHWAY_KEY, at)
    at = pathway.write(out, view, binHeader(out, view, at + PATHWAY_KEY.length, sizes[0]), forms[0])
    out.set(EDGE_KEY, at)
    at = edge.write(out, view, binHeader(out, view, at + EDGE_KEY.length, sizes[1]), forms[1])
    out.set(SIZE_KEY, at)
    at = payload.write(out, view, binHeader(out, view, at + SIZE_KEY.length, sizes[2]), forms[2])
    out.set(TAIL, at)
    this.length = at + TAIL.length
  }

  private grow(size: number): void {
    let capacity = this.bytes.length * 2
    while (capacity < size) capacity *= 2
    const bytes = new Uint8Array(capacity)
    bytes.set(this.bytes.subarray(0, this.length))
    this.bytes = bytes
    this.view = new DataView(bytes.buffer)
  }
}

/** msgpack uint64 (0xcf, big-endian), as @msgpack/msgpack writes a non-negative BigInt. */
function uint64(out: Uint8Array, view: DataView, at: number, hi: number, lo: number): number {
  out[at] = 0xcf
  view.setUint32(at + 1, hi)
  view.setUint32(at + 5, lo)
  return at + 9
}

/** The smallest msgpack bin header for `size` bytes. */
function binHeader(out: Uint8Array, view: DataView, at: number, size: number): number {
  if (size < 0x100) {
    out[at] = 0xc4
    out[at + 1] = size
    return at + 2
  }
  if (size < 0x10000) {
    out[at] = 0xc5
    view.setUint16(at + 1, size)
    return at + 3
  }
  out[at] = 0xc6
  view.setUint32(at + 1, size)
  return at + 5
}
