/**
 * What browsers may do to the agent, which the guard decides (http/guard.ts): a page of another
 * origin cannot write into it (no-cors POSTs, form-like Content-Types), a page that rebinds its name
 * to the agent cannot read it, the agent's own page still works, tracers (pathwise, dd-trace) are
 * not affected, and `--allowed-hosts` names are answered.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import net from 'node:net'
import { createRequire } from 'node:module'
import { after, before, describe, test } from 'node:test'
import { createDataStreams } from 'pathwise'
import { chromium, type Browser } from 'playwright-core'
import type { Summary } from '../src/views/api.js'
import { startAgent, type RunningAgent } from '../src/server.js'
import { getJson, pathwisePayload, postStats, STATS_HEADERS } from './helpers/agent-fixtures.js'

const require = createRequire(import.meta.url)
const bucketNow = (): number => Date.now() - (Date.now() % 10_000)

/** A valid pipeline_stats payload (gzip, msgpack) from `service`: without the guard, the intake would take it. */
function payload(service: string): Uint8Array {
  const points = [{ tags: ['direction:out', 'topic:t', 'type:kafka'], hash: 0x77n, edge: [0.001] }]
  return pathwisePayload(service, [{ startMs: bucketNow(), points }])
}

function services(s: Summary): string[] {
  return s.nodes.filter((n) => n.id.startsWith('service:')).map((n) => n.id)
}

interface RawAnswer {
  status: number
  text: string
}

/** One request written byte for byte on a fresh socket (so that Host and the rest are exactly what is given). */
function raw(port: number, head: string[], body: Uint8Array = new Uint8Array(0)): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', reject)
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      const status = /^HTTP\/1\.[01] (\d{3}) /.exec(text)
      if (!status) return reject(new Error(`not an HTTP answer: ${JSON.stringify(text.slice(0, 200))}`))
      resolve({ status: Number(status[1]), text: text.slice(text.indexOf('\r\n\r\n') + 4) })
    })
    const lines = [...head, `Content-Length: ${body.length}`, 'Connection: close', '', '']
    // Not end(): Node's HTTP server drops a request whose client half-closes before the answer; it closes after answering.
    socket.write(Buffer.concat([Buffer.from(lines.join('\r\n')), body]))
  })
}

const get = (port: number, path: string, host: string): Promise<RawAnswer> => raw(port, [`GET ${path} HTTP/1.1`, `Host: ${host}`])

/** A pipeline_stats POST as a tracer sends it, plus `extra` header lines. */
function post(port: number, body: Uint8Array, extra: string[] = [], type = 'application/msgpack'): Promise<RawAnswer> {
  const head = ['POST /v0.1/pipeline_stats HTTP/1.1', `Host: 127.0.0.1:${port}`, 'Content-Encoding: gzip', 'Datadog-Meta-Lang: javascript']
  if (type) head.push(`Content-Type: ${type}`)
  return raw(port, [...head, ...extra], body)
}

describe('Host names: what a DNS-rebinding page would send', () => {
  let agent: RunningAgent
  const lines: string[] = []
  before(async () => {
    agent = await startAgent({ port: 0, log: (l) => lines.push(l), allowedHosts: ['agent.internal'] })
  })
  after(() => agent.close())

  test('a name the agent does not know gets 403 for the page, the API and /metrics, and the log says so', async () => {
    for (const path of ['/', '/api/summary', '/metrics', '/info']) {
      const res = await get(agent.port, path, `evil.example:${agent.port}`)
      assert.equal(res.status, 403, path)
      assert.match(res.text, /^Host evil\.example:\d+ is not one this agent answers to/)
      assert.ok(!res.text.includes('nodes'), 'the answer leaks nothing')
    }
    assert.match(lines[0] ?? '', /^answered 403 to GET \/: Host evil\.example:\d+ is not one/)
    const others = ['evil.example', 'localhost.evil.example', 'agent.internal.evil.example', `app.localhost:${agent.port}`, `[::ffff:evil]:${agent.port}`]
    for (const host of others) {
      assert.equal((await get(agent.port, '/api/summary', host)).status, 403, host)
    }
    // HTTP/1.0 needs no Host: a request without one is refused too.
    assert.equal((await raw(agent.port, ['GET /api/summary HTTP/1.0'])).status, 403)
  })

  test('loopback names, IP addresses and --allowed-hosts names are answered, with or without port', async () => {
    const p = agent.port
    const hosts = [`localhost:${p}`, `127.0.0.1:${p}`, `[::1]:${p}`, 'LOCALHOST', `agent.internal:${p}`, '192.0.2.7:8126']
    for (const host of hosts) {
      for (const path of ['/', '/api/summary', '/metrics']) assert.equal((await get(agent.port, path, host)).status, 200, `${host} ${path}`)
    }
  })
})

