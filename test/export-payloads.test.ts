/**
 * A flush's payloads (issue 21): built from the core's own msgpack within a size bound, of whole
 * points, every point and every bucket's backlogs and transaction records once; cut in two and
 * resent when an Agent answers 413 (against a real pathwise agent with a small --max-body); the
 * sketches' sparse form only where the Agent's /info says it reads it, the same quantiles with each
 * destination's reader; the point cap's drops warned once and shown by the pathwise agent; and
 * what the exit would send, taken synchronously in the middle of a flush, missing nothing.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { DDSketch } from '@datadog/sketches-js'
import { decode } from '@msgpack/msgpack'
import fc from 'fast-check'
import type { Summary } from '../agent/src/views/api.js'
import { killAgentProcesses, startAgentProcess, waitFor, type AgentProcess } from '../agent/test/helpers/agent-process.js'
import { PathwayContext } from '../bindings/pathway/context.js'
import { createCore } from '../bindings/processor/create-core.js'
import type { Backend } from '../bindings/core/types.js'
import type { DataStreams } from '../bindings/api/data-streams.js'
import { createDataStreamsFor } from '../bindings/processor/create.js'
import { SPARSE_SKETCHES_FIELD } from '../bindings/export/agent-info.js'
import { MAX_PAYLOAD_BYTES, PAUSE, flushPayloads } from '../bindings/export/flush.js'
import { DROPPED_POINTS_FIELD, encodePayload, splitPayload, type BucketExtras, type ExportPoint, type Payload, type PayloadMeta } from '../bindings/export/payload.js'
import { AgentExporter, type Transport } from '../bindings/export/exporter.js'
import { nodeTransport } from '../bindings/export/node-transport.js'
import { nodePlatform } from '../bindings/node/platform.js'
import { startAgent, type DecodedBucket, type DecodedPayload, type TestAgent } from './helpers/agent-server.js'
import { startRecordingProxy } from './helpers/recording-proxy.js'
import { startScriptedAgent } from './helpers/scripted-agent.js'
import { agentDecodeSketch, hasBinCounts } from './helpers/sketches.js'

const META: PayloadMeta = { env: 'test', service: 'flusher', version: '1', tracerVersion: '0.0.0-test' }
const BACKENDS: Backend[] = ['wasm', 'ts']

/** A payload as the test Agent decodes it, and what it holds beyond that: transaction records, the dropped count. */
type WireBucket = DecodedBucket & { Transactions?: Uint8Array }
type WirePayload = Omit<DecodedPayload, 'Stats'> & { Stats: WireBucket[]; [field: string]: unknown }

const read = (bytes: Uint8Array) => decode(bytes, { useBigInt64: true }) as WirePayload
const bucketOf = (b: WireBucket) => Number(b.Start / 10_000_000_000n)

/** Every point of these payloads as "bucket:hash:parent", in order. */
function pointKeys(payloads: readonly DecodedPayload[]): string[] {
  return payloads.flatMap((p) => p.Stats.flatMap((b) => b.Stats.map((s) => `${bucketOf(b)}:${s.Hash}:${s.ParentHash}`)))
}

function dataStreams(agentUrl: string, core: Backend, options: Record<string, unknown> = {}): DataStreams {
  return createDataStreamsFor(
    { enabled: true, service: 'flusher', env: 'test', agentUrl, flushIntervalMs: 0, core, ...options },
    { ...nodePlatform(), onExit: undefined },
  )
}

/** `n` pathways on one produce edge, two checkpoints each: one started `latency` seconds ago, one just now. */
function record(dsm: DataStreams, n: number, latencyS: (i: number) => number, topic = 'orders'): void {
  const now = Date.now()
  const tags = ['direction:out', `topic:${topic}`, 'type:kafka']
  for (let i = 0; i < n; i++) {
    const [hi, lo] = [i + 1, Math.imul(i, 0x9e3779b1) >>> 0]
    dsm.setCheckpoint(tags, new PathwayContext(hi, lo, now - latencyS(i) * 1000, now - latencyS(i) * 1000), 100)
    dsm.setCheckpoint(tags, new PathwayContext(hi, lo, now, now), 100)
  }
}

