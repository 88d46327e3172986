/**
 * `setCheckpointBatch` against a loop of `setCheckpoint` on both cores: the same contexts (hashes,
 * pathway starts, loop detection), the same stats points, across the core's 1,024-record chunks.
 * The transports' one pass (`checkpointHeaders`: header values decoded into the core's batch
 * buffer, contexts made when asked) against `setCheckpointBatch` of the decoded parents.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { decode } from '@msgpack/msgpack'
import { nowMs } from '../bindings/common/clock.js'
import { PathwayContext, decodePathwayContext, encodePathwayContext } from '../bindings/pathway/context.js'
import { checkpointHeaders } from '../bindings/instrument/batch-checkpoints.js'
import type { DataStreams } from '../bindings/api/data-streams.js'
import { createDataStreamsFor } from '../bindings/processor/create.js'
import type { Transport } from '../bindings/export/exporter.js'
import { nodeTransport } from '../bindings/export/node-transport.js'
import { nodePlatform } from '../bindings/node/platform.js'
import { decodeSketch, mergeSketches } from './helpers/sketches.js'

interface Point {
  EdgeTags: string[]
  Hash: bigint
  ParentHash: bigint
  PathwayLatency: Uint8Array
  PayloadSize: Uint8Array
}

/** A processor whose payloads (msgpack, left uncompressed) land in `sent`. */
function capturing(core: 'wasm' | 'ts', enabled = true): { dsm: DataStreams; sent: Uint8Array[] } {
  const sent: Uint8Array[] = []
  const transport: Transport = {
    ...nodeTransport,
    post: (_url, _headers, body) => {
      sent.push(body)
      return Promise.resolve(200)
    },
    getJson: () => Promise.resolve(undefined),
    gzip: (data) => Promise.resolve(data),
  }
  const options = { enabled, service: 'batch', env: 'test', core, flushIntervalMs: 0 }
  const dsm = createDataStreamsFor(options, { ...nodePlatform(), transport, onExit: undefined })
  return { dsm, sent }
}

/**
 * The stats points sent, by pathway, parent and edge tags, each pathway's buckets merged (two
 * runs compared may fall on either side of a 10 s bucket's end).
 */
function pointsOf(sent: Uint8Array[]): Map<string, Point> {
  const out = new Map<string, Point>()
  for (const body of sent) {
    const payload = decode(body, { useBigInt64: true }) as { Stats: { Stats: Point[] }[] }
    for (const bucket of payload.Stats) {
      for (const p of bucket.Stats) {
        const key = `${p.Hash}/${p.ParentHash}/${p.EdgeTags.join(',')}`
        const seen = out.get(key)
        out.set(key, seen === undefined ? p : { ...p, PathwayLatency: mergeSketches([seen.PathwayLatency, p.PathwayLatency]), PayloadSize: mergeSketches([seen.PayloadSize, p.PayloadSize]) })
      }
    }
  }
  return out
}

/** The same payload sizes: count and spread (bytes differ once buckets were merged). */
function assertSameSizes(a: Uint8Array, b: Uint8Array, key: string): void {
  const [x, y] = [decodeSketch(a), decodeSketch(b)]
  assert.deepEqual([x.count, x.quantile(0), x.quantile(0.5), x.quantile(1)], [y.count, y.quantile(0), y.quantile(0.5), y.quantile(1)], key)
}

/**
 * Parents of every kind, by i mod 5: none, read from a header, after a produce, after a consume
 * (loop detection hangs a consume off the produce before it), and after a consume that started
 * a pathway (loop detection restarts the pathway).
 */
