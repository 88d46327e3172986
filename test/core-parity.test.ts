/**
 * The Wasm core and the TS core must agree bit for bit: same node and pathway hashes, same sketch
 * bytes, counts and quantiles, same drain output (the same msgpack bytes, chunk for chunk, in
 * both sketch forms). Random inputs through fast-check; an
 * independent BigInt FNV-1 64 pins the hashes themselves.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { MIN_INDEXABLE_VALUE } from '../bindings/core/sketch-constants.js'
import {
  BATCH_CAPACITY,
  BATCH_EDGE_LATENCY,
  BATCH_NODE,
  BATCH_OUT_HI,
  BATCH_OUT_LO,
  BATCH_PARENT_HI,
  BATCH_PARENT_LO,
  BATCH_PATHWAY_LATENCY,
  BATCH_PAYLOAD,
  BATCH_STRIDE,
} from '../bindings/core/layout.js'
import { type Core, type CoreOptions, type Sketch } from '../bindings/core/types.js'
import { TsCore } from '../bindings/ts/core.js'
import { createWasmCore } from '../bindings/wasm/core.js'
import { moduleBytes } from '../bindings/wasm/module-bytes.js'
import { drainChunks } from './helpers/drain.js'

const RUNS = Number(process.env.PARITY_RUNS ?? 200)

const pair = (options: CoreOptions = {}): [Core, Core] => [new TsCore(options), createWasmCore(options)]
const wasmMemory = (core: Core) => (core as unknown as { x: { memory: WebAssembly.Memory } }).x.memory

function fnv1(bytes: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n
  for (const b of bytes) h = ((h * 0x100000001b3n) & 0xffffffffffffffffn) ^ BigInt(b)
  return h
}
const le64 = (v: bigint) => {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, v, true)
  return b
}
const hashOf = (core: Core) => (BigInt(core.hashHi) << 32n) | BigInt(core.hashLo)

const u32 = fc.integer({ min: 0, max: 0xffffffff })
/** Any UTF-16 text, lone surrogates included (both cores encode them as U+FFFD). */
const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 }),
)
const tags = fc.array(text, { maxLength: 6 })

/** Sketch inputs: zeros, negatives, subnormals, the zero threshold, huge values, spans past 2048 keys. */
const value = fc.oneof(
  fc.constantFrom(0, -0, -1, 5e-324, MIN_INDEXABLE_VALUE, 1.1350124227738752e-308, 2.2250738585072014e-308, 1e-300, 1e300, Number.MAX_VALUE, Infinity, NaN, 1),
  fc.double({ min: 0, max: 2.3e-308, noNaN: true }),
  fc.double({ min: 1e-12, max: 1e12, noNaN: true }),
  fc.double(),
  fc.integer({ min: 0, max: 1 << 30 }),
)
const weight = fc.option(fc.oneof(fc.constantFrom(1, 0, -1, NaN, 0.5, 1e-9, 1e9), fc.double({ min: 0, max: 100, noNaN: true })), { nil: undefined })
const entries = fc.array(fc.tuple(value, weight), { maxLength: 300 })
const QUANTILES = [-0.1, 0, 1e-9, 0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1, 1.5, NaN]

function fill(sketch: Sketch, list: readonly [number, number | undefined][]): Sketch {
  for (const [v, w] of list) {
    if (w === undefined) sketch.add(v)
    else sketch.add(v, w)
  }
  return sketch
}

function assertSameSketch(a: Sketch, b: Sketch): void {
  assert.deepEqual(b.toProto(), a.toProto())
  assert.ok(Object.is(b.count, a.count), `count ${b.count} vs ${a.count}`)
  assert.ok(Object.is(b.zeroCount, a.zeroCount), `zeroCount ${b.zeroCount} vs ${a.zeroCount}`)
  for (const q of QUANTILES) assert.ok(Object.is(b.quantile(q), a.quantile(q)), `quantile ${q}: ${b.quantile(q)} vs ${a.quantile(q)}`)
}

describe('wasm module', () => {
  test('imports nothing and exports its memory', () => {
    const module = new WebAssembly.Module(moduleBytes())
    assert.deepEqual(WebAssembly.Module.imports(module), [])
    assert.ok(WebAssembly.Module.exports(module).some((e) => e.name === 'memory' && e.kind === 'memory'))
  })

  test('takes a precompiled module, one instance per core', () => {
    const module = new WebAssembly.Module(moduleBytes())
    const a = createWasmCore({}, module)
    const b = createWasmCore({}, module)
    a.checkpoint(a.node('s', 'e', []), 0, 0, 1, 1, 1, 1)
    assert.equal(a.livePoints, 1)
    assert.equal(b.livePoints, 0)
  })
})

