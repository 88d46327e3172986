/**
 * The sketch store (`pathwise/core`'s createSketchStore): the Wasm store and the TS store agree
 * bit for bit (cells' bytes, counts, quantiles, protobufs, ids), and a cell's sketches are what the
 * cores' own sketches are after the same merges, protobuf byte for byte. Random sketches through
 * fast-check (the values and weights of test/core-parity.test.ts: zeros, subnormals, spans past
 * 2048 keys, fractional weights), random bytes for what a store refuses.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { MIN_INDEXABLE_VALUE } from '../bindings/core/sketch-constants.js'
import type { SketchStore } from '../bindings/core/sketch-store.js'
import type { Core, Sketch } from '../bindings/core/types.js'
import { CompactReader, CompactWriter } from '../bindings/ts/compact-cells.js'
import { TsCore } from '../bindings/ts/core.js'
import { TsSketch } from '../bindings/ts/sketch.js'
import { TsSketchStore } from '../bindings/ts/sketch-store.js'
import { createWasmCore } from '../bindings/wasm/core.js'
import { createWasmSketchStore } from '../bindings/wasm/sketch-store.js'
import { createSketchStore } from '../bindings/processor/create-sketch-store.js'

const RUNS = Number(process.env.PARITY_RUNS ?? 200)
const WIDTH = 3
const QUANTILES = [-0.1, 0, 1e-9, 0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1, 1.5, NaN]

const stores = (width = WIDTH): [SketchStore, SketchStore] => [new TsSketchStore(width), createWasmSketchStore(width)]

const value = fc.oneof(
  fc.constantFrom(0, -0, -1, 5e-324, MIN_INDEXABLE_VALUE, 2.2250738585072014e-308, 1e-300, 1e300, Number.MAX_VALUE, Infinity, NaN, 1),
  fc.double({ min: 1e-12, max: 1e12, noNaN: true }),
  fc.double({ min: 1e-4, max: 10, noNaN: true }),
  fc.double(),
  fc.integer({ min: 0, max: 1 << 30 }),
)
const weight = fc.oneof(
  fc.constant(1),
  fc.integer({ min: 1, max: 1000 }),
  fc.constantFrom(0.5, 1e-9, 1e9, 2 ** 52, 2 ** 53),
  fc.double({ min: 0, max: 100, noNaN: true }),
)
/** One sketch's values and weights. */
const entries = fc.array(fc.tuple(value, weight), { maxLength: 120 })
/** A cell: WIDTH sketches. */
const cell = fc.array(entries, { minLength: WIDTH, maxLength: WIDTH })

function fill(sketch: Sketch, list: ReadonlyArray<readonly [number, number]>): Sketch {
  for (const [v, w] of list) sketch.add(v, w)
  return sketch
}

/** A cell's compact bytes, written by the CompactWriter from the same values. */
function compact(sketches: ReadonlyArray<ReadonlyArray<readonly [number, number]>>): Uint8Array {
  const writer = new CompactWriter(sketches.length)
  sketches.forEach((list, i) => list.forEach(([v, w]) => writer.add(i, v, w)))
  return writer.endCell().slice()
}

/** Merges cells' bytes into a store's cell, one merge call each. */
function mergeAll(store: SketchStore, id: number, cells: readonly Uint8Array[]): void {
  for (const bytes of cells) assert.equal(store.merge([id], bytes, [0, bytes.length], 1), 1)
}

/**
 * A sum starts empty: it holds each summed cell merged into an empty sketch, in order. Summing one
 * cell (`resum`) therefore gives the cell merged into an empty sketch, which differs from the cell
 * only where totals pass 2^53 and round.
 */
function assertSum(store: SketchStore, cells: readonly Sketch[], what: string, core: Core = new TsCore(), resum = true): void {
  const expected = !resum
    ? cells
    : cells.map((c) => {
        const s = core.newSketch()
        s.merge(c)
        return s
      })
  expected.forEach((s, i) => {
    assert.deepEqual(store.sumProto(i), s.toProto(), `${what}: sketch ${i} protobuf (${store.backend})`)
    assert.ok(Object.is(store.sumCount(i), s.count), `${what}: sketch ${i} count ${store.sumCount(i)} vs ${s.count}`)
    assert.ok(Object.is(store.sumZeroCount(i), s.zeroCount), `${what}: sketch ${i} zeroCount`)
    for (const q of QUANTILES) assert.ok(Object.is(store.sumQuantile(i, q), s.quantile(q)), `${what}: sketch ${i} quantile ${q}`)
  })
}