function parents(count: number): (PathwayContext | null)[] {
  const { dsm } = capturing('ts')
  const now = Date.now()
  const out = dsm.node(['direction:out', 'topic:up', 'type:kafka'])!
  const into = dsm.node(['direction:in', 'group:g0', 'topic:up', 'type:kafka'])!
  const produced = dsm.setCheckpoint(out, null, 10)!
  const consumed = dsm.setCheckpoint(into, produced, 10)!
  const restarted = dsm.setCheckpoint(into, null, 10)! // direction in, no opposite hash
  return Array.from({ length: count }, (_, i) => {
    switch (i % 5) {
      case 0:
        return null
      case 1:
        // through the codec, as a consumer gets it
        return decodePathwayContext(encodePathwayContext(new PathwayContext(0x01020304 + (i % 7), 0xa0b0c0d0, now - 4_000 - i, now - 30)))
      case 2:
        return produced
      case 3:
        return consumed
      default:
        return restarted
    }
  })
}

for (const core of ['wasm', 'ts'] as const) {
  describe(`setCheckpointBatch (${core} core)`, () => {
    test('gives the contexts and stats points of a loop of setCheckpoint, over several chunks', async () => {
      const one = capturing(core)
      const many = capturing(core)
      const count = 2_500
      const sizes = Float64Array.from({ length: count }, (_, i) => 100 + (i % 13))
      const tags = ['direction:in', 'group:g', 'topic:orders', 'type:kafka']

      const from = parents(count)
      const expected = from.map((p, i) => one.dsm.setCheckpoint(tags, p, sizes[i])!)
      const before = nowMs()
      const got = many.dsm.setCheckpointBatch(many.dsm.node(tags)!, from, sizes)
      const after = nowMs()

      assert.equal(got.length, count)
      const edgeStart = got[0]!.edgeStartMs
      assert.ok(edgeStart >= before && edgeStart <= after, 'the batch is checkpointed at the time of the call')
      for (let i = 0; i < count; i++) {
        const [e, g] = [expected[i], got[i]!]
        assert.equal(g.edgeStartMs, edgeStart, `message ${i}: one time for the whole batch`)
        assert.deepEqual(
          [g.hashHi, g.hashLo, g.direction, g.oppositeHashHi, g.oppositeHashLo],
          [e.hashHi, e.hashLo, e.direction, e.oppositeHashHi, e.oppositeHashLo],
          `message ${i}`,
        )
        // a new pathway starts at the checkpoint's own time; otherwise at the parent's start
        if (i % 5 === 0 || i % 5 === 4) assert.equal(g.pathwayStartMs, edgeStart)
        else assert.equal(g.pathwayStartMs, e.pathwayStartMs, `message ${i}`)
      }

      await Promise.all([one.dsm.flush(), many.dsm.flush()])
      const [a, b] = [pointsOf(one.sent), pointsOf(many.sent)]
      assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort())
      for (const [key, p] of a) {
        const q = b.get(key)!
        assert.equal(decodeSketch(q.PathwayLatency).count, decodeSketch(p.PathwayLatency).count, key)
        assertSameSizes(q.PayloadSize, p.PayloadSize, key)
      }
    })

    test('runs of one parent object give what a loop of setCheckpoint gives, refused parents each counted', () => {
      const one = capturing(core)
      const many = capturing(core)
      const tags = ['direction:out', 'group:g', 'topic:runs', 'type:kafka']
      const [p, q, consumed] = parents(4).slice(1)
      const refused = { hashHi: 1, hashLo: 2, pathwayStartMs: Number.NaN, edgeStartMs: 0, direction: 0, oppositeHashHi: 0, oppositeHashLo: 0, oppositeEdgeStartMs: 0 }
      const from = [p, p, p, q, q, p, null, null, p, consumed, consumed, refused, refused, consumed] as (PathwayContext | null)[]
      const expected = from.map((parent) => one.dsm.setCheckpoint(tags, parent, 10)!)
      const got = many.dsm.setCheckpointBatch(many.dsm.node(tags)!, from, from.map(() => 10))
      for (let i = 0; i < from.length; i++) {
        const [e, g] = [expected[i], got[i]!]
        assert.deepEqual(
          [g.hashHi, g.hashLo, g.direction, g.oppositeHashHi, g.oppositeHashLo],
          [e.hashHi, e.hashLo, e.direction, e.oppositeHashHi, e.oppositeHashLo],
          `message ${i}`,
        )
        // times taken from the parent (the others are each call's own clock reading)
        if (from[i] === p || from[i] === consumed) {
          assert.deepEqual([g.pathwayStartMs, g.oppositeEdgeStartMs], [e.pathwayStartMs, e.oppositeEdgeStartMs], `message ${i}`)
        }
      }
      assert.equal(many.dsm.stats.invalidInputs, 2)
      assert.equal(many.dsm.stats.invalidInputs, one.dsm.stats.invalidInputs)
    })

    test('accepts edge tags as well as a node, and no sizes', () => {
      const { dsm } = capturing(core)
      const got = dsm.setCheckpointBatch(['direction:out', 'topic:t', 'type:kafka'], [null, null])
      assert.equal(got.length, 2)
      assert.ok(got.every((c) => c !== null && c.hashHi === got[0]!.hashHi && c.hashLo === got[0]!.hashLo))
      assert.equal(dsm.stats.livePoints, 1)
    })
  })
}

