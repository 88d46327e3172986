/**
 * HTTP hops (bindings/http/): real node:http servers and fetch/node:http clients on loopback.
 * In process: fetch carries the current context only to allowed hosts (never to another), and
 * records `direction:out, type:http` under it; a request already carrying the header, and a
 * tracer's payload to an Agent, are left alone; a server records `direction:in, type:http` for a
 * request carrying the header and makes its context current for the handler and what it starts,
 * and a later request on the same keep-alive connection without it sees no context; the undo,
 * DSM off and a second instrumentation change nothing. In child processes under the automatic mode
 * (DD_DATA_STREAMS_HTTP_ENABLED, PATHWISE_HTTP_ALLOWED_HOSTS): fetch on Node 20 and 24, node:http on
 * Node 24 (Node 20 publishes no channel before a request's headers are written: its requests go as
 * they are); and off without DD_DATA_STREAMS_HTTP_ENABLED. The allow-list's rules, unit by unit.
 * The child processes use the built package: run `npm run build` first.
 */
import assert from 'node:assert/strict'
import dc from 'node:diagnostics_channel'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { createDataStreams, decodePathwayContext, encodePathwayContext, instrumentHttp, type DataStreams } from '../bindings/index.js'
import { AllowedHosts } from '../bindings/http/allowed-hosts.js'
import { node24Binary } from '../bench/node24.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { runNode } from './helpers/run-node.js'
import { ENV, expectedHash, pointsOf, waitForPoint } from './fixtures/aws/pathways.js'

const KEY = 'dd-pathway-ctx-base64'
const OUT = ['direction:out', 'type:http']
const IN = ['direction:in', 'type:http']

interface Arrival {
  path: string
  header: string | undefined
  /** The context current in the handler, and after an await in it. */
  current: (bigint | undefined)[]
}

/** A server that notes what each request carried and what context its handler saw. */
async function startServer(dsm?: DataStreams): Promise<{ server: http.Server; port: number; arrivals: Arrival[] }> {
  const arrivals: Arrival[] = []
  const server = http.createServer((req, res) => {
    const header = req.headers[KEY]
    const arrival: Arrival = { path: req.url ?? '', header: typeof header === 'string' ? header : undefined, current: [dsm?.currentContext()?.hash] }
    arrivals.push(arrival)
    setTimeout(() => {
      arrival.current.push(dsm?.currentContext()?.hash)
      res.end('ok')
    }, 1)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as AddressInfo).port, arrivals }
}

