/**
 * The export path (bindings/export/): encodeStatsPayload read back by a test Agent (every field,
 * hashes over the full uint64 range), AgentExporter's sends, retries, bounded queue and warnings,
 * the Node and fetch transports against hanging and refusing Agents, and the logger's warnOnce.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import { describe, test } from 'node:test'
import { LogCollapsingLowestDenseDDSketch } from '@datadog/sketches-js'
import { AgentExporter, UNCONFIRMED, type AgentExporterOptions, type Deadlines, type Transport } from '../bindings/export/exporter.js'
import { fetchTransport } from '../bindings/export/fetch-transport.js'
import { createLogger, warnOnce, type Logger } from '../bindings/common/logger.js'
import { nodeTransport } from '../bindings/export/node-transport.js'
import { encodePayload, encodeStatsPayload, type ExportBucket, type ExportPoint, type Payload, type PayloadMeta } from '../bindings/export/payload.js'
import { decodeSketch, startAgent, type DecodedPayload } from './helpers/agent-server.js'

const META: PayloadMeta = { env: 'prod', service: 'orders-api', version: '1.2.3', tracerVersion: '0.1.0' }

function sketch(...values: number[]): Uint8Array {
  const s = new LogCollapsingLowestDenseDDSketch({ relativeAccuracy: 0.01 })
  for (const v of values) s.accept(v)
  return s.toProto()
}

function point(hashHi: number, hashLo: number, parentHi: number, parentLo: number, extra: Partial<ExportPoint> = {}): ExportPoint {
  return {
    edgeTags: ['direction:out', 'topic:orders', 'type:kafka'],
    hashHi,
    hashLo,
    parentHi,
    parentLo,
    pathwayLatency: sketch(0.5),
    edgeLatency: sketch(0.25),
    payloadSize: sketch(100),
    timestampType: 'current',
    ...extra,
  }
}

/** A payload told apart from others by its service. */
function payloadFor(service: string): Payload {
  return encodePayload({ ...META, service }, [{ bucket: 170_000_000, points: [point(1, 2, 3, 4)], backlogs: [] }])
}

function recorder(): { log: Logger; warns: string[]; debugs: string[] } {
  const warns: string[] = []
  const debugs: string[] = []
  return { warns, debugs, log: { warn: (m) => warns.push(m), debug: (m) => debugs.push(m) } }
}

function exporter(url: string, log: Logger, options: Partial<AgentExporterOptions> = {}): AgentExporter {
  return new AgentExporter({ url, tracerVersion: '0.1.0', transport: nodeTransport, log, backoffMs: 10, ...options })
}

function services(payloads: DecodedPayload[]): string[] {
  return payloads.map((p) => p.Service)
}

/** The 8 big-endian bytes of a uint64. */
function be64(value: bigint): number[] {
  const bytes = new Uint8Array(8)
  new DataView(bytes.buffer).setBigUint64(0, value)
  return [...bytes]
}

/** msgpack of a short string key (fixstr). */
function key(name: string): number[] {
  return [0xa0 + name.length, ...new TextEncoder().encode(name)]
}

function contains(haystack: Uint8Array, needle: number[]): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer
    return true
  }
  return false
}

/**
 * Export timers and sockets are unref'ed, so while the Agent is down nothing else keeps the test
 * process alive; the test runner would end it with the test's promise pending.
 */
async function keepingAlive<T>(fn: () => Promise<T>): Promise<T> {
  const handle = setInterval(() => {}, 60_000)
  try {
    return await fn()
  } finally {
    clearInterval(handle)
  }
}