/**
 * What a fetched batch's messages carry, of every kind, by i mod 9: a header value as bytes (runs
 * of one Buffer object, and of equal bytes in other Buffers), as text, malformed values, a parent
 * context read elsewhere (after a produce, after a consume: loop detection), a refused one, none.
 */
function headerValues(count: number): unknown[] {
  const now = Date.now()
  const [, , produced, consumed] = parents(4)
  const refused = { hashHi: 1, hashLo: 2, pathwayStartMs: Number.NaN, edgeStartMs: 0, direction: 0, oppositeHashHi: 0, oppositeHashLo: 0, oppositeEdgeStartMs: 0 }
  const text = (i: number) => encodePathwayContext(new PathwayContext(0x01020304 + (i % 3), 0xa0b0c0d0, now - 4_000 - (i >> 4), now - 30 - (i % 2)))
  const shared = Buffer.from(text(0))
  return Array.from({ length: count }, (_, i) => {
    switch (i % 9) {
      case 0:
        return shared
      case 1:
      case 2:
        return Buffer.from(text(i >> 2)) // runs of equal bytes in distinct Buffers
      case 3:
        return text(i)
      case 4:
        return i % 2 === 0 ? Buffer.from('not a context') : 'AAAA'
      case 5:
        return produced
      case 6:
        return i % 2 === 0 ? consumed : refused
      case 7:
        return Buffer.from(encodePathwayContext(new PathwayContext(5, 6, 1_000_000_000_000 + i, 1_000_000_000_000 + i))) // a varint of another length: the general decoder
      default:
        return i % 2 === 0 ? null : undefined
    }
  })
}

const asParent = (v: unknown) => (typeof v === 'string' || v instanceof Uint8Array ? decodePathwayContext(v) : ((v ?? null) as PathwayContext | null))