interface Quantiled {
  count: number
  getValueAtQuantile(q: number): number
}

/**
 * The same count and quantiles from two readers (each computes a bin's value its own way: equal
 * to 1e-9, a bin being 2% wide; the zeros one reads as 0, the other as its smallest indexable value).
 */
function sameQuantiles(a: Quantiled, b: Quantiled): void {
  assert.equal(a.count, b.count)
  for (const q of [0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1]) {
    const [x, y] = [a.getValueAtQuantile(q), b.getValueAtQuantile(q)]
    assert.ok(Math.abs(x - y) <= 1e-9 * Math.max(Math.abs(x), Math.abs(y)) || Math.max(x, y) < 1e-300, `q${q}: ${x} vs ${y}`)
  }
}

/** A drained point's three sketches, of a core fed these values, in the form asked for. */
function drainedSketches(backend: Backend, values: readonly number[], sparse: boolean): Uint8Array[] {
  const core = createCore({ backend })
  const node = core.node('flusher', 'test', ['topic:t'])
  for (const v of values) core.checkpoint(node, 0, 0, 1000, v, v / 2, v * 1000)
  const [payload] = [...flushPayloads({ core, beforeBucket: Infinity, sparse, extras: new Map(), meta: META, droppedPoints: 0 })].filter((p) => p !== PAUSE) as Payload[]
  const point = read(payload.bytes).Stats[0].Stats[0]
  return [point.PathwayLatency, point.EdgeLatency, point.PayloadSize]
}

describe('both sketch forms', () => {
  test('1 ms and 1,000 s: 64 bytes or fewer as a binCounts map, about 5 KB contiguous; each read by its reader to the same quantiles', () => {
    for (const backend of BACKENDS) {
      const [sparse] = drainedSketches(backend, [0.001, 1000], true)
      const [contiguous] = drainedSketches(backend, [0.001, 1000], false)
      assert.ok(hasBinCounts(sparse) && sparse.length <= 64, `${sparse.length} bytes`)
      assert.ok(!hasBinCounts(contiguous) && contiguous.length > 4000, `${contiguous.length} bytes`)
      // sketches-js cannot read the map: it would see an empty sketch, which is why only a destination known to read it gets it
      assert.equal(DDSketch.fromProto(sparse).count, 0)
      sameQuantiles(agentDecodeSketch(sparse), DDSketch.fromProto(contiguous))
    }
  })

  test('any values: the sparse form only where smaller, the same quantiles read from either form', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.constantFrom(0, 1e-9, 0.001, 1, 1000)), { minLength: 1, maxLength: 60 }), (values) => {
        const [sparse, contiguous] = [true, false].map((form) => drainedSketches('wasm', values, form))
        for (let i = 0; i < 3; i++) {
          assert.ok(sparse[i].length <= contiguous[i].length)
          if (!hasBinCounts(sparse[i])) assert.deepEqual(sparse[i], contiguous[i])
          sameQuantiles(agentDecodeSketch(sparse[i]), DDSketch.fromProto(contiguous[i]))
        }
      }),
      { numRuns: 100 },
    )
  })
})