function assertSameStores([ts, wasm]: [SketchStore, SketchStore], ids: readonly number[]): void {
  assert.equal(wasm.cellCount, ts.cellCount)
  assert.equal(wasm.byteCount, ts.byteCount)
  const a = ts.bytesOf(ids, ids.length)
  const b = wasm.bytesOf(ids, ids.length)
  assert.deepEqual(b.ends, a.ends)
  assert.deepEqual(b.bytes, a.bytes)
}

describe('sketch store: a cell is the merge of its sketches, as the cores merge them', () => {
  for (const core of [new TsCore(), createWasmCore({})] as Core[]) {
    test(`merging compact cells gives ${core.backend} core sketches' protobufs, counts and quantiles`, () => {
      fc.assert(
        fc.property(fc.array(cell, { minLength: 1, maxLength: 5 }), (cells) => {
          const expected = Array.from({ length: WIDTH }, () => core.newSketch())
          for (const c of cells) c.forEach((list, i) => expected[i].merge(fill(core.newSketch(), list)))
          for (const store of stores()) {
            const id = store.newCell()
            mergeAll(store, id, cells.map(compact))
            store.sum([id], 1)
            assertSum(store, expected, 'one cell', core)
          }
          for (const s of expected) s.free()
        }),
        { numRuns: RUNS },
      )
    })
  }

  test('both stores hold the same bytes, ids and totals through merges, roll-ups and frees', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(7), cell, fc.boolean()), { minLength: 1, maxLength: 25 }), (steps) => {
        const pair = stores()
        const ids: number[][] = [[], []]
        pair.forEach((store, s) => {
          for (let i = 0; i < 8; i++) ids[s].push(store.newCell())
        })
        assert.deepEqual(ids[1], ids[0])
        for (const [at, c, free] of steps) {
          const bytes = compact(c)
          for (const store of pair) {
            assert.equal(store.merge([ids[0][at]], bytes, [0, bytes.length], 1), 1)
            if (free) {
              // A roll-up: the cell into the next one, then freed and made anew.
              const next = ids[0][(at + 1) % 8]
              store.mergeCells(next, [ids[0][at]], 1)
              store.freeCell(ids[0][at])
              assert.equal(store.newCell(), ids[0][at])
            }
          }
          assertSameStores(pair, ids[0])
        }
        for (const store of pair) store.sum(ids[0], ids[0].length)
        for (let i = 0; i < WIDTH; i++) {
          assert.deepEqual(pair[1].sumProto(i), pair[0].sumProto(i))
          for (const q of QUANTILES) assert.ok(Object.is(pair[1].sumQuantile(i, q), pair[0].sumQuantile(i, q)))
        }
      }),
      { numRuns: RUNS },
    )
  })

  test('a roll-up of cells is the merge of all their sketches', () => {
    fc.assert(
      fc.property(fc.array(cell, { minLength: 1, maxLength: 6 }), (cells) => {
        const core = new TsCore()
        const expected = Array.from({ length: WIDTH }, () => core.newSketch())
        for (const c of cells) c.forEach((list, i) => expected[i].merge(fill(core.newSketch(), list)))
        for (const store of stores()) {
          const sources = cells.map((c) => {
            const id = store.newCell()
            mergeAll(store, id, [compact(c)])
            return id
          })
          const target = store.newCell()
          store.mergeCells(target, sources, sources.length)
          store.sum([target], 1)
          assertSum(store, expected, 'rolled up')
          store.sum(sources, sources.length)
          assertSum(store, expected, 'summed', core, false)
        }
      }),
      { numRuns: RUNS },
    )
  })

  test('tens of thousands of cells, merged, rolled up and freed over and over: both stores alike', () => {
    const pair = stores()
    const next = (() => {
      let a = 7
      return () => ((a = (Math.imul(a, 1103515245) + 12345) >>> 0) / 2 ** 32)
    })()
    const live: number[][] = [[], []]
    for (let round = 0; round < 40; round++) {
      const sketches = Array.from({ length: WIDTH }, () => Array.from({ length: 1 + Math.floor(next() * 200) }, () => [0.001 * Math.exp(4 * next()), 1] as const))
      const bytes = compact(sketches)
      pair.forEach((store, s) => {
        for (let i = 0; i < 800; i++) live[s].push(store.newCell())
        const ids = live[s].filter((_, i) => i % 3 === round % 3)
        const input = new Uint8Array(bytes.length * ids.length)
        ids.forEach((_, i) => input.set(bytes, i * bytes.length))
        assert.equal(store.merge(ids, input, ids.map((_, i) => i * bytes.length).concat(input.length), ids.length), ids.length)
        const target = store.newCell()
        store.mergeCells(target, live[s].slice(0, 50), 50)
        for (const id of live[s].splice(0, 50)) store.freeCell(id)
        live[s].push(target)
      })
      assert.deepEqual(live[1], live[0])
      if (round % 10 === 9) assertSameStores(pair, live[0])
    }
  })

  test("a cell's bytes moved to another store make the same cell", () => {
    fc.assert(
      fc.property(fc.array(cell, { minLength: 1, maxLength: 4 }), (cells) => {
        const [from] = stores()
        const ids = cells.map((c) => {
          const id = from.newCell()
          mergeAll(from, id, [compact(c)])
          return id
        })
        const { bytes, ends } = from.bytesOf(ids, ids.length)
        for (const to of stores()) {
          const fresh = ids.map(() => to.newCell())
          assert.equal(to.merge(fresh, bytes, [0, ...ends], fresh.length), fresh.length)
          assert.deepEqual(to.bytesOf(fresh, fresh.length), { bytes, ends })
        }
      }),
      { numRuns: RUNS },
    )
  })
})