describe('encodeStatsPayload through the test Agent', () => {
  test('every field round-trips, hashes exact over the full uint64 range', async () => {
    const agent = await startAgent()
    try {
      const TWO53_PLUS_1 = 2n ** 53n + 1n
      const MAX = 2n ** 64n - 1n
      const buckets: ExportBucket[] = [
        {
          bucket: 172_800_123,
          points: [
            point(0, 0, 0xffffffff, 0xffffffff, {
              pathwayLatency: sketch(0.5, 1, 2),
              edgeLatency: sketch(0.125, 0),
              payloadSize: sketch(512, 1024, 2048, 4096),
            }),
            // 2^53 + 1 = 0x0020_0000_0000_0001: not representable as a double
            point(0x0020_0000, 1, 0, 0, { edgeTags: ['direction:in', 'group:g1', 'topic:orders', 'type:kafka'], timestampType: 'origin' }),
            // halves handed out as signed int32, as Wasm returns them: -1 is 0xffffffff
            point(-1, -1, 0x0020_0000, 1, { edgeTags: [] }),
          ],
          backlogs: [
            { tags: ['partition:0', 'topic:orders', 'type:kafka_produce'], value: 42 },
            { tags: ['consumer_group:g1', 'partition:1', 'topic:orders', 'type:kafka_commit'], value: 2 ** 40 + 3 },
          ],
        },
        { bucket: 172_800_124, points: [], backlogs: [] },
      ]
      const meta: PayloadMeta = { ...META, hostname: 'host-1', tags: ['team:core', 'region:eu'] }
      const log = recorder()
      await exporter(agent.url, log.log).send(encodePayload(meta, buckets))

      assert.equal(agent.payloads.length, 1)
      const p = agent.payloads[0]
      assert.deepEqual(Object.keys(p).sort(), ['Env', 'Hostname', 'Lang', 'Service', 'Stats', 'Tags', 'TracerVersion', 'Version'])
      assert.equal(p.Env, 'prod')
      assert.equal(p.Service, 'orders-api')
      assert.equal(p.Version, '1.2.3')
      assert.equal(p.TracerVersion, '0.1.0')
      assert.equal(p.Lang, 'javascript')
      assert.equal(p.Hostname, 'host-1')
      assert.deepEqual(p.Tags, ['team:core', 'region:eu'])

      assert.equal(p.Stats.length, 2)
      const [b0, b1] = p.Stats
      assert.deepEqual(Object.keys(b0).sort(), ['Backlogs', 'Duration', 'Start', 'Stats'])
      assert.equal(b0.Start, 172_800_123n * 10_000_000_000n)
      assert.equal(b1.Start, 172_800_124n * 10_000_000_000n)
      assert.equal(b0.Duration, 10_000_000_000n)
      assert.deepEqual(b1.Stats, [])
      assert.deepEqual(b1.Backlogs, [])

      assert.equal(b0.Stats.length, 3)
      const [p0, p1, p2] = b0.Stats
      assert.deepEqual(Object.keys(p0).sort(), [
        'EdgeLatency',
        'EdgeTags',
        'Hash',
        'ParentHash',
        'PathwayLatency',
        'PayloadSize',
        'TimestampType',
      ])
      assert.equal(p0.Hash, 0n)
      assert.equal(p0.ParentHash, MAX)
      assert.equal(p1.Hash, TWO53_PLUS_1)
      assert.equal(p1.ParentHash, 0n)
      assert.equal(p2.Hash, MAX)
      assert.equal(p2.ParentHash, TWO53_PLUS_1)
      for (const pt of b0.Stats) {
        assert.equal(typeof pt.Hash, 'bigint')
        assert.equal(typeof pt.ParentHash, 'bigint')
      }
      assert.deepEqual(p0.EdgeTags, ['direction:out', 'topic:orders', 'type:kafka'])
      assert.deepEqual(p1.EdgeTags, ['direction:in', 'group:g1', 'topic:orders', 'type:kafka'])
      assert.deepEqual(p2.EdgeTags, [])
      assert.equal(p0.TimestampType, 'current')
      assert.equal(p1.TimestampType, 'origin')

      // sketches arrive as bin, byte for byte, and decode with the reference implementation
      assert.ok(p0.PathwayLatency instanceof Uint8Array)
      assert.deepEqual([...p0.PathwayLatency], [...buckets[0].points[0].pathwayLatency])
      assert.deepEqual([...p0.EdgeLatency], [...buckets[0].points[0].edgeLatency])
      assert.deepEqual([...p0.PayloadSize], [...buckets[0].points[0].payloadSize])
      const pathway = decodeSketch(p0.PathwayLatency)
      assert.equal(pathway.count, 3)
      assert.ok(Math.abs(pathway.quantile(1) - 2) <= 0.02 * 2)
      const edge = decodeSketch(p0.EdgeLatency)
      assert.equal(edge.count, 2)
      assert.equal(edge.zeroCount, 1)
      const size = decodeSketch(p0.PayloadSize)
      assert.equal(size.count, 4)
      assert.ok(Math.abs(size.quantile(0.5) - 1024) <= 0.02 * 1024)

      assert.deepEqual(b0.Backlogs, [
        { Tags: ['partition:0', 'topic:orders', 'type:kafka_produce'], Value: 42 },
        { Tags: ['consumer_group:g1', 'partition:1', 'topic:orders', 'type:kafka_commit'], Value: 2n ** 40n + 3n },
      ])

      // msgpack types: uint64 (0xcf) for Hash, ParentHash, Start and Duration, whatever the value
      const raw = agent.requests[0].msgpack
      assert.ok(raw)
      assert.ok(contains(raw, [...key('Hash'), 0xcf, ...be64(MAX)]))
      assert.ok(contains(raw, [...key('Hash'), 0xcf, ...be64(TWO53_PLUS_1)]))
      assert.ok(contains(raw, [...key('Hash'), 0xcf, ...be64(0n)]))
      assert.ok(contains(raw, [...key('ParentHash'), 0xcf, ...be64(MAX)]))
      assert.ok(contains(raw, [...key('ParentHash'), 0xcf, ...be64(TWO53_PLUS_1)]))
      assert.ok(contains(raw, [...key('Start'), 0xcf, ...be64(172_800_123n * 10_000_000_000n)]))
      assert.ok(contains(raw, [...key('Duration'), 0xcf, ...be64(10_000_000_000n)]))
      // a 64-bit backlog offset must not turn into a float64 (0xcb)
      assert.ok(contains(raw, [...key('Value'), 0xcf, ...be64(2n ** 40n + 3n)]))
      assert.deepEqual(log.warns, [])
    } finally {
      await agent.close()
    }
  })

  test('Hostname and Tags are left out when not given', async () => {
    const agent = await startAgent()
    try {
      await exporter(agent.url, recorder().log).send(encodePayload(META, []))
      assert.deepEqual(Object.keys(agent.payloads[0]).sort(), ['Env', 'Lang', 'Service', 'Stats', 'TracerVersion', 'Version'])
      assert.deepEqual(agent.payloads[0].Stats, [])
    } finally {
      await agent.close()
    }
  })

  test('a non-integer bucket number is refused loudly', () => {
    assert.throws(() => encodeStatsPayload(META, [{ bucket: 1.5, points: [], backlogs: [] }]), RangeError)
  })
})