describe('flushPayloads', () => {
  test('payloads within the bound, of whole points; every point, backlog and transaction record once, in bucket order; both cores alike', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.nat(40), fc.double({ min: 0, max: 5000, noNaN: true })), { maxLength: 150 }),
        fc.uniqueArray(fc.integer({ min: 0, max: 7 }), { maxLength: 4 }),
        fc.integer({ min: 300, max: 3000 }),
        fc.boolean(),
        (checkpoints, extraBuckets, maxBytes, sparse) => {
          const outputs = BACKENDS.map((backend) => {
            const core = createCore({ backend })
            const nodes = [0, 1, 2].map((t) => core.node('flusher', 'test', ['direction:in', `topic:t${t}`]))
            for (const [bucket, pathway, latency] of checkpoints) core.checkpoint(nodes[pathway % 3], 0, pathway, 1000 + bucket, latency, latency / 10, pathway)
            const extras = new Map<number, BucketExtras>(
              extraBuckets.map((b) => [1000 + b, { backlogs: [{ tags: ['type:kafka_produce', `partition:${b}`], value: b }], transactions: { records: Uint8Array.of(1, b), checkpointIds: Uint8Array.of(1, 1, 0x61) } }]),
            )
            const payloads: Payload[] = []
            for (const p of flushPayloads({ core, beforeBucket: Infinity, sparse, extras, meta: META, droppedPoints: 3 }, { maxBytes, chunkBytes: 500, sliceMs: 0 })) {
              if (p !== PAUSE) payloads.push(p)
            }
            return { payloads, live: core.livePoints }
          })
          assert.deepEqual(
            outputs[0].payloads.map((p) => p.bytes),
            outputs[1].payloads.map((p) => p.bytes),
          )
          const { payloads, live } = outputs[0]
          assert.equal(live, 0)
          const decoded = payloads.map((p) => read(p.bytes))
          for (const p of payloads) assert.ok(p.bytes.length <= maxBytes || p.points === 1, `payload of ${p.bytes.length} bytes, ${p.points} points`)
          const expected = new Set(checkpoints.map(([bucket, pathway]) => `${1000 + bucket}:${pathway}`))
          const points = decoded.flatMap((p) => p.Stats.flatMap((b) => b.Stats.map((s) => `${bucketOf(b)}:${Number(s.ParentHash)}`)))
          assert.equal(points.length, expected.size)
          assert.deepEqual(new Set(points), expected)
          const buckets = decoded.flatMap((p) => p.Stats.map(bucketOf))
          assert.deepEqual(buckets, [...buckets].sort((a, b) => a - b))
          const withExtras = decoded.flatMap((p) => p.Stats.filter((b) => b.Transactions !== undefined).map(bucketOf))
          assert.deepEqual(withExtras, extraBuckets.map((b) => 1000 + b).sort((a, b) => a - b))
          assert.deepEqual(decoded.flatMap((p) => p.Stats.flatMap((b) => b.Backlogs.map((x) => Number(x.Value)))).sort(), [...extraBuckets].sort())
          // the drops once, in the first payload, when there is one
          assert.deepEqual(decoded.map((p) => p[DROPPED_POINTS_FIELD] ?? 0), decoded.map((_, i) => (i === 0 ? 3 : 0)))
          // the layout says where each point is
          for (const p of payloads) {
            for (const s of p.segments) {
              let start = s.start
              for (const end of s.ends) {
                decode(p.bytes.subarray(start, end))
                start = end
              }
            }
          }
        },
      ),
      { numRuns: Number(process.env.PAYLOAD_RUNS ?? 60) },
    )
  })

  test('with no time to spare, it pauses between chunks', () => {
    const core = createCore()
    const node = core.node('flusher', 'test', ['topic:t'])
    for (let i = 0; i < 100; i++) core.checkpoint(node, 0, i, 1000, 1, 1, 1)
    const steps = [...flushPayloads({ core, beforeBucket: Infinity, sparse: false, extras: new Map(), meta: META, droppedPoints: 0 }, { maxBytes: 1 << 20, chunkBytes: 1000, sliceMs: 0 })]
    assert.ok(steps.filter((s) => s === PAUSE).length >= 10)
    assert.equal(steps.filter((s) => s !== PAUSE).length, 1)
  })

  test('splitPayload: two halves of whole points, every point once, extras and the drop count once', () => {
    const core = createCore()
    const node = core.node('flusher', 'test', ['topic:t'])
    for (let i = 0; i < 9; i++) core.checkpoint(node, 0, i, 1000 + (i % 2), 1, 1, 1)
    const extras = new Map<number, BucketExtras>([[999, { backlogs: [{ tags: ['a'], value: 1 }] }], [1001, { backlogs: [{ tags: ['b'], value: 2 }] }]])
    const [payload] = [...flushPayloads({ core, beforeBucket: Infinity, sparse: false, extras, meta: META, droppedPoints: 4 })].filter((p) => p !== PAUSE) as Payload[]
    const halves = splitPayload(payload, payload.bytes)!
    assert.deepEqual(halves.map((h) => h.points), [4, 5])
    const decoded = halves.map((h) => read(h.bytes))
    assert.deepEqual(pointKeys(decoded), pointKeys([read(payload.bytes)]))
    assert.deepEqual(decoded.map((d) => d[DROPPED_POINTS_FIELD]), [4, undefined])
    assert.deepEqual(
      decoded.flatMap((d) => d.Stats.flatMap((b) => b.Backlogs.map((x) => Number(x.Value)))),
      [1, 2],
    )
    // cut again and again: down to one point a payload, which cannot be cut
    let parts = [payload]
    while (parts.some((p) => p.points > 1)) parts = parts.flatMap((p) => (p.points > 1 ? splitPayload(p, p.bytes)! : [p]))
    assert.deepEqual(pointKeys(parts.map((p) => read(p.bytes))), pointKeys([read(payload.bytes)]))
    const single = parts.find((p) => p.segments.length === 1)!
    assert.equal(splitPayload(single, single.bytes), undefined)
  })
})

