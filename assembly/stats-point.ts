import { Point } from './aggregator'
import { nodeTagsAt, nodeTagsLength } from './nodes'

/**
 * A drained stats point as the msgpack StatsPoint map of the Agent payload, written straight into
 * memory: the bytes of `bindings/ts/stats-point.ts`, and those @msgpack/msgpack writes for the same
 * map (a test compares them): {EdgeTags (the node's, encoded by the host), Hash and ParentHash
 * (uint64), PathwayLatency, EdgeLatency and PayloadSize (bin: DDSketch protobufs), TimestampType}.
 * A point is measured first (`measurePoint`, which picks each sketch's protobuf form), then written.
 */

// fixmap of 7, then the key "EdgeTags"
const HEAD = memory.data<u8>([0x87, 0xa8, 0x45, 0x64, 0x67, 0x65, 0x54, 0x61, 0x67, 0x73])
const HASH_KEY = memory.data<u8>([0xa4, 0x48, 0x61, 0x73, 0x68])
const PARENT_KEY = memory.data<u8>([0xaa, 0x50, 0x61, 0x72, 0x65, 0x6e, 0x74, 0x48, 0x61, 0x73, 0x68])
const PATHWAY_KEY = memory.data<u8>([0xae, 0x50, 0x61, 0x74, 0x68, 0x77, 0x61, 0x79, 0x4c, 0x61, 0x74, 0x65, 0x6e, 0x63, 0x79])
const EDGE_KEY = memory.data<u8>([0xab, 0x45, 0x64, 0x67, 0x65, 0x4c, 0x61, 0x74, 0x65, 0x6e, 0x63, 0x79])
const SIZE_KEY = memory.data<u8>([0xab, 0x50, 0x61, 0x79, 0x6c, 0x6f, 0x61, 0x64, 0x53, 0x69, 0x7a, 0x65])
// "TimestampType": "current"
const TAIL = memory.data<u8>([
  0xad, 0x54, 0x69, 0x6d, 0x65, 0x73, 0x74, 0x61, 0x6d, 0x70, 0x54, 0x79, 0x70, 0x65, 0xa7, 0x63, 0x75, 0x72, 0x72, 0x65, 0x6e, 0x74,
])
const HEAD_LENGTH: usize = 10
const HASH_KEY_LENGTH: usize = 5
const PARENT_KEY_LENGTH: usize = 11
const PATHWAY_KEY_LENGTH: usize = 15
const SKETCH_KEY_LENGTH: usize = 12
const TAIL_LENGTH: usize = 22
/** Everything but the tags and the sketches: keys, two uint64 (9 bytes each), the tail. */
const FIXED_LENGTH: i32 = <i32>(HEAD_LENGTH + HASH_KEY_LENGTH + 9 + PARENT_KEY_LENGTH + 9 + PATHWAY_KEY_LENGTH + 2 * SKETCH_KEY_LENGTH + TAIL_LENGTH)

/** The forms and sizes of the point last measured, for `writePoint`. */
let pathwayForm: i32 = 0
let edgeForm: i32 = 0
let payloadForm: i32 = 0
let pathwaySize: i32 = 0
let edgeSize: i32 = 0
let payloadSize: i32 = 0

// @ts-ignore: decorator
@inline
function binLength(size: i32): i32 {
  return (size < 0x100 ? 2 : size < 0x10000 ? 3 : 5) + size
}

/** The bytes of point `p`, its sketches in the sparse form where `allowSparse` and smaller; `writePoint` writes what this measured. */
export function measurePoint(p: Point, allowSparse: bool): i32 {
  pathwayForm = p.pathway.measure(allowSparse)
  edgeForm = p.edge.measure(allowSparse)
  payloadForm = p.payload.measure(allowSparse)
  pathwaySize = p.pathway.protoSize(pathwayForm)
  edgeSize = p.edge.protoSize(edgeForm)
  payloadSize = p.payload.protoSize(payloadForm)
  const tags = nodeTagsLength(p.node)
  return FIXED_LENGTH + (tags == 0 ? 1 : <i32>tags) + binLength(pathwaySize) + binLength(edgeSize) + binLength(payloadSize)
}

/** Writes the point `measurePoint` measured last at `out`; returns its end. */
export function writePoint(out: usize, p: Point): usize {
  memory.copy(out, HEAD, HEAD_LENGTH)
  let at = out + HEAD_LENGTH
  const tags = nodeTagsLength(p.node)
  if (tags == 0) {
    store<u8>(at++, 0x90) // an unknown node: no tags
  } else {
    memory.copy(at, nodeTagsAt(p.node), tags)
    at += tags
  }
  memory.copy(at, HASH_KEY, HASH_KEY_LENGTH)
  at = uint64(at + HASH_KEY_LENGTH, p.hash)
  memory.copy(at, PARENT_KEY, PARENT_KEY_LENGTH)
  at = uint64(at + PARENT_KEY_LENGTH, p.parent)
  memory.copy(at, PATHWAY_KEY, PATHWAY_KEY_LENGTH)
  at = p.pathway.encode(binHeader(at + PATHWAY_KEY_LENGTH, pathwaySize), pathwayForm)
  memory.copy(at, EDGE_KEY, SKETCH_KEY_LENGTH)
  at = p.edge.encode(binHeader(at + SKETCH_KEY_LENGTH, edgeSize), edgeForm)
  memory.copy(at, SIZE_KEY, SKETCH_KEY_LENGTH)
  at = p.payload.encode(binHeader(at + SKETCH_KEY_LENGTH, payloadSize), payloadForm)
  memory.copy(at, TAIL, TAIL_LENGTH)
  return at + TAIL_LENGTH
}

/** msgpack uint64 (0xcf, big-endian), as @msgpack/msgpack writes a non-negative BigInt. */
// @ts-ignore: decorator
@inline
function uint64(at: usize, value: u64): usize {
  store<u8>(at, 0xcf)
  store<u64>(at + 1, bswap<u64>(value))
  return at + 9
}

/** The smallest msgpack bin header for `size` bytes. */
function binHeader(at: usize, size: i32): usize {
  if (size < 0x100) {
    store<u8>(at, 0xc4)
    store<u8>(at + 1, <u8>size)
    return at + 2
  }
  if (size < 0x10000) {
    store<u8>(at, 0xc5)
    store<u16>(at + 1, bswap<u16>(<u16>size))
    return at + 3
  }
  store<u8>(at, 0xc6)
  store<u32>(at + 1, bswap<u32>(<u32>size))
  return at + 5
}