describe('hashes', () => {
  test('known vectors', () => {
    for (const core of pair()) {
      core.nodeHash(core.node('', '', []))
      assert.equal(hashOf(core), 0xcbf29ce484222325n)
      core.nodeHash(core.node('a', '', []))
      assert.equal(hashOf(core), 0xaf63bd4c8601b7ben)
      const n = core.node('svc', 'prod', ['type:kafka', 'direction:out', 'topic:orders'])
      core.nodeHash(n)
      assert.equal(hashOf(core), 0x939e73cbcc898ca5n)
      core.pathwayHash(n, 0, 0)
      assert.equal(hashOf(core), 0x9a6ed7bfb001208en)
    }
  })

  test('node ids and hashes for random service, env and tags', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(text, text, tags), { minLength: 1, maxLength: 20 }), (nodes) => {
        const [ts, wasm] = pair()
        for (const [service, env, edgeTags] of nodes) {
          const id = ts.node(service, env, edgeTags)
          assert.equal(wasm.node(service, env, [...edgeTags].reverse()), id)
          ts.nodeHash(id)
          wasm.nodeHash(id)
          assert.equal(wasm.hashHi, ts.hashHi)
          assert.equal(wasm.hashLo, ts.hashLo)
          assert.equal(hashOf(wasm), fnv1(new TextEncoder().encode(service + env + [...edgeTags].sort().join(''))))
        }
      }),
      { numRuns: RUNS },
    )
  })

  test('pathway hashes for random parents, unknown nodes included', () => {
    const [ts, wasm] = pair()
    const nodes = [ts.node('svc', 'env', ['direction:in']), ts.node('ünïcødé', '', ['topic:ø'])]
    for (const [service, env, t] of [['svc', 'env', ['direction:in']], ['ünïcødé', '', ['topic:ø']]] as const) wasm.node(service, env, t)
    fc.assert(
      fc.property(fc.constantFrom(...nodes, 7), u32, u32, (node, hi, lo) => {
        ts.pathwayHash(node, hi, lo)
        wasm.pathwayHash(node, hi, lo)
        assert.equal(wasm.hashHi, ts.hashHi)
        assert.equal(wasm.hashLo, ts.hashLo)
        if (node !== 7) {
          ts.nodeHash(node)
          const expected = fnv1(new Uint8Array([...le64(hashOf(ts)), ...le64((BigInt(hi) << 32n) | BigInt(lo))]))
          assert.equal(hashOf(wasm), expected)
        }
      }),
      { numRuns: RUNS * 10 },
    )
  })
})

