import { createRequire } from 'node:module'
import { LogCollapsingLowestDenseDDSketch } from '@datadog/sketches-js'

/**
 * DDSketches from any tracer, merged with Datadog's own @datadog/sketches-js.
 *
 * Every sketch the agent keeps is a LogCollapsingLowestDenseDDSketch at 1% (what all the tracers
 * send): its store keeps at most 2048 bins, so merging never grows memory without bound.
 * A foreign protobuf is decoded with the library's protobuf message and its bins are added
 * one by one at the value of their key under the sender's own mapping. Not `DDSketch.fromProto`:
 * it ignores the sparse `binCounts` map and grows an unbounded store to span whatever keys a
 * payload claims (two keys 2^31 apart would allocate gigabytes).
 */

export type Sketch = LogCollapsingLowestDenseDDSketch

interface ProtoStore {
  binCounts?: Record<string, number>
  contiguousBinCounts?: number[]
  contiguousBinIndexOffset?: number
}
interface ProtoSketch {
  mapping?: { gamma?: number; indexOffset?: number; interpolation?: number } | null
  positiveValues?: ProtoStore | null
  negativeValues?: ProtoStore | null
  zeroCount?: number
}
interface KeyMapping {
  value(key: number): number
}

const require = createRequire(import.meta.url)
const proto = require('@datadog/sketches-js/dist/ddsketch/proto/compiled.js') as {
  DDSketch: { decode(bytes: Uint8Array): ProtoSketch }
}
const mappings = require('@datadog/sketches-js/dist/ddsketch/mapping/index.js') as {
  KeyMapping: { fromProto(m: unknown): KeyMapping }
}

/** Bins one protobuf may hold: a collapsing sketch sends at most 2048; more is not a tracer's sketch. */
const MAX_PROTO_BINS = 65_536

export class SketchError extends Error {}

export function emptySketch(): Sketch {
  return new LogCollapsingLowestDenseDDSketch({ relativeAccuracy: 0.01 })
}

/** Decodes a DDSketch protobuf into a new agent sketch. Throws SketchError on anything malformed. */
export function decodeSketch(bytes: Uint8Array): Sketch {
  let message: ProtoSketch
  try {
    message = proto.DDSketch.decode(bytes)
  } catch (err) {
    throw new SketchError(`not a DDSketch protobuf (${(err as Error).message})`)
  }
  const sketch = emptySketch()
  // Latencies and sizes are never negative: a tracer's negative store is empty, and anything in it counts as zero.
  let zeros = checkedCount(message.zeroCount ?? 0)
  zeros += total(message.negativeValues)
  const bins = storeBins(message.positiveValues)
  if (bins.length > 0) {
    const mapping = mappingOf(message.mapping)
    for (const [key, count] of bins) {
      const value = mapping.value(key)
      if (!(value > 0 && Number.isFinite(value))) throw new SketchError(`bin key ${key} is out of range`)
      sketch.accept(value, count)
    }
  }
  if (zeros > 0) sketch.accept(0, zeros)
  return sketch
}

function mappingOf(m: ProtoSketch['mapping']): KeyMapping {
  if (!m || !(typeof m.gamma === 'number' && m.gamma > 1 && Number.isFinite(m.gamma))) {
    throw new SketchError('sketch mapping has no valid gamma')
  }
  if (!Number.isFinite(m.indexOffset ?? 0)) throw new SketchError('sketch mapping has an invalid index offset')
  try {
    return mappings.KeyMapping.fromProto({ gamma: m.gamma, indexOffset: m.indexOffset ?? 0, interpolation: m.interpolation ?? 0 })
  } catch (err) {
    throw new SketchError(`unsupported sketch mapping (${(err as Error).message})`)
  }
}

/** The (key, count) pairs of a store, from both its dense and its sparse form; empty bins left out. */
function storeBins(store: ProtoStore | null | undefined): Array<[number, number]> {
  if (!store) return []
  const out: Array<[number, number]> = []
  const dense = store.contiguousBinCounts ?? []
  const sparse = Object.entries(store.binCounts ?? {})
  if (dense.length + sparse.length > MAX_PROTO_BINS) throw new SketchError(`sketch has more than ${MAX_PROTO_BINS} bins`)
  const offset = store.contiguousBinIndexOffset ?? 0
  dense.forEach((count, i) => {
    if (checkedCount(count) > 0) out.push([offset + i, count])
  })
  for (const [key, count] of sparse) if (checkedCount(count) > 0) out.push([Number(key), count])
  return out
}

function total(store: ProtoStore | null | undefined): number {
  let sum = 0
  for (const [, count] of storeBins(store)) sum += count
  return sum
}

function checkedCount(count: number): number {
  if (!(count >= 0 && Number.isFinite(count))) throw new SketchError(`sketch has an invalid count (${count})`)
  return count
}

export interface Quantiles {
  p50: number
  p95: number
  p99: number
}

/** p50, p95 and p99, or null for an empty sketch. */
export function quantilesOf(sketch: Sketch): Quantiles | null {
  if (sketch.count === 0) return null
  return { p50: sketch.getValueAtQuantile(0.5), p95: sketch.getValueAtQuantile(0.95), p99: sketch.getValueAtQuantile(0.99) }
}