describe('compact cells read back', () => {
  test("CompactReader gives each sketch's zeros and bins, lowest key first, as the core's sketch holds them", () => {
    fc.assert(
      fc.property(cell, (c) => {
        const bytes = compact(c)
        const reader = new CompactReader(WIDTH)
        assert.equal(reader.read(bytes, 0, bytes.length), true)
        c.forEach((list, i) => {
          const s = fill(new TsCore().newSketch(), list) as TsSketch
          const expected: Array<[number, number]> = []
          // A key of -0 (Math.ceil of a tiny negative) is key 0: the same bin, the same bytes.
          if (s.binCount > 0) for (let k = s.minKey; k <= s.maxKey; k++) if (s.bins[k - s.offset] !== 0) expected.push([k === 0 ? 0 : k, s.bins[k - s.offset]])
          const bins: Array<[number, number]> = []
          reader.forEachBin(i, (key, count) => bins.push([key, count]))
          assert.deepEqual(bins, expected)
          assert.ok(Object.is(reader.zeroCount(i), s.zeroCount))
        })
        assert.equal(reader.read(bytes, 0, bytes.length - 1), false)
      }),
      { numRuns: RUNS },
    )
  })
})

describe('sketch store: what it refuses', () => {
  test('bytes that are not a compact cell leave the cell as it was, in both stores alike', () => {
    const known = compact([[[0.005, 3], [0.2, 1]], [[1, 0.5]], []])
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      // A valid cell with bytes changed, cut or added.
      fc
        .tuple(fc.nat(known.length - 1), fc.integer({ min: 0, max: 255 }))
        .map(([at, b]) => Uint8Array.from(known, (x, i) => (i === at ? b : x))),
      fc.nat(known.length).map((n) => known.slice(0, n)),
      fc.uint8Array({ minLength: 1, maxLength: 8 }).map((extra) => Uint8Array.from([...known, ...extra])),
      // Varints at the 53-bit limit, spans at the key limits.
      fc.constantFrom(
        Uint8Array.from([1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0]),
        Uint8Array.from([1, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0]),
        Uint8Array.from([1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x11, 0, 0]),
        Uint8Array.from([2, 0x80, 0x80, 0x80, 0x01, 1, 2, 0, 0]),
        Uint8Array.from([2, 0xff, 0xff, 0x7f, 1, 2, 0, 0]),
        Uint8Array.from([2, 0, 0x81, 0x10, 2, 0x87, 0x7f, 2, 0, 0]),
        Uint8Array.from([2, 0, 3, 2, 1, 2, 0, 0]),
        Uint8Array.from([6, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 1, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, 0, 0]),
      ),
    )
    fc.assert(
      fc.property(bytes, (input) => {
        const pair = stores()
        const results = pair.map((store) => {
          const id = store.newCell()
          mergeAll(store, id, [known])
          const merged = new Uint8Array(1)
          const done = store.merge([id], input, [0, input.length], 1, merged)
          assert.equal(merged[0], done)
          return { done, bytes: store.bytesOf([id], 1).bytes }
        })
        assert.deepEqual(results[1], results[0])
        if (results[0].done === 0) {
          const [untouched] = stores()
          const id = untouched.newCell()
          mergeAll(untouched, id, [known])
          assert.deepEqual(results[0].bytes, untouched.bytesOf([id], 1).bytes)
        }
      }),
      { numRuns: RUNS * 5 },
    )
  })

  test('unknown and freed ids merge nothing and are not freed twice', () => {
    for (const store of stores()) {
      const id = store.newCell()
      const bytes = compact([[[1, 1]], [], []])
      store.freeCell(id)
      store.freeCell(id)
      assert.equal(store.cellCount, 0)
      const three = Uint8Array.from([...bytes, ...bytes, ...bytes])
      assert.equal(store.merge([id, 999, 0], three, [0, bytes.length, 2 * bytes.length, 3 * bytes.length], 3), 0)
      assert.equal(store.newCell(), id)
      assert.equal(store.newCell(), id + 1)
    }
  })

  test('a width outside 1 to 8 counts as 1; the Wasm store by default', () => {
    for (const width of [0, 9, 2.5, NaN, -1]) assert.equal(createSketchStore({ width }).width, 1)
    assert.equal(createSketchStore({ width: 3 }).width, 3)
    assert.equal(createSketchStore({ width: 3 }).backend, 'wasm')
    assert.equal(createSketchStore({ width: 3, backend: 'ts' }).backend, 'ts')
  })

  test('spans outside the input and ids that are not cells merge nothing, in both stores alike', () => {
    const bytes = compact([[[1, 1]], [], []])
    for (const store of stores()) {
      const id = store.newCell()
      const merged = new Uint8Array(6)
      const spans = [0, -1, 0.5, bytes.length + 1, NaN, bytes.length]
      assert.equal(store.merge([id, id, id, id, 2 ** 32 + id, id], bytes, spans, 99, merged), 0, store.backend)
      assert.deepEqual([...merged], [0, 0, 0, 0, 0, 0])
      assert.equal(store.merge([2 ** 32 + id, id], bytes, [0, 0, bytes.length], 2, merged), 1)
      assert.deepEqual([...merged.subarray(0, 2)], [0, 1])
      assert.ok(Number.isNaN(store.sumCount(3)) && Number.isNaN(store.sumQuantile(-1, 0.5)))
      assert.deepEqual(store.sumProto(1.5), new Uint8Array(0))
    }
  })
})

describe('sketch store: memory', () => {
  test('an empty cell takes no bytes; a 1% sketch of 1,000 latencies about 150 bytes', () => {
    const values = [...Array(1000).keys()].map((i) => 0.005 * Math.exp(1.6 * Math.sin(i * 12.9898)))
    const latencies = fill(new TsCore().newSketch(), values.map((v) => [v, 1]))
    for (const store of stores(1)) {
      const id = store.newCell()
      assert.equal(store.byteCount, 0)
      assert.deepEqual(store.bytesOf([id], 1).bytes, new Uint8Array(1))
      mergeAll(store, id, [compact([values.map((v) => [v, 1] as const)])])
      assert.ok(store.byteCount > 50 && store.byteCount < 400, `${store.byteCount} bytes`)
      assert.ok(latencies.toProto().length > 4 * store.byteCount, `protobuf ${latencies.toProto().length} bytes`)
      store.freeCell(id)
      assert.equal(store.byteCount, 0)
    }
  })
})