describe('AgentExporter', () => {
  test('POSTs gzipped msgpack to /v0.1/pipeline_stats with the Agent headers', async () => {
    const agent = await startAgent()
    try {
      // a trailing slash on the base URL must not double up in the path
      await exporter(`${agent.url}/`, recorder().log, { tracerVersion: '9.8.7' }).send(payloadFor('s'))
      assert.equal(agent.requests.length, 1)
      const req = agent.requests[0]
      assert.equal(req.method, 'POST')
      assert.equal(req.path, '/v0.1/pipeline_stats')
      assert.equal(req.headers['content-type'], 'application/msgpack')
      assert.equal(req.headers['content-encoding'], 'gzip')
      assert.equal(req.headers['datadog-meta-lang'], 'javascript')
      assert.equal(req.headers['datadog-meta-tracer-version'], '9.8.7')
      assert.equal(req.headers['content-length'], String(req.body.byteLength))
      assert.deepEqual([...req.body.subarray(0, 2)], [0x1f, 0x8b])
      assert.deepEqual([...gunzipSync(req.body)], [...payloadFor('s').bytes])
    } finally {
      await agent.close()
    }
  })

  test('Agent down, then back: nothing throws, the queue is bounded, queued payloads arrive first', async () => {
    const agent = await startAgent()
    const port = agent.port
    await agent.close()
    const log = recorder()
    const bounded = exporter(agent.url, log.log, { maxQueue: 3, maxRetries: 1 })
    const roomy = exporter(agent.url, recorder().log, { maxRetries: 0 })
    await keepingAlive(async () => {
      for (let i = 1; i <= 5; i++) await bounded.send(payloadFor(`s${i}`))
      await roomy.send(payloadFor('x1'))
      await roomy.send(payloadFor('x2'))
    })
    // the oldest two were dropped; each send tried the head of the queue twice
    assert.deepEqual(bounded.stats, { sent: 0, dropped: 2, failures: 10, unconfirmed: 0, queued: 3, split: 0 })
    assert.equal(bounded.dropped, 2)
    assert.equal(log.warns.length, 2)
    assert.match(log.warns[0], /cannot send stats to the Datadog Agent .*ECONNREFUSED/)
    assert.match(log.warns[1], /keeping the payloads of the latest 3 flushes/)
    assert.deepEqual(roomy.stats, { sent: 0, dropped: 0, failures: 2, unconfirmed: 0, queued: 2, split: 0 })

    const back = await startAgent({ port })
    try {
      await bounded.flush()
      assert.deepEqual(services(back.payloads), ['s3', 's4', 's5'])
      assert.deepEqual(bounded.stats, { sent: 3, dropped: 2, failures: 10, unconfirmed: 0, queued: 0, split: 0 })
      assert.equal(log.warns.length, 2)
      // the next payload goes out after the queued ones
      await roomy.send(payloadFor('x3'))
      assert.deepEqual(services(back.payloads).slice(3), ['x1', 'x2', 'x3'])
      assert.deepEqual(roomy.stats, { sent: 3, dropped: 0, failures: 2, unconfirmed: 0, queued: 0, split: 0 })
    } finally {
      await back.close()
    }
  })

  test('a payload sent into a full queue counts toward maxQueue', async () => {
    const agent = await startAgent({ mode: '500' })
    try {
      const exp = exporter(agent.url, recorder().log, { maxQueue: 2, maxRetries: 0 })
      await exp.send(payloadFor('a'))
      await exp.send(payloadFor('b'))
      agent.setMode('ok')
      await exp.send(payloadFor('c'))
      assert.deepEqual(services(agent.payloads), ['b', 'c'])
      assert.deepEqual(exp.stats, { sent: 2, dropped: 1, failures: 2, unconfirmed: 0, queued: 0, split: 0 })
    } finally {
      await agent.close()
    }
  })

  test('404: warns once that the Agent is older than 7.34, drops without retrying', async () => {
    const agent = await startAgent({ mode: '404' })
    try {
      const log = recorder()
      const exp = exporter(agent.url, log.log, { maxRetries: 3 })
      await exp.send(payloadFor('a'))
      await exp.send(payloadFor('b'))
      assert.equal(agent.requests.length, 2)
      assert.deepEqual(exp.stats, { sent: 0, dropped: 2, failures: 0, unconfirmed: 0, queued: 0, split: 0 })
      assert.equal(log.warns.length, 1)
      assert.match(log.warns[0], /older than 7\.34/)
    } finally {
      await agent.close()
    }
  })

  test('another 4xx: dropped without retrying, warned once', async () => {
    const agent = await startAgent()
    try {
      const log = recorder()
      const exp = exporter(agent.url, log.log)
      // not msgpack: the test Agent answers 400
      const garbage = { ...payloadFor('x'), bytes: new Uint8Array([0xc1]) }
      await exp.send(garbage)
      await exp.send(garbage)
      assert.equal(agent.requests.length, 2)
      assert.deepEqual(exp.stats, { sent: 0, dropped: 2, failures: 0, unconfirmed: 0, queued: 0, split: 0 })
      assert.equal(log.warns.length, 1)
      assert.match(log.warns[0], /status 400/)
    } finally {
      await agent.close()
    }
  })

  test('5xx: retried with growing backoff, then queued until flush()', async () => {
    const agent = await startAgent({ mode: '500' })
    try {
      const log = recorder()
      const exp = exporter(agent.url, log.log, { maxRetries: 2, backoffMs: 40 })
      const t0 = performance.now()
      await exp.send(payloadFor('a'))
      // waits of 40 then 80 ms between the three attempts
      assert.ok(performance.now() - t0 >= 115, `${performance.now() - t0} ms`)
      assert.equal(agent.requests.length, 3)
      assert.deepEqual(exp.stats, { sent: 0, dropped: 0, failures: 3, unconfirmed: 0, queued: 1, split: 0 })
      assert.match(log.warns[0], /status 500/)

      agent.setMode('ok')
      await exp.flush()
      assert.deepEqual(services(agent.payloads), ['a'])
      assert.deepEqual(exp.stats, { sent: 1, dropped: 0, failures: 3, unconfirmed: 0, queued: 0, split: 0 })
      // nothing left: a second flush sends nothing
      await exp.flush()
      assert.equal(agent.requests.length, 4)
    } finally {
      await agent.close()
    }
  })

  test('5xx then recovery within the retries: delivered by the same send', async () => {
    const agent = await startAgent({ mode: '500' })
    try {
      const log = recorder()
      const exp = exporter(agent.url, log.log, { maxRetries: 2, backoffMs: 300 })
      const sending = exp.send(payloadFor('a'))
      await agent.waitFor((_, requests) => requests.length === 1)
      agent.setMode('ok')
      await sending
      assert.deepEqual(services(agent.payloads), ['a'])
      assert.equal(agent.requests.length, 2)
      assert.deepEqual(exp.stats, { sent: 1, dropped: 0, failures: 1, unconfirmed: 0, queued: 0, split: 0 })
      assert.deepEqual(log.warns, [])
    } finally {
      await agent.close()
    }
  })

  test('hanging Agent: a payload sent and unanswered is not resent; the one behind it waits for the next flush', async () => {
    const agent = await startAgent({ mode: 'hang' })
    try {
      const log = recorder()
      const exp = exporter(agent.url, log.log, { answerTimeoutMs: 150, maxRetries: 2 })
      await Promise.all([exp.send(payloadFor('a')), exp.send(payloadFor('b'))])
      assert.equal(agent.requests.length, 1)
      assert.deepEqual(exp.stats, { sent: 0, dropped: 0, failures: 0, unconfirmed: 1, queued: 1, split: 0 })
      assert.equal(log.warns.length, 1)
      assert.match(log.warns[0], /did not confirm a stats payload \(sent, no answer within 150 ms\); not sending it again/)

      agent.setMode('ok')
      await exp.flush()
      assert.deepEqual(services(agent.payloads), ['b'])
      assert.equal(agent.requests.length, 2)
    } finally {
      await agent.close()
    }
  })

  test('concurrent sends are delivered one at a time, in order', async () => {
    const agent = await startAgent()
    try {
      const exp = exporter(agent.url, recorder().log)
      await Promise.all(['a', 'b', 'c', 'd'].map((s) => exp.send(payloadFor(s))))
      assert.deepEqual(services(agent.payloads), ['a', 'b', 'c', 'd'])
      assert.equal(exp.stats.sent, 4)
    } finally {
      await agent.close()
    }
  })

  test('debug: logs what is sent', async () => {
    const agent = await startAgent()
    try {
      const log = recorder()
      await exporter(agent.url, log.log, { debug: true }).send(payloadFor('a'))
      assert.equal(log.debugs.length, 1)
      const size = agent.requests[0].body.byteLength
      assert.equal(log.debugs[0], `sent stats to ${agent.url}/v0.1/pipeline_stats: ${size} bytes gzipped`)
      // without debug, nothing
      const quiet = recorder()
      await exporter(agent.url, quiet.log).send(payloadFor('b'))
      assert.deepEqual(quiet.debugs, [])
    } finally {
      await agent.close()
    }
  })

  test('a payload that fails to compress is dropped; the ones behind it still go', async () => {
    const agent = await startAgent()
    try {
      const log = recorder()
      let calls = 0
      const flaky: Transport = {
        ...nodeTransport,
        gzip(data) {
          calls++
          if (calls === 1) return Promise.reject(new Error('no zlib here'))
          if (calls === 2) throw new Error('thrown, not rejected')
          return nodeTransport.gzip(data)
        },
      }
      const exp = exporter(agent.url, log.log, { transport: flaky })
      await Promise.all(['a', 'b', 'c'].map((s) => exp.send(payloadFor(s))))
      assert.deepEqual(services(agent.payloads), ['c'])
      assert.deepEqual(exp.stats, { sent: 1, dropped: 2, failures: 0, unconfirmed: 0, queued: 0, split: 0 })
      assert.equal(log.warns.length, 1)
      assert.match(log.warns[0], /could not compress a stats payload, dropped: /)
    } finally {
      await agent.close()
    }
  })

  test('a transport whose post throws synchronously: an ordinary failure', async () => {
    const throwing: Transport = {
      ...nodeTransport,
      gzip: async (data) => data,
      post: () => {
        throw new TypeError('synchronous failure')
      },
    }
    const log = recorder()
    const exp = exporter('http://127.0.0.1:9', log.log, { transport: throwing, maxRetries: 0 })
    await exp.send(payloadFor('a'))
    assert.deepEqual(exp.stats, { sent: 0, dropped: 0, failures: 1, unconfirmed: 0, queued: 1, split: 0 })
    assert.match(log.warns[0], /synchronous failure/)
  })

  test('a Logger that throws does not make send reject', async () => {
    const agent = await startAgent({ mode: '404' })
    try {
      const throwing: Logger = {
        warn: () => {
          throw new Error('logger broke')
        },
        debug: () => {},
      }
      const exp = exporter(agent.url, throwing)
      await exp.send(payloadFor('a'))
      agent.setMode('ok')
      await exp.send(payloadFor('b'))
      assert.deepEqual(services(agent.payloads), ['b'])
    } finally {
      await agent.close()
    }
  })

  test('an invalid Agent URL fails the attempts, never throws', async () => {
    const exp = exporter('not a url', recorder().log, { maxRetries: 1 })
    await keepingAlive(() => exp.send(payloadFor('a')))
    assert.deepEqual(exp.stats, { sent: 0, dropped: 0, failures: 2, unconfirmed: 0, queued: 1, split: 0 })
  })
})