describe('a flush through an Agent', () => {
  let ddAgent: TestAgent
  let pathwise: AgentProcess
  before(async () => {
    ddAgent = await startAgent()
    pathwise = await startAgentProcess()
  })
  after(async () => {
    await ddAgent.close()
    killAgentProcesses()
  })

  test('past 8 MiB, a flush goes as several payloads, none over the bound, every point in one of them', async () => {
    const dsm = dataStreams(ddAgent.url, 'wasm')
    // spread latencies (1 ms to 1,000 s): about 5 KB of contiguous bins a point
    record(dsm, 2500, (i) => (i % 2 === 0 ? 0.001 : 1000))
    const before = ddAgent.payloads.length
    await dsm.flush()
    const sent = ddAgent.requests.slice(before).map((r) => r.msgpack!)
    assert.ok(sent.length >= 2, `${sent.length} payloads`)
    for (const raw of sent) assert.ok(raw.length <= MAX_PAYLOAD_BYTES, `${raw.length} bytes`)
    assert.equal(pointKeys(ddAgent.payloads.slice(before)).length, 2500)
    assert.equal(new Set(pointKeys(ddAgent.payloads.slice(before))).size, 2500)
    assert.equal(dsm.stats.droppedPayloads, 0)
    await dsm.shutdown()
  })

  test('a Datadog-Agent-like destination gets the contiguous form only; sketches-js reads the quantiles pathwise computed', async () => {
    for (const core of BACKENDS) {
      const dsm = dataStreams(ddAgent.url, core)
      record(dsm, 50, (i) => [0.001, 1000, 0.05, 2][i % 4])
      const before = ddAgent.payloads.length
      await dsm.flush()
      const points = ddAgent.payloads.slice(before).flatMap((p) => p.Stats.flatMap((b) => b.Stats))
      assert.equal(points.length, 50)
      for (const p of points) {
        for (const proto of [p.PathwayLatency, p.EdgeLatency, p.PayloadSize]) {
          assert.ok(!hasBinCounts(proto), 'a binCounts entry')
          sameQuantiles(DDSketch.fromProto(proto), agentDecodeSketch(proto))
        }
      }
      await dsm.shutdown()
    }
  })

  test('the pathwise agent says it reads the sparse form, and gets it where smaller; a Datadog Agent never does', async () => {
    const info = (await (await fetch(`${pathwise.url}/info`)).json()) as Record<string, unknown>
    assert.equal(info[SPARSE_SKETCHES_FIELD], true)
    const proxy = await startRecordingProxy(pathwise.url)
    try {
      for (const core of BACKENDS) {
        const service = `wide-${core}`
        const [toPathwise, toDatadog] = [proxy.url, ddAgent.url].map((url) => dataStreams(url, core, { service }))
        const before = ddAgent.payloads.length
        for (const dsm of [toPathwise, toDatadog]) {
          // one pathway, its two checkpoints 1 ms and 1,000 s after its start
          const now = Date.now()
          dsm.setCheckpoint(['direction:out', 'topic:wide', 'type:kafka'], new PathwayContext(7, 7, now - 1, now - 1), 100)
          dsm.setCheckpoint(['direction:out', 'topic:wide', 'type:kafka'], new PathwayContext(7, 7, now - 1_000_000, now - 1_000_000), 100)
          await dsm.flush()
        }
        const sent = proxy.forwarded.map((s) => read(gunzipSync(s.body))).find((p) => p.Service === service)!
        const sparse = sent.Stats[0].Stats[0].PathwayLatency
        assert.ok(hasBinCounts(sparse) && sparse.length <= 64, `${sparse.length} bytes`)
        const contiguous = ddAgent.payloads.slice(before)[0].Stats[0].Stats[0].PathwayLatency
        assert.ok(!hasBinCounts(contiguous) && contiguous.length > 4000, `${contiguous.length} bytes`)
        // what the agent shows of the edge is what its reader makes of the map form
        const summary = await waitFor(
          `${service} at the agent`,
          async () => (await (await fetch(`${pathwise.url}/api/summary?range=3600`)).json()) as Summary,
          (s) => s.edges.some((e) => e.from.includes(service)),
        )
        const edge = summary.edges.find((e) => e.from.includes(service))!
        const read_ = agentDecodeSketch(sent.Stats[0].Stats[0].EdgeLatency)
        assert.equal(edge.count, 2)
        assert.deepEqual(edge.latency, { p50: read_.getValueAtQuantile(0.5), p95: read_.getValueAtQuantile(0.95), p99: read_.getValueAtQuantile(0.99) })
        await Promise.all([toPathwise.shutdown(), toDatadog.shutdown()])
      }
    } finally {
      await proxy.close()
    }
  })
})