describe('writes: what a page of another origin can send without a preflight', () => {
  let agent: RunningAgent
  const lines: string[] = []
  before(async () => {
    agent = await startAgent({ port: 0, log: (l) => lines.push(l) })
  })
  after(() => agent.close())

  const refused: Array<[string, string[], string]> = [
    ['an Origin of another site', ['Origin: http://evil.example'], 'application/msgpack'],
    ['an Origin on the same host but another port', ['Origin: http://127.0.0.1:1'], 'application/msgpack'],
    ['the Origin of a sandboxed frame', ['Origin: null'], 'application/msgpack'],
    ['Sec-Fetch-Site: cross-site', ['Sec-Fetch-Site: cross-site'], 'application/msgpack'],
    ['Sec-Fetch-Site: same-site', ['Sec-Fetch-Site: same-site'], 'application/msgpack'],
    ['Content-Type text/plain', [], 'text/plain'],
    ['Content-Type text/plain;charset=UTF-8', [], 'text/plain;charset=UTF-8'],
    ['Content-Type application/x-www-form-urlencoded', [], 'application/x-www-form-urlencoded'],
    ['Content-Type multipart/form-data', [], 'multipart/form-data; boundary=x'],
    ['no Content-Type', [], ''],
  ]
  for (const [name, extra, type] of refused) {
    test(`a pipeline_stats POST with ${name}: 403, nothing stored`, async () => {
      const res = await post(agent.port, payload('evil-write'), extra, type)
      assert.equal(res.status, 403, res.text)
      assert.match(res.text, /^a POST (from another origin|from a [a-z-]+ page|with Content-Type .*, which no tracer sends)/)
      const s = await getJson<Summary>(agent.url, '/api/summary')
      assert.ok(!services(s).includes('service:evil-write'))
      assert.equal(s.status.payloads.accepted + s.status.payloads.rejected, 0, 'the intake never saw it')
    })
  }

  test('traces, stats and telemetry writes follow the same rules', async () => {
    const cases: Array<[string, string, number]> = [
      ['PUT /v0.4/traces', 'text/plain', 403],
      ['PUT /v0.6/stats', 'application/x-www-form-urlencoded', 403],
      ['POST /telemetry/proxy/api/v2/apmtelemetry', 'text/plain', 403],
      ['PUT /v0.4/traces', 'application/msgpack', 200],
      ['PUT /v0.6/stats', 'application/msgpack', 202],
      ['POST /telemetry/proxy/api/v2/apmtelemetry', 'application/json', 202],
    ]
    for (const [request, type, status] of cases) {
      const head = [`${request} HTTP/1.1`, `Host: 127.0.0.1:${agent.port}`, `Content-Type: ${type}`]
      const res = await raw(agent.port, head, new Uint8Array([0x90]))
      assert.equal(res.status, status, `${request} ${type}: ${res.text}`)
    }
  })

  test('the same payload as a tracer sends it, or from the agent\'s own origin, is accepted', async () => {
    assert.equal((await post(agent.port, payload('tracer-write'))).status, 200)
    const own = [`Origin: http://127.0.0.1:${agent.port}`, 'Sec-Fetch-Site: same-origin']
    assert.equal((await post(agent.port, payload('own-origin-write'), own)).status, 200)
    const s = await getJson<Summary>(agent.url, '/api/summary')
    assert.ok(services(s).includes('service:tracer-write'))
    assert.ok(services(s).includes('service:own-origin-write'))
    assert.ok(!services(s).includes('service:evil-write'))
    assert.match(lines[0] ?? '', /^answered 403 to POST \/v0\.1\/pipeline_stats: a POST from another origin \(http:\/\/evil\.example\)/)
  })
})

