/**
 * Reading tracers' DDSketch protobufs (model/sketch-proto.ts) into the store's compact cells: both
 * store forms (contiguous counts, the sparse `binCounts` map, and the two together), the negative
 * store and the zero count as zeros, bins under another mapping (another accuracy, an index offset,
 * interpolated mappings) at their values under it; and what is refused, with its reason. The
 * protobufs are written by protobufjs from @datadog/sketches-js's own message definitions.
 */
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { LogCollapsingLowestDenseDDSketch } from '@datadog/sketches-js'
import { CompactReader, CompactWriter, createCore, sketchKeyValue } from 'pathwise/core'
import { readSketchProto, SketchError } from '../src/model/sketch-proto.js'
import { SKETCH_GAMMA } from '../src/model/sketch.js'

const require = createRequire(import.meta.url)
const proto = require('@datadog/sketches-js/dist/ddsketch/proto/compiled.js') as {
  DDSketch: { encode(m: object): { finish(): Uint8Array } }
}
const mappings = require('@datadog/sketches-js/dist/ddsketch/mapping/index.js') as {
  KeyMapping: { fromProto(m: object): { value(key: number): number } }
}
const RUNS = Number(process.env.PARITY_RUNS ?? 200)

interface ProtoStore {
  binCounts?: Record<number, number>
  contiguousBinCounts?: number[]
  contiguousBinIndexOffset?: number
}

/** The zeros and bins a protobuf reads as: [zeroCount, [key, count][] lowest key first]. */
function read(bytes: Uint8Array): [number, Array<[number, number]>] {
  const writer = new CompactWriter(1)
  readSketchProto(bytes, writer, 0)
  const cell = writer.endCell()
  const reader = new CompactReader(1)
  assert.ok(reader.read(cell, 0, cell.length))
  const bins: Array<[number, number]> = []
  reader.forEachBin(0, (key, count) => bins.push([key, count]))
  return [reader.zeroCount(0), bins]
}

const encode = (m: object): Uint8Array => proto.DDSketch.encode(m).finish()
const own = { gamma: SKETCH_GAMMA }

/** Bins at distinct keys within a span a sketch keeps, and how to split them between the two forms. */
const bins = fc
  .uniqueArray(fc.tuple(fc.integer({ min: -1000, max: 1000 }), fc.oneof(fc.integer({ min: 1, max: 10_000 }), fc.double({ min: 0.001, max: 100, noNaN: true }))), {
    selector: ([k]) => k,
    maxLength: 60,
  })
  .map((list) => list.sort((a, b) => a[0] - b[0]))

/** Contiguous counts over [first key, last key], the empty keys 0. */
function contiguous(list: Array<[number, number]>): ProtoStore {
  if (list.length === 0) return {}
  const first = list[0][0]
  const counts = Array<number>(list[list.length - 1][0] - first + 1).fill(0)
  for (const [k, c] of list) counts[k - first] = c
  return { contiguousBinCounts: counts, contiguousBinIndexOffset: first }
}

