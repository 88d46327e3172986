/**
 * The built edge entry (dist/edge.js) in the real runtimes: workerd, Deno and Bun each serve the
 * Worker of test/fixtures/edge/handler.js on 127.0.0.1. Node writes a pathway context, the worker
 * consumes it and produces from it, Node consumes what the worker returns; the hash chain across
 * the runtimes is checked against hashes computed independently (dd-trace's FNV-1), and so is
 * what each side flushed to a test Agent, on the Wasm core and on the pure-TS fallback.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { PATHWAY_KEY, VERSION, createDataStreams, decodePathwayContext } from '../bindings/index.js'
import { startAgent, type DecodedPayload, type DecodedPoint } from './helpers/agent-server.js'
import { expectedHash } from './helpers/expected-hash.js'
import { decodeSketch } from './helpers/sketches.js'
import { startBun, startDeno, startWorkerd, type RunningRuntime } from './runtimes/harness.js'


const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/edge/${name}`, import.meta.url))
const built = (name: string) => fileURLToPath(new URL(`../dist/${name}`, import.meta.url))

/** workerd resolves no packages: the built files go in as modules named as the Worker imports them. */
function workerdModules(withWasm: boolean) {
  return [
    { name: 'handler.js', path: fixture('handler.js') },
    { name: 'pathwise', path: built('edge.js') },
    ...(withWasm ? [{ name: 'pathwise/pathwise.wasm', path: built('pathwise.wasm') }] : []),
  ]
}

interface Case {
  label: string
  /** The core the worker must report. */
  backend: 'wasm' | 'ts'
  webAssembly: 'object' | 'undefined'
  start(bindings: Record<string, string>): Promise<RunningRuntime>
}

const cases: Case[] = [
  {
    label: 'workerd',
    backend: 'wasm',
    webAssembly: 'object',
    start: (bindings) => startWorkerd({ program: fixture('worker-workerd.js'), modules: workerdModules(true), bindings }),
  },
  { label: 'deno', backend: 'wasm', webAssembly: 'object', start: (bindings) => startDeno({ program: fixture('worker.js'), bindings }) },
  { label: 'bun', backend: 'wasm', webAssembly: 'object', start: (bindings) => startBun({ program: fixture('worker.js'), bindings }) },
  // what `import 'pathwise'` gives in Bun
  {
    label: 'bun-node-build',
    backend: 'wasm',
    webAssembly: 'object',
    start: (bindings) => startBun({ program: fixture('worker-bun-node.js'), bindings }),
  },
  // workerd refuses to compile the embedded bytes: without the module handed over, the TS core stands in
  {
    label: 'workerd-embedded-bytes',
    backend: 'ts',
    webAssembly: 'object',
    start: (bindings) => startWorkerd({ program: fixture('worker-workerd-embedded.js'), modules: workerdModules(false), bindings }),
  },
  {
    label: 'workerd-no-wasm',
    backend: 'ts',
    webAssembly: 'undefined',
    start: (bindings) =>
      startWorkerd({ program: fixture('worker-workerd-embedded.js'), modules: workerdModules(false), bindings, wasm: false }),
  },
  {
    label: 'deno-no-wasm',
    backend: 'ts',
    webAssembly: 'undefined',
    start: (bindings) => startDeno({ program: fixture('worker.js'), bindings, wasm: false }),
  },
  {
    label: 'bun-no-wasm',
    backend: 'ts',
    webAssembly: 'undefined',
    start: (bindings) => startBun({ program: fixture('worker.js'), bindings, wasm: false }),
  },
]

const manualTags = (direction: 'in' | 'out', topic: string) => [`direction:${direction}`, `topic:${topic}`, 'type:http', 'manual_checkpoint:true']
const pointsOf = (payload: DecodedPayload) => payload.Stats.flatMap((b) => b.Stats)

/** The one point of `payload` with these edge tags, checked against the expected hashes. */
function assertPoint(payload: DecodedPayload, tags: string[], hash: bigint, parent: bigint): DecodedPoint {
  const matching = pointsOf(payload).filter((p) => p.EdgeTags.join() === [...tags].sort().join())
  assert.equal(matching.length, 1, `one point ${tags} in ${payload.Service}`)
  const point = matching[0]
  assert.equal(point.Hash, hash, `Hash of ${tags} in ${payload.Service}`)
  assert.equal(point.ParentHash, parent, `ParentHash of ${tags} in ${payload.Service}`)
  assert.equal(point.TimestampType, 'current')
  for (const sketch of [point.PathwayLatency, point.EdgeLatency, point.PayloadSize]) assert.equal(decodeSketch(sketch).count, 1)
  return point
}

