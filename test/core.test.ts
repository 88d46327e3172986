/**
 * The one core suite, run on both backends: hashing, DDSketch, aggregation.
 * (Bit-for-bit parity between the backends on random inputs: core-parity.test.ts.)
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { decodeMulti, encode } from '@msgpack/msgpack'
import fc from 'fast-check'
import { createCore } from '../bindings/processor/create-core.js'
import type { NodeIds } from '../bindings/core/node-ids.js'
import { BATCH_EDGE_LATENCY, BATCH_NODE, BATCH_OUT_HI, BATCH_OUT_LO, BATCH_PARENT_HI, BATCH_PARENT_LO, BATCH_PATHWAY_LATENCY, BATCH_PAYLOAD, BATCH_STRIDE } from '../bindings/core/layout.js'
import type { Backend, Core } from '../bindings/core/types.js'
import { drainChunks, drainPoints } from './helpers/drain.js'
import { expectedHash, fnv64 } from './helpers/expected-hash.js'
import { decodeSketch } from './helpers/sketches.js'

const hex = (core: Core) => core.hashHi.toString(16).padStart(8, '0') + core.hashLo.toString(16).padStart(8, '0')
const big = (hi: number, lo: number) => (BigInt(hi) << 32n) | BigInt(lo)
const le64 = (v: bigint) => {
  const b = Buffer.alloc(8)
  b.writeBigUInt64LE(v)
  return b
}

/** A seeded generator, so a failure can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0
    s ^= s + Math.imul(s ^ (s >>> 7), 61 | s)
    return ((s ^ (s >>> 14)) >>> 0) / 4294967296
  }
}

const distributions: Record<string, (r: () => number) => number> = {
  uniform: (r) => r() * 1000,
  exponential: (r) => -Math.log(1 - r()) * 0.05,
  lognormal: (r) => Math.exp(1 + 2 * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())),
  pareto: (r) => 1 / Math.pow(1 - r(), 1 / 1.5),
}
const QUANTILES = [0.5, 0.75, 0.9, 0.95, 0.99, 0.999]

// What the Core interface does not show: the id registry both cores keep, and the Wasm core's instance.
const nodeIds = (core: Core) => (core as unknown as { nodes: NodeIds }).nodes
const instance = (core: Core) => (core as unknown as { x: { memory: WebAssembly.Memory } }).x
const wasmBytes = (core: Core) => instance(core).memory.buffer.byteLength
const PAGE = 65_536

for (const backend of ['wasm', 'ts'] as Backend[]) {
  describe(`core (${backend})`, () => {
    const make = (maxPoints?: number) => createCore({ backend, maxPoints })

    test('runs the backend it was asked for', () => {
      assert.equal(make().backend, backend)
    })

    describe('hashing', () => {
      test('FNV-1 64 vectors and the reference page example', () => {
        const core = make()
        core.nodeHash(core.node('', '', []))
        assert.equal(hex(core), 'cbf29ce484222325')
        core.nodeHash(core.node('a', '', []))
        assert.equal(hex(core), 'af63bd4c8601b7be')
        const node = core.node('svc', 'prod', ['type:kafka', 'direction:out', 'topic:orders'])
        core.nodeHash(node)
        assert.equal(hex(core), '939e73cbcc898ca5')
        core.pathwayHash(node, 0, 0)
        assert.equal(hex(core), '9a6ed7bfb001208e')
      })

      test('node and pathway hashes equal dd-trace fnv64 for random services, envs and tags', () => {
        const core = make()
        const r = rng(7)
        const word = () => {
          const chars = 'abcdefghijklmnopqrstuvwxyz-_:.0123456789éü日本'
          let s = ''
          for (let n = 1 + Math.floor(r() * 12); n > 0; n--) s += chars[Math.floor(r() * chars.length)]
          return s
        }
        for (let i = 0; i < 300; i++) {
          const tags = Array.from({ length: Math.floor(r() * 5) }, () => `${word()}:${word()}`)
          const service = word()
          const env = word()
          const node = core.node(service, env, tags)
          core.nodeHash(node)
          const expectedNode = fnv64(Buffer.from(service + env + [...tags].sort().join(''), 'utf8'))
          assert.equal(big(core.hashHi, core.hashLo), expectedNode)
          const parent = (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32))
          core.pathwayHash(node, Number(parent >> 32n), Number(parent & 0xffffffffn))
          assert.equal(big(core.hashHi, core.hashLo), fnv64(Buffer.concat([le64(expectedNode), le64(parent)])))
        }
      })

      test('a node is registered once, whatever the order of its tags', () => {
        const core = make()
        assert.equal(core.node('s', 'e', ['b:1', 'a:1']), core.node('s', 'e', ['a:1', 'b:1']))
        assert.notEqual(core.node('s', 'e', ['a:1']), core.node('s', 'e2', ['a:1']))
      })
    })

    describe('DDSketch', () => {
      for (const [name, draw] of Object.entries(distributions)) {
        test(`quantiles of ${name} samples are within 1% of the exact ones`, () => {
          const r = rng(name.length * 31)
          const values = Array.from({ length: 100_000 }, () => draw(r))
          const sketch = make().newSketch()
          for (const v of values) sketch.add(v)
          values.sort((a, b) => a - b)
          assert.equal(sketch.count, values.length)
          for (const q of QUANTILES) {
            const exact = values[Math.floor(q * (values.length - 1))]
            const got = sketch.quantile(q)
            assert.ok(Math.abs(got - exact) <= 0.01 * exact, `${name} q${q}: ${got} vs exact ${exact}`)
          }
          sketch.free()
        })
      }

      test('zeros, tiny values and weights', () => {
        const sketch = make().newSketch()
        sketch.add(0, 3)
        sketch.add(-5)
        sketch.add(1e-320)
        sketch.add(10, 2.5)
        sketch.add(7, 0)
        assert.equal(sketch.zeroCount, 5)
        assert.equal(sketch.count, 7.5)
        assert.equal(sketch.quantile(0), 0)
        assert.ok(Math.abs(sketch.quantile(1) - 10) <= 0.1)
        assert.ok(Number.isNaN(sketch.quantile(1.5)))
        assert.ok(Number.isNaN(make().newSketch().quantile(0.5)))
      })

      test('keeps at most 2048 bins, folding the lowest ones', () => {
        const sketch = make().newSketch()
        for (let e = -300; e <= 300; e += 0.5) sketch.add(Math.pow(10, e))
        const decoded = decodeSketch(sketch.toProto())
        assert.ok(decoded.binCount <= 2048, `${decoded.binCount} bins`)
        assert.equal(decoded.count, sketch.count)
        assert.ok(Math.abs(sketch.quantile(1) - 1e300) <= 1e298)
      })

      test('merge equals inserting everything into one sketch', () => {
        fc.assert(
          fc.property(
            fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { maxLength: 200 }),
            fc.array(fc.double({ min: 1e-9, max: 1e12, noNaN: true }), { maxLength: 200 }),
            (a, b) => {
              const core = make()
              const left = core.newSketch()
              const right = core.newSketch()
              const all = core.newSketch()
              for (const v of a) (left.add(v), all.add(v))
              for (const v of b) (right.add(v), all.add(v))
              left.merge(right)
              assert.deepEqual(left.toProto(), all.toProto())
            },
          ),
          { numRuns: 200 },
        )
      })

      test('the protobuf decodes with @datadog/sketches-js to the same quantiles', () => {
        const r = rng(99)
        const sketch = make().newSketch()
        for (let i = 0; i < 10_000; i++) sketch.add(distributions.lognormal(r))
        const decoded = decodeSketch(sketch.toProto())
        assert.equal(decoded.count, 10_000)
        for (const q of QUANTILES) {
          const ours = sketch.quantile(q)
          assert.ok(Math.abs(decoded.quantile(q) - ours) <= 1e-9 * ours, `q${q}`)
        }
      })

      test('writes only the occupied bins: a single value is a few dozen bytes', () => {
        const sketch = make().newSketch()
        sketch.add(0.25)
        assert.ok(sketch.toProto().length < 40, `${sketch.toProto().length} bytes`)
        assert.ok(Math.abs(decodeSketch(sketch.toProto()).quantile(0.5) - 0.25) <= 0.0025)
      })
    })

    describe('node release', () => {
      const tags = (topic: string) => ['direction:in', `topic:${topic}`, 'type:kafka']
      const pathway = (core: Core, id: number) => (core.pathwayHash(id, 0, 0), big(core.hashHi, core.hashLo))

      test('a released id is reused only after a drain past every bucket its points could be in', () => {
        const core = make()
        const a = core.node('svc', 'env', tags('a'))
        const b = core.node('svc', 'env', tags('b'))
        const hashOfA = pathway(core, a)
        core.checkpoint(a, 0, 0, 100, 1, 1, 1)
        core.checkpoint(b, 0, 0, 101, 1, 1, 1)
        core.releaseNode(a)
        for (const ignored of [a, 99, -1, 0.5, NaN, String(b), BigInt(b)]) core.releaseNode(ignored as number)
        assert.equal(core.liveNodes, 1)

        // forgotten at once: the same node registers again, under a new id
        const again = core.node('svc', 'env', tags('a'))
        assert.ok(again !== a && again !== b)
        assert.equal(core.node('svc', 'env', tags('a')), again)
        core.releaseNode(again)

        // bucket 100 drained, but bucket 101 (the highest named when both were released) is alive
        const [first] = drainPoints(core, 101)
        assert.deepEqual(first.points.map((p) => [p.edgeTags, big(p.hashHi, p.hashLo)]), [[tags('a'), hashOfA]], 'a drained point keeps its released node')
        const c = core.node('svc', 'env', tags('c'))
        assert.ok(![a, b, again].includes(c))

        drainPoints(core, 102)
        const d = core.node('svc', 'env', tags('d'))
        const e = core.node('svc', 'env', tags('e'))
        assert.deepEqual([d, e].sort((x, y) => x - y), [a, again].sort((x, y) => x - y))
        assert.equal(core.liveNodes, 4)
        assert.equal(nodeIds(core).size, 4)
        for (const [id, topic] of [[d, 'd'], [e, 'e']] as const) {
          assert.equal(pathway(core, id), expectedHash('svc', 'env', tags(topic), 0n), 'a reused id hashes as its new node')
          core.checkpoint(id, 0, 0, 102, 1, 1, 1)
        }
        const [last] = drainPoints(core, Infinity)
        assert.deepEqual(
          last.points.map((p) => [p.edgeTags, big(p.hashHi, p.hashLo)]),
          [
            [tags('d'), pathway(core, d)],
            [tags('e'), pathway(core, e)],
          ],
        )
      })

      test('a node released while a drain is written keeps its id until that drain ends, even when its points are not in it', () => {
        const core = make()
        const a = core.node('svc', 'env', tags('a'))
        core.checkpoint(a, 0, 0, 100, 1, 1, 1)
        core.drainBegin(Infinity, false)
        // meanwhile: a checkpoint of `a` lands in the live points, then `a` is released
        core.checkpoint(a, 0, 1, 100, 1, 1, 1)
        core.releaseNode(a)
        while (core.drainChunk(1024) > 0);
        core.drainEnd()
        const b = core.node('svc', 'env', tags('b'))
        assert.notEqual(b, a, 'the live point of a still carries its id')
        assert.deepEqual(
          drainPoints(core, Infinity)[0].points.map((p) => p.edgeTags),
          [tags('a')],
        )
        assert.equal(core.node('svc', 'env', tags('c')), a, 'and once that drain has ended, the id is free')
      })

      test('a drain that leaves no point alive frees every released id', () => {
        const core = createCore({ backend, maxPoints: 1, maxLivePoints: 1 })
        const a = core.node('svc', 'env', tags('a'))
        core.checkpoint(a, 0, 0, 100, 1, 1, 1)
        assert.ok(!core.checkpoint(a, 0, 1, 200, 1, 1, 1), 'dropped by the cap, though its bucket counts as named')
        core.releaseNode(a)
        drainPoints(core, 101)
        assert.equal(core.livePoints, 0)
        assert.equal(core.node('svc', 'env', tags('b')), a)
      })

      test('100,000 nodes through a cache of 10,000: ids, lookups and memory stay those of 10,000 nodes', () => {
        const LIVE = 10_000
        const PER_BUCKET = 1000 // a flush every 1,000 new nodes
        const core = make()
        const ids: number[] = []
        for (let i = 0; i < 100_000; i++) {
          const bucket = 1000 + Math.floor(i / PER_BUCKET)
          if (i % PER_BUCKET === 0) drainChunks(core, bucket)
          if (i >= LIVE) core.releaseNode(ids[i - LIVE])
          ids.push(core.node('svc', 'env', tags(`t-${i}`)))
          core.checkpoint(ids[i], 0, i, bucket, 0.1, 0.01, 100)
        }
        drainChunks(core, Infinity)
        assert.equal(core.liveNodes, LIVE)
        // ids in use: the live nodes and one bucket's releases at most; the rest were reused
        assert.ok(nodeIds(core).size <= LIVE + PER_BUCKET, `${nodeIds(core).size} ids`)
        for (const i of [90_000, 95_123, 99_999]) assert.equal(pathway(core, ids[i]), expectedHash('svc', 'env', tags(`t-${i}`), 0n))
        assert.equal(core.node('svc', 'env', tags('t-99999')), ids[99_999])

        if (backend === 'wasm') {
          // the instance restarted on that drain: as small as one that only ever saw the 10,000 live nodes
          const fresh = make()
          for (let i = 90_000; i < 100_000; i++) fresh.checkpoint(fresh.node('svc', 'env', tags(`t-${i}`)), 0, i, 1, 0.1, 0.01, 100)
          drainChunks(fresh, Infinity)
          assert.ok(wasmBytes(core) <= wasmBytes(fresh) + PAGE, `${wasmBytes(core)} bytes vs ${wasmBytes(fresh)}`)
          // and its baseline holds the node table: later drains find nothing to give back
          const x = instance(core)
          for (let bucket = 2000; bucket < 2005; bucket++) {
            core.checkpoint(ids[99_999], 0, 0, bucket, 1, 1, 1)
            drainChunks(core, Infinity)
          }
          assert.equal(instance(core), x, 'restarted again')
        }
      })

      test('a 10 MB node text, released and drained, is gone: later drains never see it again', () => {
        const core = make()
        const start = backend === 'wasm' ? wasmBytes(core) : 0
        const small = core.node('svc', 'env', tags('a'))
        const huge = core.node('svc', 'env', tags('x'.repeat(10 * 2 ** 20)))
        core.checkpoint(huge, 0, 0, 1, 1, 1, 1)
        if (backend === 'wasm') assert.ok(wasmBytes(core) > start + 10 * 2 ** 20, 'its text went through Wasm memory')
        core.releaseNode(huge)
        drainChunks(core, Infinity)
        assert.equal(core.liveNodes, 1)
        const x = backend === 'wasm' ? instance(core) : undefined
        for (let bucket = 2; bucket < 6; bucket++) {
          core.checkpoint(small, 0, 0, bucket, 1, 1, 1)
          assert.deepEqual(drainPoints(core, Infinity)[0].points[0].edgeTags, tags('a'))
          if (backend === 'wasm') {
            assert.ok(wasmBytes(core) <= start + PAGE, `${wasmBytes(core)} bytes, ${start} at the start`)
            assert.equal(instance(core), x, 'restarted again')
          }
        }
        const reused = core.node('svc', 'env', tags('b'))
        assert.equal(reused, huge)
        assert.equal(pathway(core, reused), expectedHash('svc', 'env', tags('b'), 0n))
      })
    })

    describe('aggregation', () => {
      test('checkpoints land in their bucket and stats point; drain hands out finished buckets and empties them', () => {
        const core = make()
        const a = core.node('svc', 'env', ['direction:out', 'topic:a', 'type:kafka'])
        const b = core.node('svc', 'env', ['direction:in', 'group:g', 'topic:a', 'type:kafka'])
        assert.ok(core.checkpoint(a, 0, 0, 100, 0.5, 0.25, 120))
        const h = [core.hashHi, core.hashLo]
        core.checkpoint(a, 0, 0, 100, 1.5, 0.75, 80)
        core.checkpoint(b, h[0], h[1], 100, 2, 1, 100)
        core.checkpoint(b, h[0], h[1], 101, 2, 1, 100)
        assert.equal(core.livePoints, 3)

        const drained = drainPoints(core, 101)
        assert.deepEqual(drained.map((d) => d.bucket), [100])
        assert.equal(drained[0].points.length, 2)
        const [pa, pb] = drained[0].points
        assert.deepEqual([pa.edgeTags, pa.hashHi, pa.hashLo, pa.parentHi, pa.parentLo], [['direction:out', 'topic:a', 'type:kafka'], h[0], h[1], 0, 0])
        assert.deepEqual(pb.edgeTags, ['direction:in', 'group:g', 'topic:a', 'type:kafka'])
        assert.deepEqual([pb.parentHi, pb.parentLo], h)
        assert.equal(pa.timestampType, 'current')
        const latency = decodeSketch(pa.pathwayLatency)
        assert.equal(latency.count, 2)
        assert.ok(Math.abs(latency.quantile(1) - 1.5) <= 0.015)
        assert.equal(decodeSketch(pa.payloadSize).count, 2)
        assert.equal(core.livePoints, 1)
        assert.deepEqual(drainPoints(core, 101), [])
        assert.deepEqual(drainPoints(core, Infinity).map((d) => d.bucket), [101])
        assert.equal(core.livePoints, 0)
      })

      test("a drain's msgpack is what @msgpack/msgpack writes for the same maps, in both sketch forms", () => {
        const core = make()
        const nodes = [core.node('svc', 'env', ['direction:in', 'group:g', 'topic:é', 'type:kafka']), core.node('svc', 'env', Array.from({ length: 20 }, (_, i) => `tag:${'x'.repeat(i * 20)}`))]
        const r = rng(3)
        for (const sparse of [false, true]) {
          for (let i = 0; i < 300; i++) core.checkpoint(nodes[i % 2], i * 7919, i, 100 + (i % 3), distributions.pareto(r), i % 5 === 0 ? 0 : r(), i * 1000)
          for (const chunk of drainChunks(core, Infinity, sparse, 2000)) {
            const points = [...decodeMulti(chunk.bytes, { useBigInt64: true })]
            assert.equal(points.length, chunk.ends.length)
            assert.deepEqual(Buffer.concat(points.map((p) => encode(p, { useBigInt64: true }))), Buffer.from(chunk.bytes))
          }
        }
      })

      test('a drain hands points out by bucket, in insertion order within one, whatever order the buckets came in', () => {
        const core = make()
        const node = core.node('svc', 'env', ['topic:a'])
        const order: [number, number][] = []
        for (let i = 0; i < 300; i++) {
          const bucket = [103, 100, 102, 100, 101][i % 5]
          core.checkpoint(node, 0, i, bucket, 1, 1, 1)
          order.push([bucket, core.hashLo])
        }
        const expected = [100, 101, 102, 103].map((bucket) => ({ bucket, los: order.filter(([b]) => b === bucket).map(([, lo]) => lo) }))
        assert.deepEqual(
          drainPoints(core, Infinity).map((b) => ({ bucket: b.bucket, los: b.points.map((p) => p.hashLo) })),
          expected,
        )
      })

      test('a chunk holds whole points of one bucket, as many as fit in its bound and at least one', () => {
        const core = make()
        const node = core.node('svc', 'env', ['topic:a'])
        for (let i = 0; i < 40; i++) core.checkpoint(node, 0, i, 100 + (i >> 4), 1, 1, 1)
        const pointBytes = drainChunks(core, Infinity, false, Infinity)[0].ends[0]
        for (let i = 0; i < 40; i++) core.checkpoint(node, 0, i, 100 + (i >> 4), 1, 1, 1)
        const chunks = drainChunks(core, Infinity, false, 3 * pointBytes + 1)
        assert.deepEqual(chunks.map((c) => [c.bucket, c.ends.length]), [100, 100, 100, 100, 100, 100, 101, 101, 101, 101, 101, 101, 102, 102, 102].map((b, i) => [b, [3, 3, 3, 3, 3, 1, 3, 3, 3, 3, 3, 1, 3, 3, 2][i]]))
        for (const c of chunks) assert.deepEqual(c.ends, c.ends.map((_, i) => (i + 1) * pointBytes))
        for (const c of chunks) assert.equal(c.bytes.length, c.ends[c.ends.length - 1])
        for (let i = 0; i < 5; i++) core.checkpoint(node, 0, i, 100, 1, 1, 1)
        for (const bound of [0, 1, NaN, -5]) {
          core.checkpoint(node, 0, 0, 100, 1, 1, 1)
          assert.deepEqual(drainChunks(core, Infinity, false, bound).map((c) => c.ends.length), bound === 0 ? [1, 1, 1, 1, 1] : [1])
        }
      })

      test('checkpoints made while a drain is written go into new live points, not into it', () => {
        const core = make()
        const node = core.node('svc', 'env', ['topic:a'])
        core.checkpoint(node, 0, 1, 100, 1, 1, 1)
        assert.equal(core.drainBegin(Infinity, false), 1)
        core.checkpoint(node, 0, 1, 100, 2, 2, 2)
        assert.equal(core.livePoints, 1)
        assert.equal(core.drainChunk(1024), 1)
        const [written] = decodeMulti(core.chunkBytes(), { useBigInt64: true }) as Iterable<{ PathwayLatency: Uint8Array }>
        assert.equal(decodeSketch(written.PathwayLatency).count, 1)
        assert.equal(core.drainChunk(1024), 0)
        core.drainEnd()
        const [later] = drainPoints(core, Infinity)
        assert.equal(decodeSketch(later.points[0].pathwayLatency).count, 1)
      })

      test('the cap bounds one bucket: N − 1 pathways a bucket, two buckets alive at once, over many buckets: nothing dropped', () => {
        const N = 200
        const core = make(N)
        const node = core.node('svc', 'env', ['topic:a'])
        for (let bucket = 1000; bucket < 1050; bucket++) {
          // the previous bucket is still alive while this one fills, as between two timer flushes
          for (let i = 0; i < N - 1; i++) assert.ok(core.checkpoint(node, bucket, i, bucket, 1, 1, 1))
          drainChunks(core, bucket)
        }
        assert.equal(core.droppedPoints, 0)
        assert.equal(core.livePoints, N - 1)
      })

      test('past the per-bucket cap a bucket drops new pathways while the next one fills', () => {
        const core = make(10)
        const node = core.node('svc', 'env', ['topic:a'])
        for (let i = 0; i < 12; i++) core.checkpoint(node, 0, i, 7, 1, 1, 1)
        for (let i = 0; i < 12; i++) core.checkpoint(node, 0, i, 8, 1, 1, 1)
        assert.equal(core.livePoints, 20)
        assert.equal(core.droppedPoints, 4)
        assert.deepEqual(drainPoints(core, Infinity).map((b) => [b.bucket, b.points.length]), [[7, 10], [8, 10]])
      })

      test('maxLivePoints bounds every bucket together: the memory bound', () => {
        const core = createCore({ backend, maxPoints: 10, maxLivePoints: 25 })
        const node = core.node('svc', 'env', ['topic:a'])
        for (let bucket = 0; bucket < 4; bucket++) for (let i = 0; i < 10; i++) core.checkpoint(node, 0, i, bucket, 1, 1, 1)
        assert.equal(core.livePoints, 25)
        assert.equal(core.droppedPoints, 15)
        assert.deepEqual(drainPoints(core, Infinity).map((b) => [b.bucket, b.points.length]), [[0, 10], [1, 10], [2, 5]])
        // by default, three buckets' worth
        const byDefault = make(10)
        for (let bucket = 0; bucket < 4; bucket++) for (let i = 0; i < 10; i++) byDefault.checkpoint(node, 0, i, bucket, 1, 1, 1)
        assert.equal(byDefault.livePoints, 30)
      })

      test('the live-point cap drops new pathways, counts them, and frees room after a drain', () => {
        const core = make(10)
        const node = core.node('svc', 'env', ['direction:out'])
        for (let i = 0; i < 25; i++) core.checkpoint(node, 0, i, 7, 0, 0, 1)
        assert.equal(core.livePoints, 10)
        assert.equal(core.droppedPoints, 15)
        assert.ok(core.checkpoint(node, 0, 3, 7, 0, 0, 1), 'an existing point still records')
        assert.ok(!core.checkpoint(node, 0, 99, 7, 0, 0, 1))
        core.pathwayHash(node, 0, 99)
        const expected = [core.hashHi, core.hashLo]
        core.checkpoint(node, 0, 99, 7, 0, 0, 1)
        assert.deepEqual([core.hashHi, core.hashLo], expected, 'a dropped checkpoint still gets its hash')
        assert.equal(drainPoints(core, 8)[0].points.length, 10)
        assert.ok(core.checkpoint(node, 0, 99, 8, 0, 0, 1))
      })

      test('the batch entry point records like single checkpoints and writes back hashes', () => {
        const single = make()
        const batched = make()
        const nodes = [0, 1, 2].map((i) => single.node('svc', 'env', [`topic:t${i}`]))
        for (let i = 0; i < 3; i++) assert.equal(batched.node('svc', 'env', [`topic:t${i}`]), nodes[i])
        const r = rng(5)
        const buf = batched.batchBuffer()
        const n = 500
        const expected: number[][] = []
        for (let i = 0; i < n; i++) {
          const rec = [nodes[i % 3], i % 7, Math.floor(r() * 2 ** 32), r() * 10, r(), Math.floor(r() * 1000)]
          single.checkpoint(rec[0], rec[1], rec[2], 42, rec[3], rec[4], rec[5])
          expected.push([single.hashHi, single.hashLo])
          const o = i * BATCH_STRIDE
          buf[o + BATCH_NODE] = rec[0]
          buf[o + BATCH_PARENT_HI] = rec[1]
          buf[o + BATCH_PARENT_LO] = rec[2]
          buf[o + BATCH_PATHWAY_LATENCY] = rec[3]
          buf[o + BATCH_EDGE_LATENCY] = rec[4]
          buf[o + BATCH_PAYLOAD] = rec[5]
        }
        assert.equal(batched.checkpointBatch(n, 42), n)
        const out = batched.batchBuffer()
        for (let i = 0; i < n; i++) assert.deepEqual([out[i * BATCH_STRIDE + BATCH_OUT_HI], out[i * BATCH_STRIDE + BATCH_OUT_LO]], expected[i])
        assert.deepEqual(drainChunks(batched, Infinity), drainChunks(single, Infinity))
      })

      test('several cores live side by side without sharing state', () => {
        const one = make()
        const two = make()
        one.checkpoint(one.node('a', 'e', []), 0, 0, 1, 0, 0, 0)
        assert.equal(two.livePoints, 0)
        assert.equal(one.livePoints, 1)
      })
    })
  })
}