describe('sketches', () => {
  test('same bytes, counts and quantiles for random values and weights', () => {
    fc.assert(
      fc.property(entries, (list) => {
        const [ts, wasm] = pair()
        const a = fill(ts.newSketch(), list)
        const b = fill(wasm.newSketch(), list)
        assertSameSketch(a, b)
        b.free()
      }),
      { numRuns: RUNS * 2 },
    )
  })

  test('same keys on key boundaries, where Math.log hands over to the portable ln', () => {
    // gamma^k and its neighbouring doubles: ln(v) * KEY_MULTIPLIER lands on or next to an integer.
    const gamma = 1.02020202020202
    const f64 = new Float64Array(1)
    const bits = new BigInt64Array(f64.buffer)
    for (let start = -34_000; start < 34_000; start += 1000) {
      const [ts, wasm] = pair()
      const a = ts.newSketch()
      const b = wasm.newSketch()
      for (let k = start; k < start + 1000; k++) {
        f64[0] = Math.pow(gamma, k)
        if (!(f64[0] > MIN_INDEXABLE_VALUE) || !Number.isFinite(f64[0])) continue
        const center = bits[0]
        for (let d = -2n; d <= 2n; d++) {
          bits[0] = center + d
          a.add(f64[0])
          b.add(f64[0])
        }
      }
      assertSameSketch(a, b)
      b.free()
    }
  })

  test('collapsing: values spanning far more than 2048 keys, in any order', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 1e-200, max: 1e200, noNaN: true }), { minLength: 1, maxLength: 500 }), fc.boolean(), (values, sorted) => {
        if (sorted) values.sort((x, y) => y - x)
        const [ts, wasm] = pair()
        const a = ts.newSketch()
        const b = wasm.newSketch()
        for (const v of values) {
          a.add(v)
          b.add(v)
        }
        assertSameSketch(a, b)
      }),
      { numRuns: RUNS },
    )
  })

  test('merge, self-merge, and merge across two Wasm instances', () => {
    fc.assert(
      fc.property(entries, entries, (left, right) => {
        const [ts, wasm] = pair()
        const other = createWasmCore({})
        const a = fill(ts.newSketch(), left)
        const b = fill(wasm.newSketch(), left)
        const c = fill(wasm.newSketch(), left)
        a.merge(fill(ts.newSketch(), right))
        b.merge(fill(wasm.newSketch(), right))
        c.merge(fill(other.newSketch(), right))
        assertSameSketch(a, b)
        assertSameSketch(a, c)
        a.merge(a)
        b.merge(b)
        assertSameSketch(a, b)
      }),
      { numRuns: RUNS },
    )
  })

  test('free releases the bins for reuse', () => {
    const [, wasm] = pair()
    const memory = wasmMemory(wasm)
    const cycle = () => {
      const sketches = Array.from({ length: 500 }, () => wasm.newSketch())
      for (const s of sketches) for (let k = 0; k < 2500; k += 7) s.add(Math.exp(k / 50))
      for (const s of sketches) s.free()
    }
    cycle()
    const size = memory.buffer.byteLength
    for (let i = 0; i < 5; i++) cycle()
    assert.equal(memory.buffer.byteLength, size)
  })
})

/**
 * One step of a random workload: a single checkpoint, a batch, a drain, a node registered (one of
 * 8, so sometimes live already, sometimes released before) or an id released (live, released
 * already, free or unknown). Checkpoints name a node by its index among the live ones.
 */
type Step =
  | { kind: 'one'; node: number; hi: number; lo: number; bucket: number; p: number; e: number; s: number }
  | { kind: 'batch'; bucket: number; records: [number, number, number, number, number, number][] }
  | { kind: 'drain'; before: number; sparse: boolean; maxBytes: number }
  | { kind: 'node'; n: number }
  | { kind: 'release'; id: number }

/** Unsigned halves, plus signed ones (both cores key the point by the unsigned halves they hash). */
const parent = fc.oneof(fc.constantFrom(0, 1, 0xffffffff, -1), u32, fc.integer({ min: -0x80000000, max: -1 }))
const latency = fc.oneof(fc.constantFrom(0, -1, 1e-9), fc.double({ min: 0, max: 3600, noNaN: true }))
/** Bucket numbers, now and then ones no caller makes (both cores take a bucket as an i32, as Wasm does). */
const bucketOf = fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 170_000_000, max: 170_000_005 }) }, { weight: 1, arbitrary: fc.constantFrom(NaN, 170_000_001.5, -1, 2 ** 32 + 170_000_002) })
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('one' as const), node: fc.nat(4), hi: parent, lo: parent, bucket: bucketOf, p: latency, e: latency, s: fc.nat(1 << 20) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('batch' as const),
      bucket: bucketOf,
      records: fc.array(fc.tuple(fc.nat(4), parent, parent, latency, latency, fc.nat(1 << 20)), { maxLength: 40 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('drain' as const),
      before: fc.oneof(bucketOf, fc.constant(Infinity)),
      sparse: fc.boolean(),
      maxBytes: fc.oneof(fc.constant(64 * 1024), fc.integer({ min: -1, max: 4000 })),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('node' as const), n: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('release' as const), id: fc.integer({ min: -1, max: 10 }) }) },
)

const register = (core: Core, n: number) => core.node(`service-${n}`, 'env', [`topic:t${n}`, 'direction:out'])

