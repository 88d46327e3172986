/** Decodes a DDSketch protobuf with Datadog's own @datadog/sketches-js, as the backend would. */
import { createRequire } from 'node:module'

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
  const sketch = DDSketch.fromProto(bytes)
  const store = sketch.store
  return {
    count: sketch.count,
    zeroCount: sketch.zeroCount,
    binCount: store.count > 0 ? store.maxKey - store.minKey + 1 : 0,
    quantile: (q) => sketch.getValueAtQuantile(q),
  }
}

/** One sketch holding what all of these hold: a pathway's points from several buckets, read as one. */
export function mergeSketches(all: Uint8Array[]): Uint8Array {
  if (all.length === 1) return all[0]
  const merged = DDSketch.fromProto(all[0])
  for (const bytes of all.slice(1)) merged.merge(DDSketch.fromProto(bytes))
  return merged.toProto()
}