describe('413: cut in two and sent again', () => {
  let agent: AgentProcess
  before(async () => {
    agent = await startAgentProcess('--max-body', '2048')
  })
  after(() => killAgentProcesses())

  for (const core of BACKENDS) {
    test(`a pathwise agent taking 2 KiB bodies gets every point of a larger flush, each once (${core})`, async () => {
      const proxy = await startRecordingProxy(agent.url)
      const service = `cut-${core}`
      try {
        const dsm = dataStreams(proxy.url, core, { service })
        record(dsm, 400, (i) => 0.001 * (1 + (i % 500)))
        await dsm.flush()
        const posts = proxy.forwarded
        assert.ok(posts.some((s) => s.status === 413), 'the agent refused something')
        const accepted = posts.filter((s) => s.status === 200).map((s) => read(gunzipSync(s.body)))
        const keys = pointKeys(accepted)
        assert.equal(keys.length, 400)
        assert.equal(new Set(keys).size, 400)
        assert.equal(dsm.stats.droppedPayloads, 0)
        const summary = await waitFor(
          'the agent to count the points',
          async () => (await (await fetch(`${agent.url}/api/summary?range=3600`)).json()) as Summary,
          (s) => s.edges.some((e) => e.from.includes(service)),
        )
        const edge = summary.edges.find((e) => e.from.includes(service))!
        assert.equal(edge.count, 800, 'two checkpoints a pathway, each counted once')
        await dsm.shutdown()
      } finally {
        await proxy.close()
      }
    })
  }
})

