/**
 * The intake (http/intake-endpoint.ts, intake/): payloads from pathwise, dd-trace's own processor
 * and the shapes dd-trace-java, -go and -py write are accepted and show up in /api/; /info answers
 * as tracers expect; traces, stats and telemetry are taken and not stored; bad input gets a 400 (413
 * over a size limit) with a one-line reason and stores nothing; `--forward` passes bodies on unchanged.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import http from 'node:http'
import { createRequire } from 'node:module'
import { after, before, describe, test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { encode } from '@msgpack/msgpack'
import { startAgent as startPathwiseAgent, type RunningAgent } from '../src/server.js'
import { createDataStreams } from 'pathwise'
import type { Summary } from '../src/views/api.js'
import { startAgent as startStandInAgent } from '../../test/helpers/agent-server.js'
import { getJson, pathwisePayload, postStats, sketchOf, STATS_HEADERS } from './helpers/agent-fixtures.js'
import { waitFor } from './helpers/agent-process.js'

const require = createRequire(import.meta.url)
const quiet = (): void => {}
const bucketNow = (): number => Date.now() - (Date.now() % 10_000)

function produce(service: string, hash: bigint, startMs = bucketNow()): Uint8Array {
  return pathwisePayload(service, [
    { startMs, points: [{ tags: ['direction:out', 'topic:orders', 'type:kafka'], hash, edge: [0.001, 0.002] }] },
  ])
}

describe('intake: payloads from pathwise and from Datadog tracers', () => {
  let agent: RunningAgent
  before(async () => {
    agent = await startPathwiseAgent({ port: 0, log: quiet })
  })
  after(() => agent.close())

  test('listens on loopback by default and answers /info as tracers expect', async () => {
    assert.equal(agent.host, '127.0.0.1')
    const info = await getJson<{ version: string; endpoints: string[]; config: { receiver_port: number } }>(agent.url, '/info')
    assert.ok(info.endpoints.includes('/v0.1/pipeline_stats'))
    assert.ok(info.endpoints.includes('/v0.4/traces'))
    assert.match(info.version, /^7\.\d+\.\d+/)
    assert.equal(info.config.receiver_port, agent.port)
  })

  test("/info says it reads sketches' sparse form (binCounts)", async () => {
    const info = await getJson<Record<string, unknown>>(agent.url, '/info')
    assert.equal(info.pathwise_sparse_sketches, true)
  })

  test("a pathwise payload's count of checkpoints its point cap dropped shows in /api/status, by service", async () => {
    const dropping = (service: string, n: number) =>
      gzipSync(encode({ Service: service, Env: 'test', Stats: [], TracerVersion: '0.1.0', Lang: 'javascript', Version: '', PathwiseDroppedPoints: n }))
    for (const [service, n] of [['capped-a', 5], ['capped-b', 2], ['capped-a', 7]] as const) assert.equal((await postStats(agent.url, dropping(service, n))).status, 200)
    const status = await getJson<Summary['status']>(agent.url, '/api/status')
    assert.equal(status.points.droppedByTracers['capped-a'], 12)
    assert.equal(status.points.droppedByTracers['capped-b'], 2)
    // anything but a count is refused, as every field the agent reads
    assert.equal((await postStats(agent.url, dropping('capped-c', -1))).status, 400)
  })

  test('a pathwise payload shows up in /api/', async () => {
    const res = await postStats(agent.url, produce('pw-producer', 0x9a6ed7bfb001208en))
    assert.equal(res.status, 200)
    const topo = await getJson<Summary>(agent.url, '/api/topology')
    const edge = topo.edges.find((e) => e.id === 'service:pw-producer>kafka:orders')
    assert.ok(edge, JSON.stringify(topo.edges))
    assert.equal(edge.count, 2)
    assert.equal(edge.kind, 'produce')
    assert.ok(topo.nodes.some((n) => n.id === 'kafka:orders' && n.role === 'topic'))
  })

  test("pathwise's DataStreams API, pointed at the agent, shows up with its pathway linked", async () => {
    const options = { enabled: true, env: 'test', agentUrl: agent.url, flushIntervalMs: 0 }
    const producer = createDataStreams({ ...options, service: 'pw-api-producer' })
    const consumer = createDataStreams({ ...options, service: 'pw-api-consumer' })
    try {
      for (let i = 0; i < 3; i++) {
        const carrier = {}
        producer.setProduceCheckpoint('kafka', 'pw-topic', carrier, { payloadSize: 300 })
        consumer.setConsumeCheckpoint('kafka', 'pw-topic', carrier)
      }
      producer.trackKafkaProduce('pw-topic', 0, 70)
      consumer.trackKafkaCommit('pw-group', 'pw-topic', 0, 64)
      await producer.flush()
      await consumer.flush()
      const s = await getJson<Summary>(agent.url, '/api/summary')
      assert.equal(s.edges.find((e) => e.id === 'service:pw-api-producer>kafka:pw-topic')?.count, 3)
      assert.equal(s.edges.find((e) => e.id === 'kafka:pw-topic>service:pw-api-consumer')?.count, 3)
      const path = s.pathways.find((p) => p.service === 'pw-api-consumer')
      assert.deepEqual(path?.nodes, ['service:pw-api-producer', 'kafka:pw-topic', 'service:pw-api-consumer'])
      assert.equal(path?.complete, true)
      assert.equal(s.lag.find((r) => r.group === 'pw-group')?.lagMessages, 6)
    } finally {
      await producer.shutdown()
      await consumer.shutdown()
    }
  })

  test("dd-trace's own DataStreamsProcessor, pointed at the agent, is accepted and shows up", async () => {
    // Loading dd-trace as an application does sets up the globals its processor registers with; it is not initialised (no tracing).
    require('dd-trace')
    const { DataStreamsProcessor } = require('dd-trace/packages/dd-trace/src/datastreams/processor.js') as {
      DataStreamsProcessor: new (config: object) => {
        setCheckpoint(tags: string[], span: null, ctx: unknown, size?: number): unknown
        setOffset(offset: object): void
        onInterval(): void
        timer?: NodeJS.Timeout
      }
    }
    const config = { dsmEnabled: true, url: new URL(agent.url), env: 'test', version: '1.0', flushInterval: 60_000 }
    const producer = new DataStreamsProcessor({ ...config, service: 'dd-producer' })
    const consumer = new DataStreamsProcessor({ ...config, service: 'dd-consumer' })
    try {
      for (let i = 0; i < 5; i++) {
        const ctx = producer.setCheckpoint(['direction:out', 'topic:dd-topic', 'type:kafka'], null, null, 200)
        consumer.setCheckpoint(['direction:in', 'group:dd-group', 'topic:dd-topic', 'type:kafka'], null, ctx, 200)
      }
      producer.setOffset({ type: 'kafka_produce', topic: 'dd-topic', partition: 0, offset: 500 })
      consumer.setOffset({ type: 'kafka_commit', topic: 'dd-topic', partition: 0, offset: 480, consumer_group: 'dd-group' })
      producer.onInterval()
      consumer.onInterval()
      const s = await waitFor(
        'the dd-trace payloads',
        () => getJson<Summary>(agent.url, '/api/summary'),
        (s) => s.edges.some((e) => e.id === 'kafka:dd-topic>service:dd-consumer#dd-group') && s.lag.some((r) => r.group === 'dd-group'),
      )
      const out = s.edges.find((e) => e.id === 'service:dd-producer>kafka:dd-topic')
      const into = s.edges.find((e) => e.id === 'kafka:dd-topic>service:dd-consumer#dd-group')
      assert.equal(out?.count, 5)
      assert.equal(into?.count, 5)
      // dd-trace-js adds the pathway context's size to what producers send.
      assert.ok(out!.payloadSize!.p50 > 200)
      const path = s.pathways.find((p) => p.service === 'dd-consumer')
      assert.deepEqual(path?.nodes, ['service:dd-producer', 'kafka:dd-topic', 'service:dd-consumer'])
      assert.equal(path?.complete, true)
      const lag = s.lag.find((r) => r.group === 'dd-group')
      assert.equal(lag?.lagMessages, 20)
    } finally {
      clearInterval(producer.timer)
      clearInterval(consumer.timer)
    }
  })

  test('payload shapes of dd-trace-java, -go and -py are accepted', async () => {
    const start = BigInt(bucketNow()) * 1_000_000n
    const sk = (v: number): Uint8Array => sketchOf([v])
    // Java: first nodes without EdgeTags, no Backlogs key when empty, PrimaryTag, no TimestampType; a hash above 2^63 written as a signed long.
    const java = {
      Env: 'prod', Service: 'java-svc', Lang: 'java', PrimaryTag: '', TracerVersion: '1.40.0', Version: '2',
      Stats: [
        {
          Start: start, Duration: 10_000_000_000n,
          Stats: [
            { PathwayLatency: sk(0), EdgeLatency: sk(0), PayloadSize: sk(10), Hash: 0x1234n, ParentHash: 0n },
            { PathwayLatency: sk(0.01), EdgeLatency: sk(0.01), PayloadSize: sk(10), Hash: -0x1000n, ParentHash: 0x1234n, EdgeTags: ['direction:out', 'topic:java-topic', 'type:kafka'] },
          ],
        },
      ],
    }
    // Go: nil lists, extra fields.
    const go = {
      Env: 'prod', Service: 'go-svc', Version: '', Lang: 'go', TracerVersion: 'v1.70.0', ProductMask: 1n, IsInDefaultEnv: false, ProcessTags: null, Hostname: '',
      Stats: [
        {
          Start: start, Duration: 10_000_000_000n, Backlogs: null,
          Stats: [{ EdgeTags: ['direction:in', 'group:go-group', 'topic:java-topic', 'type:kafka'], Hash: 0xfedcba9876543210n, ParentHash: 0xfffffffffffff000n, PathwayLatency: sk(0.05), EdgeLatency: sk(0.04), PayloadSize: sk(10), TimestampType: 'current' }],
        },
      ],
    }
    // Python: backlog tags in its own order, Hostname and Tags.
    const py = {
      Env: 'prod', Service: 'py-svc', Version: '', Lang: 'python', TracerVersion: '2.10.0', Hostname: 'h', Tags: ['a:b'],
      Stats: [
        {
          Start: start, Duration: 10_000_000_000n,
          Stats: [{ EdgeTags: ['direction:out', 'topic:py-topic', 'type:kafka'], Hash: 0x77n, ParentHash: 0n, PathwayLatency: sk(0), EdgeLatency: sk(0), PayloadSize: sk(10), TimestampType: 'current' }],
          Backlogs: [{ Tags: ['partition:3', 'topic:py-topic', 'type:kafka_produce'], Value: 42 }],
        },
      ],
    }
    for (const payload of [java, go, py]) {
      const res = await postStats(agent.url, gzipSync(encode(payload, { useBigInt64: true })))
      assert.equal(res.status, 200, `${payload.Service}: ${res.text}`)
    }
    const s = await getJson<Summary>(agent.url, '/api/summary')
    assert.ok(s.edges.some((e) => e.id === 'service:java-svc>kafka:java-topic'))
    assert.ok(s.edges.some((e) => e.id === 'kafka:java-topic>service:go-svc#go-group'))
    assert.ok(s.edges.some((e) => e.id === 'service:py-svc>kafka:py-topic'))
    assert.ok(s.nodes.some((n) => n.id === 'service:java-svc'))
    // Java's signed -0x1000 is the unsigned hash Go names as its parent: the pathway links across languages.
    const goPath = s.pathways.find((p) => p.service === 'go-svc')
    assert.deepEqual(goPath?.nodes, ['service:java-svc', 'kafka:java-topic', 'service:go-svc'])
    assert.equal(goPath?.complete, true)
  })

  test('trace, stats and telemetry payloads are taken and not stored; remote config answers 404', async () => {
    const before = await getJson<Summary>(agent.url, '/api/status')
    const traces = await fetch(`${agent.url}/v0.4/traces`, { method: 'PUT', headers: { 'Content-Type': 'application/msgpack' }, body: new Uint8Array([0x90]) })
    assert.equal(traces.status, 200)
    assert.deepEqual(await traces.json(), { rate_by_service: {} })
    const v05 = await fetch(`${agent.url}/v0.5/traces`, { method: 'PUT', headers: { 'Content-Type': 'application/msgpack' }, body: new Uint8Array([0x92, 0x90, 0x90]) })
    assert.equal(v05.status, 200)
    const telemetry = await fetch(`${agent.url}/telemetry/proxy/api/v2/apmtelemetry`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })
    assert.equal(telemetry.status, 202)
    const rc = await fetch(`${agent.url}/v0.7/config`, { method: 'POST', headers: { 'Content-Type': 'application/json; charset=utf-8' }, body: '{}' })
    assert.equal(rc.status, 404)
    const afterStatus = await getJson<Summary['status']>(agent.url, '/api/status')
    const was = (before as unknown as Summary['status']).payloads
    assert.deepEqual(afterStatus.payloads, { ...was, other: was.other + 3 })
    assert.equal(afterStatus.series, (before as unknown as Summary['status']).series)
  })

  test('a dd-trace tracer pointed at the agent sends traces and DSM and logs no error', async () => {
    // A child process, so that dd-trace's instrumentation stays out of this one.
    const script = `
      const tracer = require('dd-trace').init({ url: ${JSON.stringify(agent.url)}, service: 'dd-app', env: 'test', dsmEnabled: true, flushInterval: 100, startupLogs: false })
      tracer.trace('work', () => tracer.dataStreamsCheckpointer.setProduceCheckpoint('kafka', 'dd-app-topic', {}))
      setTimeout(() => process.exit(0), 1500)
    `
    const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, DD_TRACE_DEBUG: 'true', DD_TRACE_LOG_LEVEL: 'error' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (c: Buffer) => (output += c.toString()))
    child.stderr.on('data', (c: Buffer) => (output += c.toString()))
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    assert.equal(code, 0)
    assert.equal(output, '', 'the tracer logged errors')
    const s = await getJson<Summary>(agent.url, '/api/summary')
    assert.ok(s.edges.some((e) => e.id === 'service:dd-app>kafka:dd-app-topic'))
    assert.ok(s.status.payloads.other >= 1, 'no trace payload arrived')
  })
})

/** Sends raw bytes to /v0.1/pipeline_stats, optionally chunked (no Content-Length). */
function rawPost(url: string, body: Uint8Array, chunked = false): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...STATS_HEADERS }
    if (!chunked) headers['Content-Length'] = String(body.length)
    const req = http.request(`${url}/v0.1/pipeline_stats`, { method: 'POST', headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
    })
    // The agent may close the connection before all of an oversized body is written.
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err)))
    if (chunked) {
      for (let i = 0; i < body.length; i += 16_384) req.write(body.subarray(i, i + 16_384))
      req.end()
    } else {
      req.end(body)
    }
  })
}