describe('HTTP hops', () => {
  let agent: TestAgent
  before(async () => {
    agent = await startAgent()
  })
  after(() => agent.close())

  const dataStreams = (service: string) => createDataStreams({ enabled: true, service, env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })

  test('fetch: the context goes to an allowed host only, recorded as direction:out, type:http', async () => {
    const dsm = dataStreams('http-fetch')
    const { server, port, arrivals } = await startServer()
    const undo = instrumentHttp(dsm, { allowedHosts: [`127.0.0.1:${port}`] })
    try {
      const start = dsm.setCheckpoint(['direction:in', 'topic:start', 'type:kafka'], null)!
      await dsm.runWithContext(start, async () => {
        await (await fetch(`http://127.0.0.1:${port}/allowed`, { method: 'POST', body: 'twelve bytes' })).text()
        await (await fetch(`http://localhost:${port}/other-name`)).text()
        await (await fetch(`http://127.0.0.1:${port}/mine`, { headers: { [KEY]: 'set-by-the-caller' } })).text()
        await (await fetch(`http://127.0.0.1:${port}/v0.1/pipeline_stats`, { method: 'PUT', headers: { 'Datadog-Meta-Lang': 'go' } })).text()
      })
      const out = expectedHash('http-fetch', OUT, start.hash)
      assert.deepEqual(
        arrivals.map((a) => [a.path, a.header === undefined ? undefined : (decodePathwayContext(a.header)?.hash ?? a.header)]),
        [
          ['/allowed', out],
          ['/other-name', undefined],
          ['/mine', 'set-by-the-caller'],
          ['/v0.1/pipeline_stats', undefined],
        ],
      )
      await dsm.flush()
      const point = await waitForPoint(agent, 'http-fetch', out)
      assert.deepEqual([point.EdgeTags, point.ParentHash], [OUT, start.hash])
      // (The server, in this process too, records the requests that came with a header.)
      assert.equal(pointsOf(agent).filter((p) => p.service === 'http-fetch' && p.EdgeTags.includes('direction:out')).length, 1, 'one hop out: the allowed request')
    } finally {
      undo()
      server.close()
      await dsm.shutdown()
    }
  })

  test('a server: a request with the header continues the pathway in its handler; one without, on the same connection, has no context', async () => {
    const dsm = dataStreams('http-server')
    const { server, port, arrivals } = await startServer(dsm)
    const undo = instrumentHttp(dsm, { allowedHosts: [] })
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const upstream = createDataStreams({ enabled: true, service: 'http-upstream', env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
      const sent = upstream.setCheckpoint(OUT, null)!
      const get = (path: string, headers: Record<string, string>) =>
        new Promise<void>((resolve, reject) => http.get({ host: '127.0.0.1', port, path, agent: keepAlive, headers }, (res) => (res.resume(), res.on('end', resolve))).on('error', reject))
      await get('/with', { [KEY]: encodePathwayContext(sent) })
      await get('/without', {})
      const received = expectedHash('http-server', IN, sent.hash)
      assert.deepEqual(
        arrivals.map((a) => [a.path, a.current]),
        [
          ['/with', [received, received]],
          ['/without', [undefined, undefined]],
        ],
      )
      await dsm.flush()
      const point = await waitForPoint(agent, 'http-server', received)
      assert.deepEqual([point.EdgeTags, point.ParentHash], [IN, sent.hash])
      await upstream.shutdown()
    } finally {
      undo()
      keepAlive.destroy()
      server.close()
      await dsm.shutdown()
    }
  })

  test('the undo unsubscribes; DSM off subscribes nothing; a second instrumentation stands aside', async () => {
    const channels = ['undici:request:create', 'http.client.request.created', 'http.server.request.start'].map((name) => dc.channel(name))
    const before = channels.map((c) => c.hasSubscribers)
    const off = instrumentHttp(createDataStreams({ enabled: false }), { allowedHosts: ['127.0.0.1'] })
    assert.deepEqual(channels.map((c) => c.hasSubscribers), before)
    off()
    const dsm = dataStreams('http-twice')
    const other = dataStreams('http-other')
    const warn = console.warn
    const warnings: string[] = []
    console.warn = (...args: unknown[]) => void warnings.push(args.join(' '))
    const { server, port, arrivals } = await startServer()
    try {
      const undo = instrumentHttp(dsm, { allowedHosts: ['127.0.0.1'] })
      const second = instrumentHttp(other, { allowedHosts: ['127.0.0.1'] })
      assert.ok(warnings.some((w) => w.includes('stands aside')))
      await dsm.runWithContext(dsm.setCheckpoint(['direction:in', 'topic:t', 'type:kafka'], null), async () => (await fetch(`http://127.0.0.1:${port}/once`)).text())
      second()
      undo()
      assert.deepEqual(channels.map((c) => c.hasSubscribers), before)
      await (await fetch(`http://127.0.0.1:${port}/after-undo`)).text()
      assert.deepEqual(
        arrivals.map((a) => [a.path, a.header !== undefined]),
        [
          ['/once', true],
          ['/after-undo', false],
        ],
      )
      await other.flush()
      assert.ok(!pointsOf(agent).some((p) => p.service === 'http-other'))
    } finally {
      console.warn = warn
      server.close()
      await Promise.all([dsm.shutdown(), other.shutdown()])
    }
  })

  describe('the automatic mode, in child processes', () => {
    let node24: string
    before(async () => {
      node24 = await node24Binary(() => {})
    })

    for (const version of ['20', '24'] as const) {
      test(`Node ${version}: fetch${version === '24' ? ' and node:http' : ''} carry the context to the allowed host only`, async () => {
        const { server, port, arrivals } = await startServer()
        try {
          const service = `http-auto-${version}`
          const result = await runNode(
            ['--import', 'pathwise/register', 'test/fixtures/http/client.mjs'],
            {
              DD_DATA_STREAMS_ENABLED: 'true',
              DD_DATA_STREAMS_HTTP_ENABLED: 'true',
              PATHWISE_HTTP_ALLOWED_HOSTS: `127.0.0.1:${port}`,
              DD_SERVICE: service,
              DD_ENV: ENV,
              DD_TRACE_AGENT_URL: agent.url,
              URL_ALLOWED: `http://127.0.0.1:${port}`,
              URL_OTHER: `http://localhost:${port}`,
            },
            40_000,
            version === '24' ? node24 : process.execPath,
          )
          assert.equal(result.code, 0, result.stderr)
          const { start, node } = JSON.parse(result.stdout) as { start: string; node: string }
          assert.ok(node.startsWith(`v${version}.`))
          const out = expectedHash(service, OUT, decodePathwayContext(start)!.hash)
          assert.deepEqual(
            arrivals.map((a) => [a.path, a.header === undefined ? undefined : decodePathwayContext(a.header)?.hash]),
            [
              ['/fetch', out],
              ['/http', version === '24' ? out : undefined],
              ['/fetch', undefined],
              ['/http', undefined],
            ],
          )
          await waitForPoint(agent, service, out)
        } finally {
          server.close()
        }
      })
    }

    test('without DD_DATA_STREAMS_HTTP_ENABLED, nothing is sent', async () => {
      const { server, port, arrivals } = await startServer()
      try {
        const result = await runNode(['--import', 'pathwise/register', 'test/fixtures/http/client.mjs'], {
          DD_DATA_STREAMS_ENABLED: 'true',
          PATHWISE_HTTP_ALLOWED_HOSTS: '127.0.0.1',
          DD_SERVICE: 'http-auto-off',
          DD_TRACE_AGENT_URL: agent.url,
          URL_ALLOWED: `http://127.0.0.1:${port}`,
          URL_OTHER: `http://localhost:${port}`,
        })
        assert.equal(result.code, 0, result.stderr)
        assert.deepEqual(arrivals.map((a) => a.header), [undefined, undefined, undefined, undefined])
      } finally {
        server.close()
      }
    })
  })

  test('the allow-list: names, ports, wildcards, IPv6, case', () => {
    const hosts = new AllowedHosts(['Billing.Internal', 'orders.internal:8080', '*.svc.cluster.local', '[::1]:9000', '10.0.0.5', 'bad:port', '*', ''])
    const cases: [string, number, boolean][] = [
      ['billing.internal', 443, true],
      ['BILLING.internal', 80, true],
      ['orders.internal', 8080, true],
      ['orders.internal', 8081, false],
      ['a.svc.cluster.local', 80, true],
      ['svc.cluster.local', 80, false],
      ['evil-svc.cluster.local', 80, false],
      ['::1', 9000, true],
      ['[::1]', 9000, true],
      ['::1', 9001, false],
      ['10.0.0.5', 1234, true],
      ['api.stripe.com', 443, false],
      ['bad', 80, false],
    ]
    assert.deepEqual(
      cases.map(([host, port]) => [host, port, hosts.allows(host, port)]),
      cases,
    )
    assert.equal(new AllowedHosts([]).empty, true)
  })
})
