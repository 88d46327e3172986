import { allocZeroed, grow } from './alloc'
import { MAX_COMPACT_SIZE, readCompact, resetSketch, writeCompact } from './compact'
import { MAX_CELL_WIDTH } from './generated/compact-constants'
import { Sketch, SKETCH_SIZE } from './sketch'

/**
 * The sketch store (`bindings/core/sketch-store.ts`) in Wasm memory, wrapped by
 * `bindings/wasm/sketch-store.ts`: the steps of `bindings/ts/sketch-store.ts`. A cell is a block
 * of its compact bytes behind their length (u32); the table maps ids to blocks, 0 for an empty
 * cell, FREE for an id not in use. A merge reads the cell into dense work sketches, merges into
 * them, and writes a new block of the exact size. Its own instance of the module: the core's
 * aggregator is not used there.
 */

const FREE: usize = 1
const PTR_SHIFT: usize = alignof<usize>()

let width: i32 = 0
/** Id → block (or 0, or FREE); id 0 is never handed out. */
let table: usize = 0
let tableLength: i32 = 0
let tableCapacity: i32 = 0
let freeIds: usize = 0
let freeCount: i32 = 0
let freeCapacity: i32 = 0
let cells: i32 = 0
let bytes: f64 = 0
let work: usize = 0
let sums: usize = 0
/** Where a cell is written before its block is made: room for `width` sketches of any span. */
let scratch: usize = 0
/** Host-written: bytes, ids and starts. */
let input: usize = 0
let inputCapacity: usize = 0
/** Bytes the host wrote at `input`, for the last storeInput. */
let inputLength: usize = 0
let ids: usize = 0
let idCapacity: i32 = 0
let starts: usize = 0
/** Per merge command: 1 if merged. */
let flags: usize = 0
/** For the host to copy out: protobufs, cells' bytes. */
let output: usize = 0
let outputCapacity: usize = 0
/** Results for the host: a length. */
const RESULT = memory.data(8, 8)

// @ts-ignore: decorator
@inline
function sketchAt(list: usize, i: i32): Sketch {
  return changetype<Sketch>(list + <usize>i * SKETCH_SIZE)
}

// @ts-ignore: decorator
@inline
function blockOf(id: i32): usize {
  return load<usize>(table + (<usize>id << PTR_SHIFT))
}

function setBlock(id: i32, block: usize): void {
  store<usize>(table + (<usize>id << PTR_SHIFT), block)
}

function blockLength(block: usize): usize {
  return block == 0 ? 0 : <usize>load<u32>(block)
}

export function storeInit(cellWidth: i32): void {
  width = cellWidth < 1 ? 1 : cellWidth > MAX_CELL_WIDTH ? MAX_CELL_WIDTH : cellWidth
  work = allocZeroed(<usize>width * SKETCH_SIZE)
  sums = allocZeroed(<usize>width * SKETCH_SIZE)
  scratch = heap.alloc(<usize>width * MAX_COMPACT_SIZE)
  tableLength = 1
}

export function storeCellCount(): i32 {
  return cells
}

export function storeByteCount(): f64 {
  return bytes
}

export function storeNewCell(): i32 {
  let id: i32
  if (freeCount > 0) {
    freeCount--
    id = load<i32>(freeIds + (<usize>freeCount << 2))
  } else {
    if (tableLength >= tableCapacity) {
      tableCapacity = tableCapacity == 0 ? 1024 : tableCapacity << 1
      table = grow(table, <usize>tableCapacity << PTR_SHIFT)
    }
    id = tableLength++
  }
  setBlock(id, 0)
  cells++
  return id
}

function inUse(id: i32): bool {
  return id > 0 && id < tableLength && blockOf(id) != FREE
}

export function storeFreeCell(id: i32): void {
  if (!inUse(id)) return
  const block = blockOf(id)
  if (block != 0) {
    bytes -= <f64>blockLength(block)
    heap.free(block)
  }
  setBlock(id, FREE)
  if (freeCount == freeCapacity) {
    freeCapacity = freeCapacity == 0 ? 1024 : freeCapacity << 1
    freeIds = grow(freeIds, <usize>freeCapacity << 2)
  }
  store<i32>(freeIds + (<usize>freeCount << 2), id)
  freeCount++
  cells--
}

/** Where the host writes `size` bytes of input. */
export function storeInput(size: usize): usize {
  inputLength = size
  if (size > inputCapacity) {
    inputCapacity = size > inputCapacity << 1 ? size : inputCapacity << 1
    input = grow(input, inputCapacity)
  }
  return input
}

/** Where the host writes `count` ids (u32); `count + 1` starts (u32) follow them. */
export function storeIds(count: i32): usize {
  if (count + 1 > idCapacity) {
    idCapacity = count + 1 > idCapacity << 1 ? count + 1 : idCapacity << 1
    ids = grow(ids, <usize>idCapacity << 3)
    flags = grow(flags, <usize>idCapacity)
  }
  starts = ids + (<usize>idCapacity << 2)
  return ids
}

/** Where the host writes the `count + 1` starts (u32) after `storeIds(count)`. */
export function storeStarts(): usize {
  return starts
}

/** Where merge writes 1 or 0 per command. */
export function storeFlags(): usize {
  return flags
}

