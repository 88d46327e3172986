/**
 * Decodes a DDSketch protobuf with Datadog's own @datadog/sketches-js, as the backend would; one
 * in the sparse form (a binCounts map, which sketches-js does not read) with the pathwise agent's
 * reader, which pathwise sends it to.
 */
import { createRequire } from 'node:module'
import { readSketchProto } from '../../agent/src/model/sketch-proto.js'
import { CompactReader, CompactWriter, createSketchStore } from 'pathwise/core'

const require = createRequire(import.meta.url)
const { DDSketch } = require('@datadog/sketches-js') as {
  DDSketch: { fromProto(bytes: Uint8Array): SketchesJs }
}
interface SketchesJs {
  merge(other: SketchesJs): void
  toProto(): Uint8Array
  count: number
  zeroCount: number
  store: { minKey: number; maxKey: number; count: number }
  getValueAtQuantile(q: number): number
}

export interface DecodedSketch {
  count: number
  zeroCount: number
  /** Keys from the lowest to the highest occupied one. */
  binCount: number
  quantile(q: number): number
}

export function decodeSketch(bytes: Uint8Array): DecodedSketch {
  return decoded(DDSketch.fromProto(bytes))
}

function decoded(sketch: Pick<SketchesJs, 'count' | 'zeroCount' | 'store' | 'getValueAtQuantile'>): DecodedSketch {
  const store = sketch.store
  return {
    count: sketch.count,
    zeroCount: sketch.zeroCount,
    binCount: store.count > 0 ? store.maxKey - store.minKey + 1 : 0,
    quantile: (q) => sketch.getValueAtQuantile(q),
  }
}

/** Whether the positive store (field 2) of a DDSketch protobuf holds a binCounts entry (its field 1): the sparse form. */
export function hasBinCounts(proto: Uint8Array): boolean {
  let at = 0
  const varint = (): number => {
    let n = 0
    for (let shift = 0; ; shift += 7) {
      const b = proto[at++]
      n += (b & 0x7f) * 2 ** shift
      if (b < 0x80) return n
    }
  }
  while (at < proto.length) {
    const key = varint()
    const wire = key & 7
    if (wire === 1) at += 8
    else if (wire === 0) varint()
    else {
      const len = varint()
      if (key >>> 3 === 2 && proto[at] === 0x0a) return true
      at += len
    }
  }
  return false
}

/** A sketch read by the reader of the destination it was written for: the pathwise agent's for the sparse form, sketches-js for the contiguous one. */
export function decodeEitherForm(bytes: Uint8Array): DecodedSketch {
  return hasBinCounts(bytes) ? decoded(agentDecodeSketch(bytes)) : decodeSketch(bytes)
}

/** A protobuf as the pathwise agent reads it (agent/src/model/sketch-proto.ts, into a cell of its sketch store), read back as sketches-js sketches are. */
export function agentDecodeSketch(bytes: Uint8Array): Pick<SketchesJs, 'count' | 'zeroCount' | 'store' | 'getValueAtQuantile'> {
  const writer = new CompactWriter(1)
  readSketchProto(bytes, writer, 0)
  const cell = writer.endCell().slice()
  const store = createSketchStore({ backend: 'ts' })
  const id = store.newCell()
  store.merge([id], cell, [0, cell.length], 1)
  store.sum([id], 1)
  const reader = new CompactReader(1)
  reader.read(cell, 0, cell.length)
  const keys: number[] = []
  let binned = 0
  reader.forEachBin(0, (key, count) => {
    keys.push(key)
    binned += count
  })
  return {
    count: store.sumCount(0),
    zeroCount: store.sumZeroCount(0),
    store: { minKey: keys[0] ?? 0, maxKey: keys[keys.length - 1] ?? 0, count: binned },
    getValueAtQuantile: (q) => store.sumQuantile(0, q),
  }
}

/** One sketch holding what all of these hold: a pathway's points from several buckets, read as one. */
export function mergeSketches(all: Uint8Array[]): Uint8Array {
  if (all.length === 1) return all[0]
  const merged = DDSketch.fromProto(all[0])
  for (const bytes of all.slice(1)) merged.merge(DDSketch.fromProto(bytes))
  return merged.toProto()
}