describe('in Chromium', () => {
  let agent: RunningAgent
  let browser: Browser
  let evil: http.Server
  let evilPort: number
  const lines: string[] = []

  before(async () => {
    agent = await startAgent({ port: 0, log: (l) => lines.push(l) })
    // The attacker's page: served by its own server, from a name of its own (mapped to loopback below).
    evil = http.createServer((_req, res) => {
      const body = Buffer.from(payload('evil-page')).toString('base64')
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
      res.end(`<!doctype html><title>evil</title><script>
        const body = Uint8Array.from(atob('${body}'), (c) => c.charCodeAt(0))
        const url = ${JSON.stringify(`${agent.url}/v0.1/pipeline_stats`)}
        const attempt = (init) =>
          fetch(url, { method: 'POST', body, ...init }).then((r) => r.type + ' ' + r.status, (e) => 'error ' + e.message)
        window.results = Promise.all([
          attempt({ mode: 'no-cors', headers: { 'Content-Type': 'text/plain' } }),
          attempt({ mode: 'no-cors' }),
        ])
      </script>`)
    })
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve))
    evilPort = (evil.address() as AddressInfo).port
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--host-resolver-rules=MAP evil.example 127.0.0.1, MAP rebind.example 127.0.0.1',
      ],
    })
  })

  after(async () => {
    await browser?.close()
    await new Promise((resolve) => evil?.close(resolve))
    await agent?.close()
  })

  test('a page of another origin posting pipeline stats (no-cors, text/plain or untyped) gets 403 and stores nothing', async () => {
    const page = await browser.newPage()
    const statuses: number[] = []
    page.on('response', (r) => {
      if (r.url().startsWith(agent.url)) statuses.push(r.status())
    })
    await page.goto(`http://evil.example:${evilPort}/`)
    const results = await page.evaluate(() => (window as unknown as { results: Promise<string[]> }).results)
    await page.close()
    // no-cors answers are opaque to the page whatever the agent said (a POST with another type waits on a preflight the agent never grants)
    assert.deepEqual(results, ['opaque 0', 'opaque 0'])
    // What the agent answered, as the browser's network layer saw it.
    assert.deepEqual(statuses, [403, 403])
    const refusal = `answered 403 to POST /v0.1/pipeline_stats: a POST from another origin (http://evil.example:${evilPort})`
    assert.ok(lines[0]?.startsWith(refusal), lines[0])
    const s = await getJson<Summary>(agent.url, '/api/summary')
    assert.ok(!services(s).includes('service:evil-page'), JSON.stringify(services(s)))
    assert.equal(s.status.payloads.accepted + s.status.payloads.rejected, 0)
  })

  test('a page whose origin comes to be served by the agent (DNS rebinding) reads only 403s', async () => {
    // Rebinding as the browser lives it: the page comes from the attacker's server, then the same
    // origin (name and port) leads to the agent. Both on loopback, where Chromium's own checks on
    // requests into the local network do not apply (other browsers have none).
    const squatter = http.createServer((_req, res) => res.end('<!doctype html><title>rebind</title>'))
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve))
    const port = (squatter.address() as AddressInfo).port
    const page = await browser.newPage()
    await page.goto(`http://rebind.example:${port}/`)
    squatter.closeAllConnections()
    await new Promise((resolve) => squatter.close(resolve))
    const target = await startAgent({ port, log: () => {} })
    try {
      assert.equal((await postStats(target.url, payload('private-svc'))).status, 200)
      const results = await page.evaluate(() =>
        Promise.all(['/api/summary', '/metrics', '/'].map((p) => fetch(p).then(async (r) => [r.status, await r.text()] as [number, string]))),
      )
      for (const [status, text] of results) {
        assert.equal(status, 403)
        assert.match(text, /^Host rebind\.example:\d+ is not one this agent answers to/)
        assert.ok(!text.includes('private-svc'))
      }
    } finally {
      await page.close()
      await target.close()
    }
  })

  test("the agent's own page loads, its API calls succeed, and a same-origin POST is taken", async () => {
    assert.equal((await postStats(agent.url, payload('page-svc'))).status, 200)
    for (const base of [agent.url, `http://localhost:${agent.port}`]) {
      const page = await browser.newPage()
      const failed: string[] = []
      page.on('response', (r) => {
        if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) failed.push(`${r.status()} ${r.url()}`)
      })
      await page.goto(base)
      await page.waitForSelector('[data-node-id="service:page-svc"]', { timeout: 10_000 })
      const status = await page.evaluate(
        async ({ body, headers }) => {
          const bytes = Uint8Array.from(atob(body), (c) => c.charCodeAt(0))
          return (await fetch('/v0.1/pipeline_stats', { method: 'POST', headers, body: bytes })).status
        },
        { body: Buffer.from(payload('same-origin-page')).toString('base64'), headers: STATS_HEADERS },
      )
      await page.close()
      assert.equal(status, 200, base)
      assert.deepEqual(failed, [], base)
    }
    assert.ok(services(await getJson<Summary>(agent.url, '/api/summary')).includes('service:same-origin-page'))
  })
})