// Each case has its own runtime, Agent and services, so they run at once.
describe('pathwise/edge in workerd, Deno and Bun', { concurrency: true }, () => {
  for (const c of cases) {
    test(`${c.label}: consumes and produces with the ${c.backend} core, returns the context and flushes`, async () => {
      assert.ok(existsSync(built('edge.js')) && existsSync(built('pathwise.wasm')), 'dist/ is missing: npm run build')
      const agent = await startAgent()
      const service = `worker-${c.label}`
      const origin = createDataStreams({ enabled: true, service: `origin-${c.label}`, env: 'test', agentUrl: agent.url, flushIntervalMs: 0 })
      const sink = createDataStreams({ enabled: true, service: `sink-${c.label}`, env: 'test', agentUrl: agent.url, flushIntervalMs: 0 })
      let runtime: RunningRuntime | undefined
      try {
        runtime = await c.start({
          DD_DATA_STREAMS_ENABLED: 'true',
          DD_SERVICE: service,
          DD_ENV: 'edge',
          DD_VERSION: '2.0.0',
          DD_TAGS: `runtime:${c.label}`,
          DD_TRACE_AGENT_URL: agent.url,
        })

        const carrier: Record<string, string> = {}
        const sent = origin.setProduceCheckpoint('http', 'orders', carrier)
        assert.ok(sent)
        const before = Date.now()
        const response = await fetch(runtime.url, { method: 'POST', headers: carrier, body: 'x'.repeat(500) })
        const after = Date.now()
        const text = await response.text()
        assert.equal(response.status, 200, `${text}\n${runtime.output()}`)
        assert.deepEqual(JSON.parse(text), { backend: c.backend, webAssembly: c.webAssembly })

        const h1 = expectedHash(`origin-${c.label}`, 'test', manualTags('out', 'orders'), 0n)
        const h2 = expectedHash(service, 'edge', manualTags('in', 'orders'), h1)
        const h3 = expectedHash(service, 'edge', manualTags('out', 'billing'), h2)
        const h4 = expectedHash(`sink-${c.label}`, 'test', manualTags('in', 'billing'), h3)
        assert.equal(sent.hash, h1)

        const header = response.headers.get(PATHWAY_KEY)
        const returned = decodePathwayContext(header)
        assert.ok(returned, `no context in the worker's answer: ${header}\n${runtime.output()}`)
        assert.equal(returned.hash, h3)
        assert.equal(returned.pathwayStartMs, Math.floor(sent.pathwayStartMs), 'the pathway start travels unchanged')
        // the produce checkpoint happened while Node waited for the answer (the wire has whole ms)
        assert.ok(returned.edgeStartMs >= Math.floor(before) && returned.edgeStartMs <= after, `edge start ${returned.edgeStartMs}`)

        const received = sink.setConsumeCheckpoint('http', 'billing', { [PATHWAY_KEY]: header })
        assert.equal(received?.hash, h4)
        await Promise.all([origin.flush(), sink.flush()])

        const services = [service, `origin-${c.label}`, `sink-${c.label}`]
        await agent.waitFor((ps) => services.every((s) => ps.some((p) => p.Service === s)), 10_000).catch((err: Error) => {
          throw new Error(`${err.message}\n${runtime?.output()}`)
        })
        const byService = (s: string) => agent.payloads.find((p) => p.Service === s)!

        const worker = byService(service)
        assert.deepEqual(
          { Env: worker.Env, Version: worker.Version, Lang: worker.Lang, TracerVersion: worker.TracerVersion, Tags: worker.Tags },
          { Env: 'edge', Version: '2.0.0', Lang: 'javascript', TracerVersion: VERSION, Tags: [`runtime:${c.label}`] },
        )
        // the consume and the produce checkpoints fall in one bucket, or in two when a 10 s boundary passes between them
        assert.ok(worker.Stats.length >= 1 && worker.Stats.length <= 2, `buckets: ${worker.Stats.length}`)
        for (const bucket of worker.Stats) {
          assert.equal(bucket.Duration, 10_000_000_000n)
          assert.equal(bucket.Start % 10_000_000_000n, 0n)
          assert.deepEqual(bucket.Backlogs, [])
        }
        assert.equal(pointsOf(worker).length, 2)
        const consumed = assertPoint(worker, manualTags('in', 'orders'), h2, h1)
        assertPoint(worker, manualTags('out', 'billing'), h3, h2)
        const size = decodeSketch(consumed.PayloadSize).quantile(0.5)
        assert.ok(Math.abs(size - 500) <= 500 * 0.01, `payload size ${size}`)
        const edgeLatency = decodeSketch(consumed.EdgeLatency).quantile(0.5)
        assert.ok(edgeLatency >= 0 && edgeLatency <= (after - sent.edgeStartMs) / 1000 + 0.01, `edge latency ${edgeLatency}`)

        // one request each from Node's two services and the worker (whose gzip is CompressionStream's)
        assert.equal(agent.requests.length, 3)
        for (const request of agent.requests) {
          assert.equal(request.path, '/v0.1/pipeline_stats')
          assert.equal(request.headers['content-encoding'], 'gzip')
          assert.equal(request.headers['content-type'], 'application/msgpack')
          assert.equal(request.headers['datadog-meta-lang'], 'javascript')
          assert.equal(request.headers['datadog-meta-tracer-version'], VERSION)
        }

        assertPoint(byService(`origin-${c.label}`), manualTags('out', 'orders'), h1, 0n)
        assertPoint(byService(`sink-${c.label}`), manualTags('in', 'billing'), h4, h3)
      } finally {
        await runtime?.stop()
        await Promise.all([origin.shutdown(), sink.shutdown()])
        await agent.close()
      }
    })
  }
})