/** The steps' results, and a last drain of everything unless `drainAtEnd` is false. */
function run(core: Core, steps: readonly Step[], drainAtEnd = true): unknown[] {
  const seen: unknown[] = []
  const live: number[] = []
  for (let i = 0; i < 4; i++) live.push(register(core, i))
  // a live node, or an id neither core ever handed out (both hash it as node hash 0); never a released one, as callers promise
  const nodeOf = (i: number) => (i < live.length ? live[i] : 100 + i)
  for (const s of steps) {
    if (s.kind === 'node') {
      const id = register(core, s.n)
      if (!live.includes(id)) live.push(id)
      seen.push(id)
    } else if (s.kind === 'release') {
      core.releaseNode(s.id)
      if (live.includes(s.id)) live.splice(live.indexOf(s.id), 1)
    } else if (s.kind === 'one') {
      seen.push(core.checkpoint(nodeOf(s.node), s.hi, s.lo, s.bucket, s.p, s.e, s.s), core.hashHi, core.hashLo)
    } else if (s.kind === 'batch') {
      let b = core.batchBuffer()
      s.records.forEach((r, i) => {
        const at = i * BATCH_STRIDE
        b[at + BATCH_NODE] = nodeOf(r[0])
        b[at + BATCH_PARENT_HI] = r[1]
        b[at + BATCH_PARENT_LO] = r[2]
        b[at + BATCH_PATHWAY_LATENCY] = r[3]
        b[at + BATCH_EDGE_LATENCY] = r[4]
        b[at + BATCH_PAYLOAD] = r[5]
      })
      seen.push(core.checkpointBatch(s.records.length, s.bucket), core.hashHi, core.hashLo)
      b = core.batchBuffer() // the batch may have grown Wasm memory
      for (let i = 0; i < s.records.length; i++) seen.push(b[i * BATCH_STRIDE + BATCH_OUT_HI], b[i * BATCH_STRIDE + BATCH_OUT_LO])
    } else {
      seen.push(drainChunks(core, s.before, s.sparse, s.maxBytes))
    }
    seen.push(core.livePoints, core.droppedPoints, core.liveNodes)
  }
  if (drainAtEnd) seen.push(drainChunks(core, Infinity, true), core.livePoints)
  return seen
}

