/**
 * The DataStreams processor against a real HTTP Agent stand-in, on both cores: schema,
 * sketches, backlogs, hash chains across services, loop detection, context propagation,
 * configuration, Agent outages, shutdown and the disabled mode.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import {
  PATHWAY_KEY,
  PathwayContext,
  VERSION,
  createDataStreams,
  decodePathwayContext,
  encodePathwayContext,
  type DataStreams,
} from '../bindings/index.js'
import { startAgent, type DecodedPayload, type DecodedPoint, type TestAgent } from './helpers/agent-server.js'
import { expectedHash } from './helpers/expected-hash.js'
import { decodeSketch } from './helpers/sketches.js'


const points = (payloads: DecodedPayload[]) => payloads.flatMap((p) => p.Stats.flatMap((b) => b.Stats))
const hasTag = (tag: string) => (p: DecodedPoint) => p.EdgeTags.includes(tag)

for (const core of ['wasm', 'ts'] as const) {
  describe(`DataStreams (${core} core)`, () => {
    let agent: TestAgent
    const open: DataStreams[] = []
    const make = (service: string, extra: Parameters<typeof createDataStreams>[0] = {}) => {
      const dsm = createDataStreams({ enabled: true, service, env: 'test', version: '1.2.3', agentUrl: agent.url, core, flushIntervalMs: 0, ...extra })
      open.push(dsm)
      return dsm
    }

    before(async () => {
      agent = await startAgent()
    })
    after(async () => {
      await Promise.all(open.map((d) => d.shutdown()))
      await agent.close()
    })

    test('a flush sends every field of the schema, with latencies measured from the carrier', async () => {
      const dsm = make('schema-svc', { tags: { team: 'data' } })
      const now = Date.now()
      const carrier = { [PATHWAY_KEY]: encodePathwayContext(new PathwayContext(0x01020304, 0x05060708, now - 5000, now - 1000)) }
      const ctx = dsm.setConsumeCheckpoint('kafka', 'orders', carrier, { payloadSize: 321 })
      assert.ok(ctx)
      await dsm.flush()
      await agent.waitFor((ps) => ps.some((p) => p.Service === 'schema-svc'))
      const payload = agent.payloads.find((p) => p.Service === 'schema-svc')!
      assert.equal(payload.Env, 'test')
      assert.equal(payload.Version, '1.2.3')
      assert.equal(payload.Lang, 'javascript')
      assert.equal(payload.TracerVersion, VERSION)
      assert.deepEqual(payload.Tags, ['team:data'])
      const request = agent.requests.find((r) => r.path === '/v0.1/pipeline_stats')!
      assert.equal(request.headers['content-type'], 'application/msgpack')
      assert.equal(request.headers['content-encoding'], 'gzip')
      assert.equal(request.headers['datadog-meta-lang'], 'javascript')
      assert.equal(request.headers['datadog-meta-tracer-version'], VERSION)

      assert.equal(payload.Stats.length, 1)
      const bucket = payload.Stats[0]
      assert.equal(bucket.Duration, 10_000_000_000n)
      assert.equal(bucket.Start % 10_000_000_000n, 0n)
      const startMs = Number(bucket.Start / 1_000_000n)
      assert.ok(startMs <= Date.now() && startMs > now - 20_000)
      assert.equal(bucket.Stats.length, 1)
      const point = bucket.Stats[0]
      const tags = ['direction:in', 'manual_checkpoint:true', 'topic:orders', 'type:kafka']
      assert.deepEqual(point.EdgeTags, tags)
      assert.equal(point.ParentHash, 0x0102030405060708n)
      assert.equal(point.Hash, expectedHash('schema-svc', 'test', tags, 0x0102030405060708n))
      assert.equal(point.Hash, ctx.hash)
      assert.equal(point.TimestampType, 'current')
      const pathway = decodeSketch(point.PathwayLatency)
      const edge = decodeSketch(point.EdgeLatency)
      const size = decodeSketch(point.PayloadSize)
      assert.equal(pathway.count, 1)
      // The carrier says 5 s and 1 s ago (whole milliseconds), give or take the sketch's 1%
      // and the time the test took to get here.
      assert.ok(pathway.quantile(0.5) >= 5 * 0.99 && pathway.quantile(0.5) < 5.5, `pathway ${pathway.quantile(0.5)}`)
      assert.ok(edge.quantile(0.5) >= 1 * 0.99 && edge.quantile(0.5) < 1.5, `edge ${edge.quantile(0.5)}`)
      assert.ok(Math.abs(size.quantile(0.5) - 321) <= 3.21)
      assert.deepEqual(bucket.Backlogs, [])
    })

    test('backlogs keep the highest offset per key and bucket', async () => {
      const dsm = make('backlog-svc')
      dsm.trackKafkaProduce('orders', 0, 10)
      dsm.trackKafkaProduce('orders', 0, '42')
      dsm.trackKafkaProduce('orders', 0, 7)
      dsm.trackKafkaProduce('orders', 1, 5, 'cluster-1')
      dsm.trackKafkaCommit('g', 'orders', 0, 40n)
      dsm.trackKafkaCommit('g', 'orders', 0, 39)
      await dsm.flush()
      await agent.waitFor((ps) => ps.some((p) => p.Service === 'backlog-svc'))
      const payload = agent.payloads.find((p) => p.Service === 'backlog-svc')!
      const backlogs = payload.Stats.flatMap((b) => b.Backlogs).map((b) => ({ tags: b.Tags, value: Number(b.Value) }))
      assert.deepEqual(
        backlogs.sort((a, b) => a.tags.join().localeCompare(b.tags.join())),
        [
          { tags: ['type:kafka_commit', 'consumer_group:g', 'topic:orders', 'partition:0'], value: 40 },
          { tags: ['type:kafka_produce', 'topic:orders', 'partition:0'], value: 42 },
          { tags: ['type:kafka_produce', 'topic:orders', 'partition:1', 'kafka_cluster_id:cluster-1'], value: 5 },
        ].sort((a, b) => a.tags.join().localeCompare(b.tags.join())),
      )
    })

    test('three services in one process link their hashes through the carriers', async () => {
      const a = make('chain-a')
      const b = make('chain-b')
      const c = make('chain-c')
      const m1: Record<string, string> = {}
      const produced = a.setProduceCheckpoint('kafka', 'orders', m1, { parent: null })!
      const m2: Record<string, string> = {}
      const consumedB = await b.runWithContext(undefined, async () => {
        const consumed = b.setConsumeCheckpoint('kafka', 'orders', m1)!
        await sleep(1)
        // The consume made its context current: this produce is its child.
        b.setProduceCheckpoint('kafka', 'enriched', m2)
        return consumed
      })
      const consumedC = c.setConsumeCheckpoint('kafka', 'enriched', m2)!
      await Promise.all([a.flush(), b.flush(), c.flush()])
      await agent.waitFor((ps) => ['chain-a', 'chain-b', 'chain-c'].every((s) => ps.some((p) => p.Service === s)))

      const out = ['direction:out', 'manual_checkpoint:true', 'type:kafka']
      const inn = ['direction:in', 'manual_checkpoint:true', 'type:kafka']
      const hA = expectedHash('chain-a', 'test', [...out, 'topic:orders'], 0n)
      const hB1 = expectedHash('chain-b', 'test', [...inn, 'topic:orders'], hA)
      const hB2 = expectedHash('chain-b', 'test', [...out, 'topic:enriched'], hB1)
      const hC = expectedHash('chain-c', 'test', [...inn, 'topic:enriched'], hB2)
      assert.equal(produced.hash, hA)
      assert.equal(consumedB.hash, hB1)
      assert.equal(consumedC.hash, hC)
      const byService = (s: string) => points(agent.payloads.filter((p) => p.Service === s))
      assert.deepEqual(byService('chain-a').map((p) => [p.Hash, p.ParentHash]), [[hA, 0n]])
      assert.deepEqual(byService('chain-b').map((p) => [p.Hash, p.ParentHash]), [[hB1, hA], [hB2, hB1]])
      assert.deepEqual(byService('chain-c').map((p) => [p.Hash, p.ParentHash]), [[hC, hB2]])
      // The pathway started at A: C's pathway latency covers B's edge and more.
      const [pc] = byService('chain-c')
      assert.ok(decodeSketch(pc.PathwayLatency).quantile(1) >= decodeSketch(pc.EdgeLatency).quantile(1))
      assert.equal(decodePathwayContext(m2[PATHWAY_KEY])!.pathwayStartMs, Math.floor(produced.pathwayStartMs))
    })

    test('loop detection: a second produce hangs off the consume, a produce loop restarts the pathway', () => {
      const dsm = make('loop-svc')
      const upstream = new PathwayContext(0, 77, Date.now() - 100, Date.now() - 50)
      const consumed = dsm.setCheckpoint(['direction:in', 'topic:t', 'type:kafka'], upstream)!
      const first = dsm.setCheckpoint(['direction:out', 'topic:u', 'type:kafka'], consumed)!
      const second = dsm.setCheckpoint(['direction:out', 'topic:u', 'type:kafka'], first)!
      assert.equal(first.hash, second.hash, 'both produces are children of the consume')
      assert.equal(second.pathwayStartMs, upstream.pathwayStartMs)
      const outTags = ['direction:out', 'topic:u', 'type:kafka']
      assert.equal(first.hash, expectedHash('loop-svc', 'test', outTags, consumed.hash))

      const lone = dsm.setCheckpoint(outTags, null)!
      const again = dsm.setCheckpoint(outTags, lone)!
      assert.equal(again.hash, expectedHash('loop-svc', 'test', outTags, 0n), 'no consume to hang off: a new pathway')
      assert.ok(again.pathwayStartMs >= lone.pathwayStartMs)
    })

    test('a consume with no carrier context, or a malformed one, starts a new pathway', () => {
      const dsm = make('fresh-svc')
      const tags = ['direction:in', 'manual_checkpoint:true', 'topic:q', 'type:sqs']
      for (const carrier of [{}, { [PATHWAY_KEY]: 'not base64 at all!' }, { [PATHWAY_KEY]: 'AAAA' }, { [PATHWAY_KEY]: 42 }]) {
        const ctx = dsm.runWithContext(undefined, () => dsm.setConsumeCheckpoint('sqs', 'q', carrier))!
        assert.equal(ctx.hash, expectedHash('fresh-svc', 'test', tags, 0n))
        assert.equal(ctx.pathwayStartMs, ctx.edgeStartMs)
      }
    })

    test('the current context follows the async flow, and runWithContext sets it', async () => {
      const dsm = make('als-svc')
      const ctx = new PathwayContext(1, 2, Date.now(), Date.now())
      assert.equal(dsm.currentContext(), undefined)
      await dsm.runWithContext(ctx, async () => {
        await sleep(1)
        assert.equal(dsm.currentContext(), ctx)
        const child = dsm.setCheckpoint(['direction:out', 'topic:x'])!
        assert.equal(child.hash, expectedHash('als-svc', 'test', ['direction:out', 'topic:x'], (1n << 32n) | 2n))
      })
      assert.equal(dsm.currentContext(), undefined)
    })

    test('the Agent failing for a while, then back: nothing throws and later payloads arrive', async () => {
      const dsm = make('outage-svc', { timeoutMs: 300 })
      agent.setMode('500')
      for (let i = 0; i < 5; i++) {
        dsm.setCheckpoint(['direction:out', `topic:o${i}`], null)
        await dsm.flush()
      }
      assert.equal(agent.payloads.filter((p) => p.Service === 'outage-svc').length, 0)
      agent.setMode('ok')
      dsm.setCheckpoint(['direction:out', 'topic:back'], null)
      await dsm.flush()
      await agent.waitFor((ps) => points(ps.filter((p) => p.Service === 'outage-svc')).some(hasTag('topic:back')))
      // Payloads kept while the Agent was away arrive too (the queue is bounded; these fit).
      const seen = points(agent.payloads.filter((p) => p.Service === 'outage-svc'))
      for (let i = 0; i < 5; i++) assert.ok(seen.some(hasTag(`topic:o${i}`)), `topic:o${i}`)
      assert.equal(dsm.stats.livePoints, 0)
    })

    test('a 404 (an Agent older than 7.34) is reported once', async () => {
      const warnings: string[] = []
      const warn = console.warn
      console.warn = (...args: unknown[]) => void warnings.push(args.join(' '))
      try {
        const dsm = make('old-agent-svc')
        agent.setMode('404')
        for (let i = 0; i < 3; i++) {
          dsm.setCheckpoint(['direction:out', 'topic:x'], null)
          await dsm.flush()
        }
      } finally {
        agent.setMode('ok')
        console.warn = warn
      }
      assert.equal(warnings.filter((w) => w.includes('7.34')).length, 1)
    })

    test('shutdown flushes what is left', async () => {
      const dsm = make('shutdown-svc', { flushIntervalMs: 60_000 })
      dsm.setCheckpoint(['direction:out', 'topic:last'], null)
      await dsm.shutdown()
      assert.ok(points(agent.payloads.filter((p) => p.Service === 'shutdown-svc')).some(hasTag('topic:last')))
    })
  })
}

describe('DataStreams configuration', () => {
  test('disabled: every call is a no-op, nothing is sent, no timer runs', async () => {
    const agent = await startAgent()
    try {
      const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
      const dsm = createDataStreams({ enabled: false, service: 'off', agentUrl: agent.url })
      assert.equal(dsm.enabled, false)
      assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, timersBefore)
      const carrier: Record<string, string> = {}
      assert.equal(dsm.setProduceCheckpoint('kafka', 't', carrier), null)
      assert.deepEqual(carrier, {})
      assert.equal(dsm.setConsumeCheckpoint('kafka', 't', { [PATHWAY_KEY]: 'x' }), null)
      assert.equal(dsm.setCheckpoint(['direction:out']), null)
      dsm.trackKafkaProduce('t', 0, 1)
      assert.equal(dsm.runWithContext(null, () => 7), 7)
      await dsm.flush()
      await dsm.shutdown()
      assert.equal(agent.requests.length, 0)
    } finally {
      await agent.close()
    }
  })

  test('options fall back to the Datadog environment variables', async () => {
    const agent = await startAgent()
    const saved = { ...process.env }
    Object.assign(process.env, {
      DD_DATA_STREAMS_ENABLED: 'true',
      DD_SERVICE: 'env-svc',
      DD_VERSION: '9.9.9',
      DD_TAGS: 'a:1,b:2',
      DD_AGENT_HOST: '127.0.0.1',
      DD_TRACE_AGENT_PORT: String(agent.port),
    })
    delete process.env.DD_ENV
    delete process.env.DD_TRACE_AGENT_URL
    try {
      const dsm = createDataStreams({ flushIntervalMs: 0 })
      assert.equal(dsm.enabled, true)
      assert.equal(dsm.env, 'none')
      dsm.setCheckpoint(['direction:out', 'topic:env'], null)
      await dsm.shutdown()
      const payload = agent.payloads[0]
      assert.deepEqual([payload.Service, payload.Env, payload.Version, payload.Tags], ['env-svc', 'none', '9.9.9', ['a:1', 'b:2']])
      process.env.DD_DATA_STREAMS_ENABLED = 'false'
      assert.equal(createDataStreams().enabled, false)
    } finally {
      process.env = saved
      await agent.close()
    }
  })

  test('a process that ends is not kept alive, and its stats are flushed on the way out', async () => {
    const agent = await startAgent()
    try {
      const started = Date.now()
      const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/exit-flush.ts', import.meta.url))], {
        env: { ...process.env, AGENT_URL: agent.url },
        stdio: 'inherit',
      })
      const [code] = (await once(child, 'exit')) as [number]
      assert.equal(code, 0)
      // Well under the 10 s flush interval: the timer did not hold the process.
      assert.ok(Date.now() - started < 8000, `exited after ${Date.now() - started} ms`)
      assert.ok(points(agent.payloads.filter((p) => p.Service === 'exit-svc')).some(hasTag('topic:bye')))
    } finally {
      await agent.close()
    }
  })

  test('the version sent is the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
    assert.equal(VERSION, pkg.version)
  })
})
