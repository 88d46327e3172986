/**
 * `setCheckpointBatch` against a loop of `setCheckpoint` on both cores: the same contexts (hashes,
 * pathway starts, loop detection), the same stats points, across the core's 1,024-record chunks.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { decode } from '@msgpack/msgpack'
import { nowMs } from '../bindings/common/clock.js'
import { PathwayContext, decodePathwayContext, encodePathwayContext } from '../bindings/pathway/context.js'
import type { DataStreams } from '../bindings/api/data-streams.js'
import { createDataStreamsFor } from '../bindings/processor/create.js'
import type { Transport } from '../bindings/export/exporter.js'
import { nodeTransport } from '../bindings/export/node-transport.js'
import { nodePlatform } from '../bindings/node/platform.js'
import { decodeSketch } from './helpers/sketches.js'

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

function pointsOf(sent: Uint8Array[]): Map<string, Point> {
  const out = new Map<string, Point>()
  for (const body of sent) {
    const payload = decode(body, { useBigInt64: true }) as { Stats: { Stats: Point[] }[] }
    for (const bucket of payload.Stats) for (const p of bucket.Stats) out.set(`${p.Hash}/${p.ParentHash}/${p.EdgeTags.join(',')}`, p)
  }
  return out
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
        assert.deepEqual(q.PayloadSize, p.PayloadSize, key)
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

test('setCheckpointBatch with DSM disabled: one null per message', () => {
  const { dsm } = capturing('ts', false)
  assert.deepEqual(dsm.setCheckpointBatch(['direction:in'], [null, null, null]), [null, null, null])
})