describe('aggregation', () => {
  test('same results and drain output for random checkpoint sequences', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const [ts, wasm] = pair()
        assert.deepEqual(run(wasm, steps), run(ts, steps))
      }),
      { numRuns: RUNS },
    )
  })

  test('the point cap drops and counts the same checkpoints', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 12 }), fc.array(step, { maxLength: 60 }), (maxPoints, steps) => {
        const [ts, wasm] = pair({ maxPoints })
        assert.deepEqual(run(wasm, steps), run(ts, steps))
        assert.ok(wasm.droppedPoints === ts.droppedPoints)
      }),
      { numRuns: RUNS },
    )
  })

  test('checkpoints, registrations and releases between the chunks of a drain: same chunks, same ids, same later drain', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), fc.array(step, { maxLength: 30 }), fc.boolean(), (before, during, sparse) => {
        const [ts, wasm] = pair({ maxPoints: 50 })
        const outputs = (core: Core) => {
          const seen = run(core, before, false)
          seen.push(core.drainBegin(Infinity, sparse))
          const chunks = []
          for (let i = 0; ; i++) {
            if (i === 1) seen.push(run(core, during.filter((s) => s.kind !== 'drain'), false))
            const n = core.drainChunk(600)
            if (n === 0) break
            chunks.push([core.chunkBucket, core.chunkBytes().slice(), [...core.chunkEnds()]])
          }
          core.drainEnd()
          seen.push(chunks, [0, 1, 2, 3, 4, 5, 6, 7].map((n) => register(core, n)), drainChunks(core, Infinity, sparse))
          return seen
        }
        assert.deepEqual(outputs(wasm), outputs(ts))
      }),
      { numRuns: RUNS },
    )
  })

  test('a batch longer than the buffer records only the buffer', () => {
    for (const core of pair()) {
      const n = core.node('svc', 'env', [])
      const b = core.batchBuffer()
      for (let i = 0; i < BATCH_CAPACITY; i++) {
        b[i * BATCH_STRIDE + BATCH_NODE] = n
        b[i * BATCH_STRIDE + BATCH_PARENT_LO] = i
      }
      assert.equal(core.checkpointBatch(BATCH_CAPACITY + 10, 1), BATCH_CAPACITY)
      assert.equal(core.livePoints, BATCH_CAPACITY)
    }
  })

  test('batches that grow Wasm memory give the same hashes and points', () => {
    const [ts, wasm] = pair()
    const memory = wasmMemory(wasm)
    const size = memory.buffer.byteLength
    const outputs = (core: Core) => {
      const seen: number[] = []
      const node = core.node('svc', 'env', ['direction:in'])
      for (let batch = 0; batch < 24; batch++) {
        let b = core.batchBuffer()
        for (let i = 0; i < BATCH_CAPACITY; i++) {
          const at = i * BATCH_STRIDE
          b[at + BATCH_NODE] = node
          b[at + BATCH_PARENT_HI] = batch
          b[at + BATCH_PARENT_LO] = Math.imul(i, 0x9e3779b1) >>> 0
          b[at + BATCH_PATHWAY_LATENCY] = i / 7
          b[at + BATCH_EDGE_LATENCY] = batch / 3
          b[at + BATCH_PAYLOAD] = i * batch
        }
        seen.push(core.checkpointBatch(BATCH_CAPACITY, batch % 3), core.hashHi, core.hashLo)
        b = core.batchBuffer()
        for (let i = 0; i < BATCH_CAPACITY; i++) seen.push(b[i * BATCH_STRIDE + BATCH_OUT_HI], b[i * BATCH_STRIDE + BATCH_OUT_LO])
      }
      return seen
    }
    assert.deepEqual(outputs(wasm), outputs(ts))
    assert.ok(memory.buffer.byteLength > size, 'the batches were meant to grow Wasm memory')
    assert.deepEqual(drainChunks(wasm, Infinity), drainChunks(ts, Infinity))
  })

  test('many points, index growth, then drained: same output, memory reused', () => {
    const [ts, wasm] = pair({ maxPoints: 100_000 })
    const load = (core: Core, bucket: number) => {
      const nodes = Array.from({ length: 8 }, (_, i) => core.node('svc', 'env', [`topic:${i}`]))
      for (let i = 0; i < 20_000; i++) core.checkpoint(nodes[i & 7], i >>> 3, i * 2654435761, bucket + (i % 3), (i % 977) / 100, (i % 131) / 1000, i % 4096)
    }
    let size = 0
    for (let cycle = 0; cycle < 3; cycle++) {
      load(ts, cycle * 3)
      load(wasm, cycle * 3)
      assert.equal(wasm.livePoints, ts.livePoints)
      assert.deepEqual(drainChunks(wasm, cycle * 3 + 2), drainChunks(ts, cycle * 3 + 2))
      assert.deepEqual(drainChunks(wasm, Infinity, true), drainChunks(ts, Infinity, true))
      assert.equal(wasm.livePoints, 0)
      if (cycle === 1) size = wasmMemory(wasm).buffer.byteLength
      if (cycle > 1) assert.equal(wasmMemory(wasm).buffer.byteLength, size, 'Wasm memory grew after a drain')
    }
  })

  test('a drain that leaves nothing alive gives the memory back, keeping nodes and the drop count', () => {
    const [ts, wasm] = pair({ maxPoints: 30_000 })
    const start = wasmMemory(wasm).buffer.byteLength
    const nodes = [ts, wasm].map((core) => Array.from({ length: 5 }, (_, i) => core.node('svc', 'env', [`topic:${i}`])))
    for (const [c, core] of [ts, wasm].entries()) {
      for (let i = 0; i < 40_000; i++) core.checkpoint(nodes[c][i % 5], 0, i, 1, i / 1000, i / 5000, i)
    }
    assert.ok(wasmMemory(wasm).buffer.byteLength > start, 'the load grew the memory')
    assert.deepEqual(drainChunks(wasm, Infinity), drainChunks(ts, Infinity))
    assert.equal(wasmMemory(wasm).buffer.byteLength, start)
    assert.equal(wasm.droppedPoints, 10_000)
    assert.equal(wasm.node('svc', 'env', ['topic:3']), nodes[1][3])
    for (const core of [ts, wasm]) core.checkpoint(core.node('svc', 'env', ['topic:4']), 0, 7, 2, 1, 1, 1)
    assert.deepEqual(drainChunks(wasm, Infinity), drainChunks(ts, Infinity))
  })

  test('a sketch handed out keeps the instance, and its memory, until it is freed', () => {
    const wasm = createWasmCore({})
    const sketch = wasm.newSketch()
    const node = wasm.node('svc', 'env', [])
    for (let i = 0; i < 20_000; i++) wasm.checkpoint(node, 0, i, 1, i, i, i)
    sketch.add(3)
    drainChunks(wasm, Infinity)
    assert.equal(sketch.count, 1)
    assert.ok(Math.abs(sketch.quantile(0.5) - 3) < 0.03)
    sketch.free()
  })
})