describe('413 from an Agent that takes nothing', () => {
  test('a payload is cut down to single points, each dropped once and warned once; nothing loops', async () => {
    const agent = await startScriptedAgent({ then: 413 })
    try {
      const warns: string[] = []
      const exporter = new AgentExporter({ url: agent.url, tracerVersion: '0.0.0-test', transport: nodeTransport, log: { warn: (m) => warns.push(m), debug: () => {} } })
      const point = (lo: number): ExportPoint => ({
        edgeTags: ['topic:t'],
        hashHi: 0,
        hashLo: lo,
        parentHi: 0,
        parentLo: 0,
        pathwayLatency: new Uint8Array(0),
        edgeLatency: new Uint8Array(0),
        payloadSize: new Uint8Array(0),
        timestampType: 'current',
      })
      await exporter.send(encodePayload(META, [{ bucket: 1000, points: [point(1), point(2), point(3)], backlogs: [] }]))
      // three points: cut into one and two, the two into one and one; four payloads cut or refused alone
      assert.equal(agent.requests, 5)
      assert.deepEqual(exporter.stats, { sent: 0, dropped: 3, failures: 0, unconfirmed: 0, queued: 0, split: 2 })
      assert.equal(warns.length, 1)
      assert.match(warns[0], /refused a stats payload of \d+ bytes \(gzip\) as too large, and it holds one point alone; dropped/)
    } finally {
      await agent.close()
    }
  })
})

describe('the point cap', () => {
  test('past maxPoints in a bucket: drops counted, warned once, and shown by the pathwise agent', async (t) => {
    const agent = await startAgentProcess()
    const warn = t.mock.method(console, 'warn', () => {})
    try {
      const dsm = dataStreams(agent.url, 'wasm', { service: 'capped', maxPoints: 5 })
      // eight pathways a flush, two checkpoints each: the second of each merges into its point, if it has one
      record(dsm, 8, () => 0.01)
      assert.equal(dsm.stats.droppedPoints, 6)
      await dsm.flush()
      record(dsm, 8, () => 0.01)
      await dsm.flush()
      const warnings = warn.mock.calls.map((c) => String(c.arguments[0]))
      assert.equal(warnings.length, 1, warnings.join('\n'))
      assert.match(warnings[0], /maxPoints \(5 stats points\).*raise maxPoints/)
      const status = await waitFor(
        'the agent to count the drops',
        async () => ((await (await fetch(`${agent.url}/api/status`)).json()) as { points: { droppedByTracers: Record<string, number> } }).points,
        (p) => p.droppedByTracers.capped === 12,
      )
      assert.deepEqual(status.droppedByTracers, { capped: 12 })
      await dsm.shutdown()
    } finally {
      killAgentProcesses()
    }
  })
})

describe('what the exit sends', () => {
  test("the exit's final send, taken in the middle of a flush: the rest of it and every bucket at once; with what was delivered, every point once", async () => {
    const agent = await startAgent()
    try {
      for (const core of BACKENDS) {
        let pending: Uint8Array[] | undefined
        // the exit comes while the flush's first payload is handed over, the rest of the flush not yet built
        const transport: Transport = {
          ...nodeTransport,
          gzip(data) {
            pending ??= (dsm as unknown as { unsent(): Uint8Array[] }).unsent()
            return nodeTransport.gzip(data)
          },
        }
        const dsm = createDataStreamsFor(
          { enabled: true, service: 'flusher', env: 'test', agentUrl: agent.url, flushIntervalMs: 0, core },
          { ...nodePlatform(), transport, onExit: undefined },
        )
        // more than 8 MiB: two payloads or more
        record(dsm, 2500, (i) => (i % 2 === 0 ? 0.001 : 1000))
        await dsm.flush()
        record(dsm, 10, () => 1, 'later')
        const delivered = agent.requests.filter((r) => r.msgpack !== undefined).map((r) => r.msgpack!)
        assert.ok(pending !== undefined && pending.length >= 1)
        const all = [...pending!, ...delivered].map(read)
        assert.deepEqual([...new Set(all.map((p) => p.Service))], ['flusher'])
        const keys = pointKeys(all)
        assert.equal(keys.length, 2500, `${keys.length} points`)
        assert.equal(new Set(keys).size, 2500)
        // afterwards, the processor goes on as before
        assert.equal(dsm.stats.livePoints, 10)
        agent.requests.length = 0
        agent.payloads.length = 0
        await dsm.shutdown()
        assert.equal(pointKeys(agent.payloads).length, 10)
        agent.requests.length = 0
        agent.payloads.length = 0
      }
    } finally {
      await agent.close()
    }
  })
})