describe('tracers are unaffected', () => {
  let agent: RunningAgent
  const lines: string[] = []
  before(async () => {
    agent = await startAgent({ port: 0, log: (l) => lines.push(l) })
  })
  after(() => agent.close())

  test("pathwise's exporter, addressing the agent as localhost and as 127.0.0.1", async () => {
    for (const [service, agentUrl] of [['pw-localhost', `http://localhost:${agent.port}`], ['pw-loopback', agent.url]]) {
      const ds = createDataStreams({ enabled: true, env: 'test', service, agentUrl, flushIntervalMs: 0 })
      try {
        ds.setProduceCheckpoint('kafka', 'pw-topic', {})
        await ds.flush()
      } finally {
        await ds.shutdown()
      }
    }
    const s = await getJson<Summary>(agent.url, '/api/summary')
    assert.ok(services(s).includes('service:pw-localhost'), JSON.stringify(services(s)))
    assert.ok(services(s).includes('service:pw-loopback'))
    assert.deepEqual(lines, [])
  })

  test("dd-trace's DataStreamsProcessor and writer", async () => {
    // As agent-intake.test.ts: loading dd-trace sets up the globals its processor registers with.
    require('dd-trace')
    const { DataStreamsProcessor } = require('dd-trace/packages/dd-trace/src/datastreams/processor.js') as {
      DataStreamsProcessor: new (config: object) => {
        setCheckpoint(tags: string[], span: null, ctx: unknown, size?: number): unknown
        onInterval(): void
        timer?: NodeJS.Timeout
      }
    }
    const config = { dsmEnabled: true, env: 'test', flushInterval: 60_000 }
    const processors = [
      new DataStreamsProcessor({ ...config, url: new URL(`http://localhost:${agent.port}`), service: 'dd-localhost' }),
      new DataStreamsProcessor({ ...config, url: new URL(agent.url), service: 'dd-loopback' }),
    ]
    try {
      for (const p of processors) {
        p.setCheckpoint(['direction:out', 'topic:dd-topic', 'type:kafka'], null, null, 100)
        p.onInterval()
      }
      const deadline = Date.now() + 5000
      let names: string[] = []
      while (!(names.includes('service:dd-localhost') && names.includes('service:dd-loopback')) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50))
        names = services(await getJson<Summary>(agent.url, '/api/summary'))
      }
      assert.ok(names.includes('service:dd-localhost') && names.includes('service:dd-loopback'), JSON.stringify(names))
      assert.deepEqual(lines, [])
    } finally {
      for (const p of processors) clearInterval(p.timer)
    }
  })

  test('a whole dd-trace tracer (traces, telemetry, DSM) logs no error and meets no 403', async () => {
    const before = await getJson<Summary['status']>(agent.url, '/api/status')
    // A child process, so that dd-trace's instrumentation stays out of this one.
    const script = `
      const tracer = require('dd-trace').init({
        url: 'http://localhost:${agent.port}', service: 'dd-app', env: 'test', dsmEnabled: true, flushInterval: 100, startupLogs: false,
      })
      tracer.trace('work', () => tracer.dataStreamsCheckpointer.setProduceCheckpoint('kafka', 'dd-app-topic', {}))
      setTimeout(() => process.exit(0), 1500)
    `
    const env = { ...process.env, DD_TRACE_DEBUG: 'true', DD_TRACE_LOG_LEVEL: 'error' }
    const child = spawn(process.execPath, ['-e', script], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (c: Buffer) => (output += c.toString()))
    child.stderr.on('data', (c: Buffer) => (output += c.toString()))
    assert.equal(await new Promise<number | null>((resolve) => child.on('close', resolve)), 0)
    assert.equal(output, '', 'the tracer logged errors')
    const s = await getJson<Summary>(agent.url, '/api/summary')
    assert.ok(services(s).includes('service:dd-app'))
    assert.ok(s.status.payloads.other > before.payloads.other, 'no trace or telemetry payload arrived')
    assert.deepEqual(lines, [])
  })
})