describe('intake: bad input', () => {
  let agent: RunningAgent
  const limits = { maxBodyBytes: 64 * 1024, maxDecompressedBytes: 1024 * 1024 }
  before(async () => {
    agent = await startPathwiseAgent({ port: 0, log: quiet, limits })
  })
  after(() => agent.close())

  const valid = (): Uint8Array => produce('good', 0x42n)
  const gz = (value: unknown): Uint8Array => gzipSync(encode(value, { useBigInt64: true }))
  const start = (): bigint => BigInt(bucketNow()) * 1_000_000n
  const point = (extra: object): object => ({ EdgeTags: ['direction:out', 'topic:t', 'type:kafka'], Hash: 1n, ParentHash: 0n, PathwayLatency: sketchOf([1]), EdgeLatency: sketchOf([1]), PayloadSize: sketchOf([1]), ...extra })
  const withPoint = (extra: object): Uint8Array => gz({ Service: 'bad', Env: 'e', Stats: [{ Start: start(), Duration: 10_000_000_000n, Stats: [point(extra)] }] })
  const random = (n: number): Uint8Array => {
    const out = new Uint8Array(n)
    let x = 12345
    for (let i = 0; i < n; i++) out[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24
    return out
  }

  const cases: Array<[string, () => Uint8Array, RegExp, boolean?]> = [
    ['an empty body', () => new Uint8Array(0), /^empty body$/],
    ['a body over the size limit', () => random(200 * 1024), /^body too large/],
    ['a chunked body over the size limit', () => random(200 * 1024), /^body too large/, true],
    ['a gzip bomb', () => gzipSync(new Uint8Array(4 * 1024 * 1024)), /^decompressed body too large/],
    ['bytes that are not gzip', () => random(1000), /^bad gzip/],
    ['truncated gzip', () => valid().subarray(0, 40), /^bad gzip/],
    ['gzip of bytes that are not msgpack', () => gzipSync(new Uint8Array([0xc1, 0x00])), /^bad msgpack/],
    ['msgpack with trailing bytes', () => gzipSync(new Uint8Array([0x80, 0x80])), /^bad msgpack/],
    ['a payload that is not a map', () => gz([1, 2, 3]), /^wrong schema: payload is not a map$/],
    ['a payload without Stats', () => gz({ Service: 's', Env: 'e' }), /^wrong schema: Stats is missing$/],
    ['a payload without Service', () => gz({ Env: 'e', Stats: [] }), /^wrong schema: Service is missing$/],
    ['Stats that is not an array', () => gz({ Service: 's', Stats: 'x' }), /^wrong schema: Stats is not an array$/],
    ['a bucket without Start', () => gz({ Service: 's', Stats: [{ Duration: 1, Stats: [] }] }), /^wrong schema: Stats\[0\]\.Start is missing$/],
    ['a negative Start', () => gz({ Service: 's', Stats: [{ Start: -5, Stats: [] }] }), /^wrong schema: Stats\[0\]\.Start is not/],
    ['a Hash that is a string', () => withPoint({ Hash: 'abc' }), /^wrong schema: Stats\[0\]\.Stats\[0\]\.Hash is not a 64-bit integer$/],
    ['a Hash that is a float', () => withPoint({ Hash: 1.5 }), /Hash is not a 64-bit integer/],
    ['EdgeTags holding a number', () => withPoint({ EdgeTags: ['direction:out', 7] }), /EdgeTags\[1\] is not a string/],
    ['a sketch that is a string', () => withPoint({ EdgeLatency: 'x' }), /EdgeLatency is not binary/],
    ['a sketch that is not a protobuf', () => withPoint({ PathwayLatency: new Uint8Array([0xff, 0xff, 0xff]) }), /PathwayLatency is not a valid DDSketch/],
    ['a sketch with a bin beyond any value', () => withPoint({ EdgeLatency: sketchWithKey(200_000) }), /EdgeLatency is not a valid DDSketch: bin key 200000 is out of range/],
    ['a backlog Value that is a string', () => gz({ Service: 's', Stats: [{ Start: start(), Stats: [], Backlogs: [{ Tags: ['type:kafka_produce', 'topic:t', 'partition:0'], Value: 'x' }] }] }), /Backlogs\[0\]\.Value is not a number/],
    [
      'a good bucket followed by a bad one',
      () => gz({ Service: 'half', Stats: [{ Start: start(), Stats: [point({ Hash: 9n })] }, { Start: start(), Stats: [point({ Hash: 'bad' })] }] }),
      /^wrong schema: Stats\[1\]\.Stats\[0\]\.Hash/,
    ],
  ]

  for (const [name, body, reason, chunked] of cases) {
    test(`${name}: 400 (413 over a size limit) with a one-line reason, nothing stored, still serving`, async () => {
      const before = await getJson<Summary['status']>(agent.url, '/api/status')
      const res = await rawPost(agent.url, body(), chunked)
      assert.equal(res.status, /too large/.test(reason.source) ? 413 : 400)
      assert.ok(res.text.endsWith('\n') && !res.text.slice(0, -1).includes('\n'), `not one line: ${JSON.stringify(res.text)}`)
      assert.match(res.text.trimEnd(), reason)
      const status = await getJson<Summary['status']>(agent.url, '/api/status')
      assert.equal(status.payloads.rejected, before.payloads.rejected + 1)
      assert.equal(status.payloads.accepted, before.payloads.accepted)
      assert.equal(status.series, before.series)
      assert.equal(status.lastRejection?.reason, res.text.trimEnd())
      const topo = await getJson<Summary>(agent.url, '/api/topology')
      assert.ok(!topo.nodes.some((n) => n.id === 'service:bad' || n.id === 'service:half'))
    })
  }

  test('after all of that, a good payload is still accepted', async () => {
    assert.equal((await postStats(agent.url, valid())).status, 200)
    const topo = await getJson<Summary>(agent.url, '/api/topology')
    assert.ok(topo.edges.some((e) => e.id === 'service:good>kafka:orders'))
  })
})

/** A DDSketch protobuf with one bin at `key` (mapping gamma 1.02): the value of such a key overflows a double. */
function sketchWithKey(key: number): Uint8Array {
  const zigzag = (key << 1) ^ (key >> 31)
  const varint = (n: number): number[] => {
    const out: number[] = []
    while (n >= 0x80) {
      out.push((n & 0x7f) | 0x80)
      n >>>= 7
    }
    out.push(n)
    return out
  }
  const gamma = new Uint8Array(new Float64Array([1.02]).buffer)
  const one = new Uint8Array(new Float64Array([1]).buffer)
  const store = [0x12, 8, ...one, 0x18, ...varint(zigzag)]
  return new Uint8Array([0x0a, 9, 0x09, ...gamma, 0x12, store.length, ...store])
}

describe('intake: forwarding', () => {
  test('every payload is passed on with a byte-identical body', async () => {
    const downstream = await startStandInAgent()
    const agent = await startPathwiseAgent({ port: 0, log: quiet, forward: downstream.url })
    try {
      const bodies = [produce('fw-a', 0x1n), produce('fw-b', 0x2n), gzipSync(encode({ Service: 'fw-c', Env: 'e', Stats: [] }))]
      for (const body of bodies) assert.equal((await postStats(agent.url, body)).status, 200)
      const traces = new Uint8Array([0x91, 0x91, 0x80])
      assert.equal((await fetch(`${agent.url}/v0.4/traces`, { method: 'PUT', headers: { 'Content-Type': 'application/msgpack' }, body: traces })).status, 200)
      // A rejected payload is not passed on.
      assert.equal((await postStats(agent.url, new Uint8Array([1, 2, 3]))).status, 400)
      await downstream.waitFor((_p, requests) => requests.length >= 4)
      await new Promise((r) => setTimeout(r, 100))
      const stats = downstream.requests.filter((r) => r.path === '/v0.1/pipeline_stats')
      assert.equal(stats.length, 3)
      assert.deepEqual(
        stats.map((r) => Buffer.from(r.body).toString('hex')).sort(),
        bodies.map((b) => Buffer.from(b).toString('hex')).sort(),
      )
      for (const r of stats) {
        assert.equal(r.method, 'POST')
        assert.equal(r.headers['content-encoding'], 'gzip')
        assert.equal(r.headers['content-type'], 'application/msgpack')
        assert.equal(r.headers['datadog-meta-lang'], 'javascript')
      }
      const forwardedTraces = downstream.requests.find((r) => r.path === '/v0.4/traces')
      assert.equal(forwardedTraces?.method, 'PUT')
      assert.deepEqual([...forwardedTraces!.body], [...traces])
      assert.equal(downstream.payloads.length, 3)
      const status = await getJson<Summary['status']>(agent.url, '/api/status')
      assert.equal(status.forward?.url, downstream.url)
      assert.equal(status.forward?.forwarded, 3) // the stand-in answers 404 to traces
      // what it forwards to might not read the sparse form: it does not ask for it
      assert.equal((await getJson<Record<string, unknown>>(agent.url, '/info')).pathwise_sparse_sketches, false)
    } finally {
      await agent.close()
      await downstream.close()
    }
  })
})