for (const core of ['wasm', 'ts'] as const) {
  describe(`checkpointHeaders (${core} core)`, () => {
    test('gives, context by context when asked, what setCheckpointBatch gives of the decoded parents, and the same stats points', async () => {
      const eager = capturing(core)
      const lazy = capturing(core)
      const count = 2_500
      const tags = ['direction:in', 'group:g', 'topic:orders', 'type:kafka']
      const values = headerValues(count)
      const sizes = Float64Array.from({ length: count }, (_, i) => 100 + (i % 13))
      const expected = eager.dsm.setCheckpointBatch(eager.dsm.node(tags)!, values.map(asParent), sizes)
      const before = nowMs()
      const got = checkpointHeaders(lazy.dsm, lazy.dsm.node(tags)!, values, sizes)
      const after = nowMs()

      assert.equal(got.length, count)
      const edgeStart = got.get(0)!.edgeStartMs
      assert.ok(edgeStart >= before && edgeStart <= after, 'the batch is checkpointed at the time of the call')
      // asked out of order, twice: the same answer
      const order = Array.from({ length: count }, (_, i) => (i * 7919) % count)
      for (const i of [...order, ...order]) {
        const [e, g] = [expected[i]!, got.get(i)!]
        assert.ok(g instanceof PathwayContext, `message ${i}`)
        assert.equal(g.edgeStartMs, edgeStart, `message ${i}: one time for the whole batch`)
        assert.deepEqual(
          [g.hashHi, g.hashLo, g.direction, g.oppositeHashHi, g.oppositeHashLo],
          [e.hashHi, e.hashLo, e.direction, e.oppositeHashHi, e.oppositeHashLo],
          `message ${i}`,
        )
        const fresh = e.pathwayStartMs === e.edgeStartMs // a new pathway starts at its checkpoint's own time
        if (fresh) assert.equal(g.pathwayStartMs, edgeStart, `message ${i}`)
        else assert.deepEqual([g.pathwayStartMs, g.oppositeEdgeStartMs], [e.pathwayStartMs, e.oppositeEdgeStartMs], `message ${i}`)
      }
      // Equal contexts next to each other are one object; others are not.
      for (let i = 1; i < count; i++) {
        const [a, b] = [got.get(i - 1)!, got.get(i)!]
        const equal = a.hashHi === b.hashHi && a.hashLo === b.hashLo && a.pathwayStartMs === b.pathwayStartMs && a.oppositeHashHi === b.oppositeHashHi && a.oppositeHashLo === b.oppositeHashLo && a.oppositeEdgeStartMs === b.oppositeEdgeStartMs
        assert.equal(a === b, equal, `messages ${i - 1} and ${i}`)
      }
      for (const outside of [-1, count, 1.5e9, Number.NaN]) assert.equal(got.get(outside), null)
      assert.equal(lazy.dsm.stats.invalidInputs, eager.dsm.stats.invalidInputs)
      assert.ok(lazy.dsm.stats.invalidInputs > 0, 'refused parents are counted')

      await Promise.all([eager.dsm.flush(), lazy.dsm.flush()])
      const [a, b] = [pointsOf(eager.sent), pointsOf(lazy.sent)]
      assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort())
      for (const [key, p] of a) {
        const q = b.get(key)!
        assert.equal(decodeSketch(q.PathwayLatency).count, decodeSketch(p.PathwayLatency).count, key)
        assertSameSizes(q.PayloadSize, p.PayloadSize, key)
      }
    })

    test('a DataStreams of another copy of pathwise (or any other) gets setCheckpointBatch, with the same contexts', () => {
      const own = capturing(core)
      const other = capturing(core)
      const tags = ['direction:in', 'group:g', 'topic:other', 'type:kafka']
      const values = headerValues(100)
      const viaOwn = checkpointHeaders(own.dsm, own.dsm.node(tags)!, values, values.map(() => 10))
      const viaOther = checkpointHeaders(delegate(other.dsm), other.dsm.node(tags)!, values, values.map(() => 10))
      for (let i = 0; i < values.length; i++) assert.deepEqual([viaOther.get(i)?.hashHi, viaOther.get(i)?.hashLo], [viaOwn.get(i)?.hashHi, viaOwn.get(i)?.hashLo], `message ${i}`)
      assert.equal(other.dsm.stats.livePoints, own.dsm.stats.livePoints)
    })
  })
}

/** A DataStreams that is not a processor of this copy: every method hands on to `dsm`. */
function delegate(dsm: DataStreams): DataStreams {
  return {
    enabled: true,
    service: dsm.service,
    env: dsm.env,
    backend: dsm.backend,
    setCheckpointBatch: (...args) => dsm.setCheckpointBatch(...args),
  } as DataStreams
}

test('setCheckpointBatch with DSM disabled: one null per message', () => {
  const { dsm } = capturing('ts', false)
  assert.deepEqual(dsm.setCheckpointBatch(['direction:in'], [null, null, null]), [null, null, null])
})