describe('node transport', () => {
  test('an export to a hanging Agent does not keep the process alive', async () => {
    const agent = await startAgent({ mode: 'hang' })
    try {
      const script = fileURLToPath(new URL('./helpers/export-child.ts', import.meta.url))
      const child = spawn(process.execPath, ['--import', 'tsx', script, agent.url], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      })
      let stderr = ''
      child.stderr?.on('data', (d: Buffer) => (stderr += d))
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
      // the request is in flight (and will not be answered for 60 s): let the child go
      await agent.waitFor((_, requests) => requests.some((r) => r.path === '/v0.1/pipeline_stats'), 20_000)
      const t0 = performance.now()
      child.send('go')
      let timer: NodeJS.Timeout | undefined
      const code = await Promise.race([exited, new Promise<'stuck'>((resolve) => (timer = setTimeout(() => resolve('stuck'), 5000)))])
      clearTimeout(timer)
      if (code === 'stuck') child.kill('SIGKILL')
      assert.equal(code, 0, `child: ${code}, stderr: ${stderr}`)
      assert.ok(performance.now() - t0 < 5000)
    } finally {
      await agent.close()
    }
  })
})

describe('fetch transport', () => {
  test('delivers through the test Agent with the same headers and a gzip body', async () => {
    const agent = await startAgent()
    try {
      const exp = exporter(agent.url, recorder().log, { transport: fetchTransport, tracerVersion: '3.2.1' })
      await exp.send(payloadFor('via-fetch'))
      assert.deepEqual(services(agent.payloads), ['via-fetch'])
      assert.deepEqual(exp.stats, { sent: 1, dropped: 0, failures: 0, unconfirmed: 0, queued: 0, split: 0 })
      const req = agent.requests[0]
      assert.equal(req.headers['content-type'], 'application/msgpack')
      assert.equal(req.headers['content-encoding'], 'gzip')
      assert.equal(req.headers['datadog-meta-lang'], 'javascript')
      assert.equal(req.headers['datadog-meta-tracer-version'], '3.2.1')
      assert.deepEqual([...gunzipSync(req.body)], [...payloadFor('via-fetch').bytes])
    } finally {
      await agent.close()
    }
  })

  test('a hanging Agent: rejects as unconfirmed once both deadlines pass (fetch cannot tell them apart); returns 5xx statuses', async () => {
    const agent = await startAgent({ mode: 'hang' })
    const post = (deadlines: Deadlines) => fetchTransport.post(`${agent.url}/v0.1/pipeline_stats`, {}, new Uint8Array([1]), deadlines)
    try {
      await assert.rejects(post({ sendMs: 50, answerMs: 100 }), { code: UNCONFIRMED, message: 'no answer within 150 ms' })
      assert.equal(agent.requests.length, 1)
      agent.setMode('500')
      assert.equal(await post({ sendMs: 1000, answerMs: 1000 }), 500)
    } finally {
      await agent.close()
    }
  })

  test('connection refused rejects as an ordinary failure, to be retried', async () => {
    const agent = await startAgent()
    await agent.close()
    const posting = fetchTransport.post(`${agent.url}/v0.1/pipeline_stats`, {}, new Uint8Array([1]), { sendMs: 1000, answerMs: 1000 })
    await keepingAlive(() =>
      assert.rejects(posting, (err) => {
        assert.notEqual((err as { code?: unknown }).code, UNCONFIRMED)
        return true
      }),
    )
  })
})

describe('logger', () => {
  test('warnOnce warns once per key and logger', () => {
    const a = recorder()
    const b = recorder()
    warnOnce(a.log, 'k', 'first')
    warnOnce(a.log, 'k', 'again')
    warnOnce(a.log, 'other', 'second')
    warnOnce(b.log, 'k', 'for b')
    assert.deepEqual(a.warns, ['first', 'second'])
    assert.deepEqual(b.warns, ['for b'])
  })

  test('createLogger prefixes with [pathwise] and prints debug lines only when enabled', () => {
    const lines: string[] = []
    const { warn, debug } = console
    console.warn = (m: string) => lines.push(`warn ${m}`)
    console.debug = (m: string) => lines.push(`debug ${m}`)
    try {
      const quiet = createLogger(false)
      quiet.debug('hidden')
      quiet.warnOnce('x', 'once')
      quiet.warnOnce('x', 'twice')
      const loud = createLogger(true)
      loud.debug('shown')
      loud.warn('w')
    } finally {
      console.warn = warn
      console.debug = debug
    }
    assert.deepEqual(lines, ['warn [pathwise] once', 'debug [pathwise] shown', 'warn [pathwise] w'])
  })
})
