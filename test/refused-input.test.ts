/**
 * The validation layer and the time window, on both cores and on the edge build: each reproduction
 * of issue 11 (a hang, absurd latencies, one bad value costing a whole flush, unbounded nodes) as
 * a check, and every flush decoded by the agent's own intake and by Datadog's sketches-js.
 * (That no call throws or hangs whatever it is handed: hostile-input.test.ts, property-based.)
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { DEFAULT_LIMITS } from '../agent/src/intake/body.js'
import { decodePipelineStats } from '../agent/src/intake/decode.js'
import { createDataStreams as createEdge } from '../bindings/edge.js'
import {
  PATHWAY_KEY,
  PathwayContext,
  createDataStreams,
  decodePathwayContext,
  encodePathwayContext,
  extractPathwayContext,
  type DataStreams,
} from '../bindings/index.js'
import { MAX_AHEAD_MS, MIN_TIME_MS } from '../bindings/pathway/time-window.js'
import { startAgent, type DecodedPoint, type TestAgent } from './helpers/agent-server.js'
import { decodeSketch } from './helpers/sketches.js'

const builds = [
  { name: 'wasm core', make: (o: object) => createDataStreams({ ...o, core: 'wasm' }) },
  { name: 'ts core', make: (o: object) => createDataStreams({ ...o, core: 'ts' }) },
  { name: 'edge build', make: (o: object) => createEdge(o) },
]

describe('the context codec on values it cannot encode', () => {
  test('encoding never hangs: non-finite, negative or out-of-window times give the empty string', () => {
    const now = Date.now()
    for (const [p, e] of [
      [now, Infinity],
      [Infinity, Infinity],
      [-Infinity, now],
      [NaN, now],
      [now, NaN],
      [0, 1],
      [1, now],
      [now + MAX_AHEAD_MS + 60_000, now],
      [-5, now],
      [Number.MAX_VALUE, now],
    ]) {
      assert.equal(encodePathwayContext(new PathwayContext(1, 2, p, e)), '', `times ${p}, ${e}`)
    }
    assert.equal(encodePathwayContext(new PathwayContext(2 ** 32, 2, now, now)), '')
    assert.equal(encodePathwayContext(new PathwayContext(-1, 2, now, now)), '')
    assert.equal(encodePathwayContext(new PathwayContext(1.5, 2, now, now)), '')
    assert.equal(encodePathwayContext({} as PathwayContext), '')
    assert.equal(encodePathwayContext(null as unknown as PathwayContext), '')
  })

  test('what is encoded decodes to the times recorded, and a lookalike from another copy of pathwise is accepted', () => {
    const now = Date.now()
    const lookalike = { hashHi: 7, hashLo: 9, pathwayStartMs: now - 3000, edgeStartMs: now - 1000, direction: 0, oppositeHashHi: 0, oppositeHashLo: 0, oppositeEdgeStartMs: now - 1000 }
    const decoded = decodePathwayContext(encodePathwayContext(lookalike as PathwayContext))
    assert.ok(decoded)
    assert.deepEqual([decoded.hashHi, decoded.hashLo, decoded.pathwayStartMs, decoded.edgeStartMs], [7, 9, now - 3000, now - 1000])
  })

  test('decoding a context whose times are before 2000 or far in the future gives null', () => {
    const bytes = (start: number) => {
      // the codec refuses to write such times, so the header is built by hand: le64 hash, then zigzag varints
      const out = [1, 0, 0, 0, 0, 0, 0, 0]
      for (const t of [start, start]) {
        let z = t * 2
        while (z >= 0x80) {
          out.push((z % 0x80) | 0x80)
          z = Math.floor(z / 0x80)
        }
        out.push(z)
      }
      return Buffer.from(out).toString('base64')
    }
    assert.ok(decodePathwayContext(bytes(Date.now())))
    for (const start of [0, 1, MIN_TIME_MS - 1, Date.now() + MAX_AHEAD_MS + 60_000]) {
      assert.equal(decodePathwayContext(bytes(start)), null, `start ${start}`)
      assert.equal(extractPathwayContext({ [PATHWAY_KEY]: bytes(start) }), null)
    }
  })

  test('decoding and extracting never throw, whatever is handed over', () => {
    const revoked = Proxy.revocable({}, {})
    revoked.revoke()
    const throwing = new Proxy({}, { get: () => { throw new Error('trap') }, getPrototypeOf: () => { throw new Error('trap') } })
    const getter = Object.defineProperty({}, PATHWAY_KEY, { get: () => { throw new Error('getter') } })
    for (const value of [revoked.proxy, throwing, getter, Symbol('x'), 10n, { toString: () => { throw new Error() } }]) {
      assert.equal(decodePathwayContext(value), null)
      assert.equal(extractPathwayContext(value), null)
    }
  })
})

for (const build of builds) {
  describe(`the validation layer (${build.name})`, () => {
    let agent: TestAgent
    const open: DataStreams[] = []
    const make = (service: string, extra: object = {}) => {
      const dsm = build.make({ enabled: true, service, env: 'test', agentUrl: agent.url, flushIntervalMs: 0, ...extra })
      open.push(dsm)
      return dsm
    }
    /** The service's points, after checking that the agent's own intake takes every payload and sketches-js decodes every sketch. */
    const flushed = async (dsm: DataStreams): Promise<DecodedPoint[]> => {
      const before = agent.requests.length
      await dsm.flush()
      await agent.waitFor((_, requests) => requests.length > before)
      const out: DecodedPoint[] = []
      for (const request of agent.requests.slice(before)) await decodePipelineStats(request.body, DEFAULT_LIMITS)
      for (const payload of agent.payloads.filter((p) => p.Service === dsm.service)) {
        for (const point of payload.Stats.flatMap((b) => b.Stats)) {
          for (const sketch of [point.PathwayLatency, point.EdgeLatency, point.PayloadSize]) {
            const decoded = decodeSketch(sketch)
            assert.ok(Number.isFinite(decoded.quantile(0.99)) || decoded.count === 0)
          }
          out.push(point)
        }
      }
      agent.payloads.splice(0)
      return out
    }

    before(async () => {
      agent = await startAgent()
    })
    after(async () => {
      await Promise.all(open.map((d) => d.shutdown()))
      await agent.close()
    })

    test('a parent with infinite times does not hang the produce that follows: it starts a new pathway', async () => {
      const dsm = make('hang-svc')
      const first = dsm.setCheckpoint(['direction:in', 'topic:a', 'type:kafka'], null, 0, { pathwayStartMs: Infinity, edgeStartMs: Infinity })
      assert.ok(first, 'the checkpoint is recorded, as a new pathway')
      const carrier: Record<string, unknown> = {}
      const before = Date.now()
      const ctx = dsm.setProduceCheckpoint('kafka', 't', carrier, { parent: first })
      assert.ok(ctx)
      const decoded = decodePathwayContext(carrier[PATHWAY_KEY])
      assert.ok(decoded && decoded.pathwayStartMs >= before - 1000 && decoded.pathwayStartMs <= Date.now(), "a new pathway, started just now")
      const points = await flushed(dsm)
      for (const p of points) assert.ok(decodeSketch(p.PathwayLatency).quantile(1) < 1, 'no latency from the bogus times')
      assert.ok(dsm.stats.invalidInputs >= 1)
    })

    test('a 1970 or NaN pathway start, or a parent that is not a context, counts as absent', async () => {
      const dsm = make('epoch-svc')
      const invalidBefore = dsm.stats.invalidInputs
      const parents = [new PathwayContext(1, 2, 0, 0), new PathwayContext(1, 2, 1, Date.now()), new PathwayContext(1, 2, NaN, Date.now()), {}, 'ctx', 42]
      for (const parent of parents) {
        const carrier: Record<string, unknown> = {}
        const ctx = dsm.setProduceCheckpoint('kafka', 'epoch', carrier, { parent: parent as PathwayContext })
        assert.ok(ctx)
        assert.ok(ctx.pathwayStartMs > Date.now() - 60_000, 'a new pathway starts now')
        assert.ok(decodePathwayContext(carrier[PATHWAY_KEY])!.pathwayStartMs > Date.now() - 60_000)
      }
      assert.equal(dsm.stats.invalidInputs - invalidBefore, parents.length)
      const points = await flushed(dsm)
      assert.ok(points.length > 0)
      for (const p of points) {
        assert.equal(p.ParentHash, 0n)
        assert.ok(decodeSketch(p.PathwayLatency).quantile(1) < 1)
      }
    })

    test('a consume whose carrier holds a context from 1970 starts a new pathway', async () => {
      const dsm = make('consume-epoch-svc')
      const old = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 2, 2]).toString('base64') // times 1 ms and 1 ms
      const ctx = dsm.setConsumeCheckpoint('kafka', 'orders', { [PATHWAY_KEY]: old })
      assert.ok(ctx)
      const [point] = await flushed(dsm)
      assert.equal(point.ParentHash, 0n)
      assert.ok(decodeSketch(point.PathwayLatency).quantile(1) < 1)
    })

    test('one infinite payload size or one bad edge tag among 100 good checkpoints costs only itself', async () => {
      const dsm = make('mixed-svc')
      for (let i = 0; i < 100; i++) dsm.setCheckpoint(['direction:out', `topic:good-${i}`, 'type:kafka'], null, 100)
      assert.ok(dsm.setCheckpoint(['direction:out', 'topic:inf', 'type:kafka'], null, Infinity), 'recorded with size 0')
      for (const size of [NaN, -1, 2 ** 60, '12' as unknown as number]) dsm.setCheckpoint(['direction:out', 'topic:inf', 'type:kafka'], null, size)
      for (const bad of [['direction:out', 5], ['topic:x', null], 'direction:out', { length: 2 ** 32 - 1 }, new Array(65).fill('a:b'), ['topic:' + 'x'.repeat(2000)]]) {
        assert.equal(dsm.setCheckpoint(bad as string[], null, 1), null)
        assert.equal(dsm.node(bad as string[]), null)
      }
      assert.equal(dsm.stats.invalidInputs, 5 + 12)
      const points = await flushed(dsm)
      assert.equal(points.length, 101)
      const inf = points.find((p) => p.EdgeTags.includes('topic:inf'))!
      assert.equal(decodeSketch(inf.PayloadSize).count, 5)
      assert.equal(decodeSketch(inf.PayloadSize).zeroCount, 5)
      for (const p of points) assert.ok(p.EdgeTags.every((t) => typeof t === 'string'))
    })

    test('timing overrides within the window are kept; outside it they start a new pathway', async () => {
      const dsm = make('timing-svc')
      const now = Date.now()
      const kept = dsm.setCheckpoint(['direction:in', 'topic:k', 'type:kinesis'], null, 0, { pathwayStartMs: now - 4000, edgeStartMs: now - 2000 })
      assert.equal(kept?.pathwayStartMs, now - 4000)
      for (const bad of [{ pathwayStartMs: 5 }, { edgeStartMs: NaN }, { edgeStartMs: now + 2 * MAX_AHEAD_MS }, { pathwayStartMs: '1' }]) {
        const ctx = dsm.setCheckpoint(['direction:in', 'topic:k', 'type:kinesis'], null, 0, bad as object)
        assert.ok(ctx && ctx.pathwayStartMs >= now - 1000, 'a new pathway starts now')
      }
      const throwing = Object.defineProperty({}, 'pathwayStartMs', { get: () => { throw new Error('getter') }, enumerable: true })
      assert.ok(dsm.setCheckpoint(['direction:in', 'topic:k', 'type:kinesis'], null, 0, throwing))
      const [point] = await flushed(dsm)
      const edge = decodeSketch(point.EdgeLatency)
      assert.equal(edge.count, 6)
      assert.ok(edge.quantile(1) > 1.5 && edge.quantile(1) < 10, 'the kept override measured its 2 s')
    })

    test('a node of another DataStreams, or a forged one, is refused', () => {
      const dsm = make('forge-svc')
      const other = make('other-svc')
      const node = other.node(['direction:out', 'topic:x'])
      assert.ok(node)
      assert.equal(dsm.setCheckpoint(node, null), null)
      assert.equal(dsm.setCheckpoint({ id: 0, direction: 2, edgeTags: ['topic:x'] } as never, null), null)
      assert.equal(dsm.setCheckpointBatch({ id: 0 } as never, [null, null]).length, 2)
    })

    test('the manual API refuses non-string types and topics, unreadable options and carriers', () => {
      const dsm = make('manual-svc')
      const revoked = Proxy.revocable({}, {})
      revoked.revoke()
      const throwing = new Proxy({}, { get: () => { throw new Error('trap') }, set: () => { throw new Error('trap') } })
      for (const name of [Symbol('t'), Object.create(null), { toString: () => { throw new Error() } }, throwing, 5, 'x'.repeat(5000)]) {
        assert.equal(dsm.setProduceCheckpoint(name as string, 'ok', {}), null)
        assert.equal(dsm.setConsumeCheckpoint('kafka', name as string, {}), null)
      }
      for (const carrier of [revoked.proxy, throwing, Object.freeze({})]) {
        assert.doesNotThrow(() => dsm.setProduceCheckpoint('kafka', 'ok', carrier))
        assert.doesNotThrow(() => dsm.setConsumeCheckpoint('kafka', 'ok', carrier))
      }
      const options = Object.defineProperty({}, 'parent', { get: () => { throw new Error('getter') } })
      assert.ok(dsm.setProduceCheckpoint('kafka', 'ok', {}, options))
      assert.ok(dsm.setConsumeCheckpoint('kafka', 'ok', {}, revoked.proxy))
      assert.equal(dsm.runWithContext({} as PathwayContext, () => 7), 7)
      assert.equal(dsm.runWithContext(null, 'nope' as never), undefined)
      assert.deepEqual(dsm.setCheckpointBatch(['direction:in'], { length: 2 ** 32 - 1 } as never), [])
      for (const offset of [NaN, -1, 'abc', Symbol('o'), {}, 2n ** 70n]) dsm.trackKafkaProduce('t', 0, offset as number)
      for (const partition of [NaN, -1, 1.5, '0']) dsm.trackKafkaCommit('g', 't', partition as number, 5)
      dsm.trackKafkaProduce(throwing as string, 0, 1)
      assert.ok(dsm.stats.invalidInputs > 20)
    })

    test('the node cache is bounded: past maxNodes it starts over, counted, and every point keeps its own tags', async () => {
      const dsm = make('nodes-svc', { maxNodes: 50 })
      const held = dsm.node(['direction:out', 'topic:held', 'type:kafka'])!
      for (let i = 0; i < 500; i++) dsm.setProduceCheckpoint('kafka', `topic-${i}`, {})
      assert.ok(dsm.stats.evictedNodes >= 450)
      assert.ok(dsm.setCheckpoint(held, null), 'a node held by the caller is prepared again')
      const points = await flushed(dsm)
      assert.equal(points.length, 501)
      const topics = new Set(points.map((p) => p.EdgeTags.find((t) => t.startsWith('topic:'))))
      assert.equal(topics.size, 501)
      // after the flush the ids are reused: new nodes still export their own tags
      for (let i = 0; i < 120; i++) dsm.setProduceCheckpoint('kafka', `again-${i}`, {})
      const again = await flushed(dsm)
      assert.deepEqual(new Set(again.map((p) => p.EdgeTags.find((t) => t.startsWith('topic:')))), new Set(Array.from({ length: 120 }, (_, i) => `topic:again-${i}`)))
    })
  })
}

describe('creating a DataStreams from hostile options', () => {
  test('unreadable or wrongly typed options fall back to the defaults', async () => {
    const revoked = Proxy.revocable({}, {})
    revoked.revoke()
    const throwing = new Proxy({}, { get: () => { throw new Error('trap') }, ownKeys: () => { throw new Error('trap') } })
    const getters = Object.defineProperty({ enabled: true }, 'service', { get: () => { throw new Error('getter') } })
    for (const options of [revoked.proxy, throwing, getters, { enabled: true, flushIntervalMs: Infinity, timeoutMs: -1, maxPoints: NaN, agentUrl: 'not a url', tags: 5, core: 'gpu' }]) {
      for (const make of [createDataStreams, createEdge]) {
        const dsm = make(options as never)
        assert.equal(typeof dsm.service, 'string')
        await dsm.shutdown()
      }
    }
    const vars = new Proxy({}, { get: () => { throw new Error('trap') } })
    const edge = createEdge({ enabled: true, vars } as never)
    assert.equal(edge.service, 'unnamed-javascript-service')
    await edge.shutdown()
  })
})