describe('pathwise agent --allowed-hosts', () => {
  /** The `pathwise agent` command as a user runs it. */
  const cli = (...args: string[]): ChildProcessWithoutNullStreams =>
    spawn(process.execPath, ['--import', 'tsx', 'bindings/cli.ts', 'agent', ...args], { stdio: 'pipe' })

  test('listening on 0.0.0.0: the startup line says which names are answered, and they are', async () => {
    const child = cli('--host', '0.0.0.0', '--port', '0', '--allowed-hosts', 'agent.internal, Other.Internal')
    try {
      let out = ''
      child.stdout.on('data', (c: Buffer) => (out += c.toString()))
      const deadline = Date.now() + 15_000
      while (!out.includes('DNS rebinding') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      assert.ok(
        out.includes('listening on 0.0.0.0, reachable from other machines by IP address, by name only as localhost, agent.internal, other.internal'),
        out,
      )
      assert.match(out, /--allowed-hosts adds names; other names get 403, against DNS rebinding/)
      const port = Number(/listening on http:\/\/0\.0\.0\.0:(\d+)/.exec(out)?.[1])
      assert.equal((await get(port, '/api/summary', `agent.internal:${port}`)).status, 200)
      assert.equal((await get(port, '/api/summary', `other.internal:${port}`)).status, 200)
      assert.equal((await get(port, '/api/summary', `198.51.100.4:${port}`)).status, 200)
      assert.equal((await get(port, '/api/summary', `third.internal:${port}`)).status, 403)
    } finally {
      child.kill('SIGINT')
    }
  })

  test('an entry that is not a host name: a one-line error and exit code 1', async () => {
    const child = cli('--port', '0', '--allowed-hosts', 'http://agent.internal:8126')
    let err = ''
    child.stderr.on('data', (c: Buffer) => (err += c.toString()))
    assert.equal(await new Promise<number | null>((resolve) => child.on('close', resolve)), 1)
    assert.match(err, /^pathwise: allowed hosts: not a host name .*: http:\/\/agent\.internal:8126\n$/)
  })
})