describe('DDSketch protobufs into cells', () => {
  test('contiguous, sparse and both together read as the same bins, under the agent mapping', () => {
    fc.assert(
      fc.property(bins, fc.nat(60), fc.double({ min: 0, max: 50, noNaN: true }), (list, cut, zeros) => {
        const expected = list.filter(([, c]) => c > 0)
        const sparse = { binCounts: Object.fromEntries(list) }
        const split = { ...contiguous(list.slice(0, cut)), binCounts: Object.fromEntries(list.slice(cut)) }
        for (const store of [contiguous(list), sparse, split]) {
          const [z, got] = read(encode({ mapping: own, positiveValues: store, zeroCount: zeros }))
          assert.equal(z, zeros)
          assert.deepEqual(
            got.map(([k, c]) => [k, Math.round(c * 1e6)]),
            expected.map(([k, c]) => [k, Math.round(c * 1e6)]),
          )
        }
      }),
      { numRuns: RUNS },
    )
  })

  test('the cell of a contiguous store is the one its bins make added one by one, byte for byte', () => {
    fc.assert(
      fc.property(bins, (list) => {
        const writer = new CompactWriter(1)
        readSketchProto(encode({ mapping: own, positiveValues: contiguous(list) }), writer, 0)
        const fast = writer.endCell().slice()
        for (const [k, c] of list) writer.addKey(0, k, c)
        assert.deepEqual(fast, writer.endCell())
      }),
      { numRuns: RUNS },
    )
  })

  test('the negative store and the zero count are zeros', () => {
    const [zeros, got] = read(encode({ mapping: own, positiveValues: { binCounts: { 10: 2 } }, negativeValues: { contiguousBinCounts: [1, 0, 3], binCounts: { 5: 4 } }, zeroCount: 0.5 }))
    assert.deepEqual([zeros, got], [8.5, [[10, 2]]])
  })

  test('pathwise and sketches-js sketches read key for key; sketches at another accuracy within both accuracies', () => {
    const values = Array.from({ length: 500 }, (_, i) => 0.0005 * Math.exp(0.02 * i))
    const core = createCore({ backend: 'ts' })
    const mine = core.newSketch()
    const theirs = new LogCollapsingLowestDenseDDSketch({ relativeAccuracy: 0.01 })
    const coarse = new LogCollapsingLowestDenseDDSketch({ relativeAccuracy: 0.02 })
    for (const v of values) {
      mine.add(v)
      theirs.accept(v)
      coarse.accept(v)
    }
    const mineBins = read(mine.toProto())[1]
    assert.deepEqual(read(theirs.toProto())[1], mineBins)
    const [, coarseBins] = read(coarse.toProto())
    const total = coarseBins.reduce((n, [, c]) => n + c, 0)
    assert.equal(total, values.length)
    for (const q of [0.5, 0.95, 0.99]) {
      let rank = q * (total - 1)
      const key = coarseBins.find(([, c]) => (rank -= c) < 0)![0]
      const exact = values[Math.floor(q * (values.length - 1))]
      assert.ok(Math.abs(sketchKeyValue(key) - exact) <= 0.0302 * exact, `q ${q}: ${sketchKeyValue(key)} against ${exact}`)
    }
  })

  test('another mapping (offset, linear or cubic interpolation): each bin at the key of its value under that mapping', () => {
    fc.assert(
      fc.property(
        fc.record({ gamma: fc.double({ min: 1.001, max: 1.2, noNaN: true }), indexOffset: fc.integer({ min: -50, max: 50 }), interpolation: fc.constantFrom(0, 1, 3) }),
        bins,
        (mapping, list) => {
          const them = mappings.KeyMapping.fromProto(mapping)
          const map = Object.fromEntries(list)
          const writer = new CompactWriter(1)
          readSketchProto(encode({ mapping, positiveValues: { binCounts: map } }), writer, 0)
          // In the order the map is written (an object's: its non-negative keys first), as totals are summed in order.
          const expected = new CompactWriter(1)
          for (const [k, c] of Object.entries(map)) expected.add(0, them.value(Number(k)), c)
          assert.deepEqual(writer.endCell().slice(), expected.endCell())
        },
      ),
      { numRuns: RUNS },
    )
  })
})

describe('DDSketch protobufs refused, with the reason', () => {
  const refused = (bytes: Uint8Array, reason: RegExp): void => {
    assert.throws(() => readSketchProto(bytes, new CompactWriter(1), 0), (err: unknown) => err instanceof SketchError && reason.test(err.message))
  }

  test('bytes that are not a protobuf, bins without a mapping, keys past any double, bad counts, too many bins', () => {
    refused(Uint8Array.from([0xff, 0xff, 0xff]), /^not a DDSketch protobuf/)
    refused(Uint8Array.from([0x12, 0x05, 0x01]), /^not a DDSketch protobuf \(index out of range\)/)
    refused(encode({ positiveValues: { binCounts: { 1: 1 } } }), /^sketch mapping has no valid gamma$/)
    refused(encode({ mapping: { gamma: 0.5 }, positiveValues: { binCounts: { 1: 1 } } }), /^sketch mapping has no valid gamma$/)
    refused(encode({ mapping: own, positiveValues: { binCounts: { 200000: 1 } } }), /^bin key 200000 is out of range$/)
    refused(encode({ mapping: { gamma: 1.02, interpolation: 2 }, positiveValues: { binCounts: { 1: 1 } } }), /^unsupported sketch mapping \(Unrecognized mapping when decoding from protobuf\)$/)
    refused(encode({ mapping: own, positiveValues: { contiguousBinCounts: [1, -1] } }), /^sketch has an invalid count \(-1\)$/)
    refused(encode({ mapping: own, positiveValues: { binCounts: { 3: NaN } } }), /^sketch has an invalid count \(NaN\)$/)
    refused(encode({ mapping: own, zeroCount: Infinity }), /^sketch has an invalid count \(Infinity\)$/)
    refused(encode({ mapping: own, positiveValues: { contiguousBinCounts: [1e308, 1e308] } }), /^sketch counts add up past the largest number$/)
    refused(encode({ mapping: own, positiveValues: { contiguousBinCounts: Array<number>(65_537).fill(0) } }), /^sketch has more than 65536 bins$/)
  })

  test('a store of empty bins needs no mapping', () => {
    assert.deepEqual(read(encode({ positiveValues: { contiguousBinCounts: [0, 0] }, zeroCount: 2 })), [2, []])
  })
})