function reserveOutput(size: usize): usize {
  if (size > outputCapacity) {
    outputCapacity = size > outputCapacity << 1 ? size : outputCapacity << 1
    if (output != 0) heap.free(output)
    output = heap.alloc(outputCapacity)
  }
  return output
}

/** The cell into the work sketches, exactly. */
function loadCell(id: i32): void {
  for (let i = 0; i < width; i++) resetSketch(sketchAt(work, i))
  const block = blockOf(id)
  if (block == 0) return
  let p = block + 4
  const end = p + blockLength(block)
  for (let i = 0; i < width; i++) p = readCompact(p, end, sketchAt(work, i), true)
}

/** Merges the compact cell at [from, to) into the work sketches; false if it is not one. */
function addCell(from: usize, to: usize): bool {
  let p = from
  for (let i = 0; i < width; i++) {
    p = readCompact(p, to, sketchAt(work, i), false)
    if (p == 0) return false
  }
  return p == to
}

/** The work sketches, compact, as cell `id`. */
function storeCell(id: i32): void {
  let empty = true
  for (let i = 0; i < width; i++) {
    const s = sketchAt(work, i)
    empty = empty && s.binCount + s.zeroCount == 0
  }
  const old = blockOf(id)
  bytes -= <f64>blockLength(old)
  if (old != 0) heap.free(old)
  if (empty) {
    setBlock(id, 0)
    return
  }
  // Written once into the scratch, then copied into a block of its size.
  let p = scratch
  for (let i = 0; i < width; i++) p = writeCompact(sketchAt(work, i), p)
  const size = p - scratch
  const block = heap.alloc(4 + size)
  store<u32>(block, <u32>size)
  memory.copy(block + 4, scratch, size)
  setBlock(id, block)
  bytes += <f64>size
}

/** For each i < count: the input bytes [starts[i], starts[i + 1]) into cell ids[i]. */
export function storeMerge(count: i32): i32 {
  let done = 0
  for (let i = 0; i < count; i++) {
    const id = load<i32>(ids + (<usize>i << 2))
    const from = <usize>load<u32>(starts + (<usize>i << 2))
    const to = <usize>load<u32>(starts + (<usize>(i + 1) << 2))
    let ok = inUse(id) && from <= to && to <= inputLength
    if (ok) {
      loadCell(id)
      ok = addCell(input + from, input + to)
    }
    if (ok) {
      storeCell(id)
      done++
    }
    store<u8>(flags + <usize>i, ok ? 1 : 0)
  }
  return done
}

/** Merges the cells ids[0, count) into cell `target`. */
export function storeMergeCells(target: i32, count: i32): void {
  if (!inUse(target)) return
  loadCell(target)
  for (let i = 0; i < count; i++) {
    const id = load<i32>(ids + (<usize>i << 2))
    if (!inUse(id)) continue
    const block = blockOf(id)
    if (block != 0) addCell(block + 4, block + 4 + blockLength(block))
  }
  storeCell(target)
}

/** The bytes of cells ids[0, count) into the output, after their ends (u32 each); returns the output. */
export function storeBytesOf(count: i32): usize {
  let size: usize = <usize>count << 2
  for (let i = 0; i < count; i++) {
    const id = load<i32>(ids + (<usize>i << 2))
    const block = inUse(id) ? blockOf(id) : 0
    size += block == 0 ? <usize>width : blockLength(block)
  }
  const out = reserveOutput(size)
  let p = out + (<usize>count << 2)
  for (let i = 0; i < count; i++) {
    const id = load<i32>(ids + (<usize>i << 2))
    const block = inUse(id) ? blockOf(id) : 0
    if (block == 0) {
      memory.fill(p, 0, <usize>width)
      p += <usize>width
    } else {
      memory.copy(p, block + 4, blockLength(block))
      p += blockLength(block)
    }
    store<u32>(out + (<usize>i << 2), <u32>(p - out - (<usize>count << 2)))
  }
  return out
}

/** Merges cells ids[0, count) into the sums, emptied first. */
export function storeSum(count: i32): void {
  for (let i = 0; i < width; i++) resetSketch(sketchAt(sums, i))
  for (let c = 0; c < count; c++) {
    const id = load<i32>(ids + (<usize>c << 2))
    if (!inUse(id)) continue
    const block = blockOf(id)
    if (block == 0) continue
    let p = block + 4
    const end = p + blockLength(block)
    for (let i = 0; i < width; i++) p = readCompact(p, end, sketchAt(sums, i), false)
  }
}

export function storeSumCount(i: i32): f64 {
  const s = sketchAt(sums, i)
  return s.binCount + s.zeroCount
}

export function storeSumZeroCount(i: i32): f64 {
  return sketchAt(sums, i).zeroCount
}

export function storeSumQuantileKey(i: i32, q: f64): f64 {
  return sketchAt(sums, i).quantileKey(q)
}

/** The protobuf of sum `i` (the contiguous form, as Sketch.toProto) into the output; its length into the result. */
export function storeSumEncode(i: i32): usize {
  const s = sketchAt(sums, i)
  const form = s.measure(false)
  const size = s.protoSize(form)
  const out = reserveOutput(<usize>size)
  s.encode(out, form)
  store<u32>(RESULT, <u32>size)
  return out
}

export function storeResult(): usize {
  return RESULT
}
