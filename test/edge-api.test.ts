/**
 * The edge entry's API, run in Node from source: the Headers helpers, and `createDataStreams`
 * with explicit context, configuration from `vars` only, no flush timer unless asked for, a
 * flush that resolves once the Agent has the payload, and the Wasm module handed over.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  PATHWAY_KEY,
  PathwayContext,
  createDataStreams,
  encodePathwayContext as encoded,
  extractFromHeaders,
  injectIntoHeaders,
  type DataStreams,
} from '../bindings/edge.js'
import { moduleBytes } from '../bindings/wasm/module-bytes.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'

const ctx = new PathwayContext(0x89abcdef, 0x01234567, 1_700_000_000_123.7, 1_700_000_001_456.2)

describe('Headers helpers', () => {
  test('inject then extract gives the context back (whole milliseconds on the wire)', () => {
    const headers = new Headers()
    injectIntoHeaders(headers, ctx)
    assert.match(headers.get(PATHWAY_KEY)!, /^[A-Za-z0-9+/]{27}=$/)
    const read = extractFromHeaders(headers)
    assert.ok(read)
    assert.equal(read.hash, ctx.hash)
    assert.equal(read.pathwayStartMs, 1_700_000_000_123)
    assert.equal(read.edgeStartMs, 1_700_000_001_456)
  })

  test('reads the header whatever its case, from a Request', () => {
    const request = new Request('http://example.test/', { headers: { 'DD-Pathway-Ctx-Base64': encoded(ctx) } })
    assert.equal(extractFromHeaders(request.headers)?.hash, ctx.hash)
  })

  test('a repeated header reads its last value; injecting replaces', () => {
    const other = new PathwayContext(1, 2, 1_700_000_000_000, 1_700_000_000_000)
    const headers = new Headers()
    headers.append(PATHWAY_KEY, encoded(other))
    headers.append(PATHWAY_KEY, encoded(ctx))
    assert.equal(extractFromHeaders(headers)?.hash, ctx.hash)
    injectIntoHeaders(headers, other)
    assert.equal(headers.get(PATHWAY_KEY), encoded(other))
  })

  test('no header or a malformed one reads as no context', () => {
    assert.equal(extractFromHeaders(new Headers()), null)
    for (const bad of ['', 'not base64!', 'AAAA', encoded(ctx).slice(0, 12)]) {
      assert.equal(extractFromHeaders(new Headers({ [PATHWAY_KEY]: bad })), null, bad)
    }
  })

  test('a null context writes nothing, and immutable headers do not throw', () => {
    const headers = new Headers()
    injectIntoHeaders(headers, null)
    assert.equal(headers.get(PATHWAY_KEY), null)
    const immutable = Response.error().headers
    const warn = console.warn
    const warnings: unknown[] = []
    console.warn = (...args: unknown[]) => void warnings.push(args)
    try {
      assert.doesNotThrow(() => injectIntoHeaders(immutable, ctx))
      injectIntoHeaders(immutable, ctx)
    } finally {
      console.warn = warn
    }
    assert.equal(immutable.get(PATHWAY_KEY), null)
    assert.equal(warnings.length, 1, 'warned once')
  })
})

describe('createDataStreams (edge)', () => {
  let agent: TestAgent
  const open: DataStreams[] = []
  const make = (options: Parameters<typeof createDataStreams>[0]) => {
    const dsm = createDataStreams(options)
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

  test('reads DD_* from vars only, never from the process environment', () => {
    const saved = process.env.DD_SERVICE
    process.env.DD_SERVICE = 'from-process-env'
    try {
      assert.equal(make({}).enabled, false)
      assert.equal(make({ enabled: true }).service, 'unnamed-javascript-service')
      const dsm = make({ vars: { DD_DATA_STREAMS_ENABLED: 'true', DD_SERVICE: 'from-vars', DD_ENV: 'staging' } })
      assert.deepEqual([dsm.enabled, dsm.service, dsm.env], [true, 'from-vars', 'staging'])
      // `env` stays the Datadog environment, as in the Node entry
      assert.equal(make({ enabled: true, env: 'prod', vars: { DD_ENV: 'staging' } }).env, 'prod')
    } finally {
      if (saved === undefined) delete process.env.DD_SERVICE
      else process.env.DD_SERVICE = saved
    }
  })

  test('the context is explicit: nothing is current, and a checkpoint without a parent starts a pathway', () => {
    const dsm = make({ enabled: true, service: 'explicit', agentUrl: agent.url })
    const consumed = dsm.setConsumeCheckpoint('http', 'orders', { [PATHWAY_KEY]: encoded(ctx) })
    assert.ok(consumed)
    assert.equal(dsm.currentContext(), undefined)
    assert.equal(dsm.runWithContext(consumed, () => dsm.currentContext()), undefined)
    const fresh = dsm.setCheckpoint(['direction:out', 'topic:billing', 'type:http'])
    const chained = dsm.setCheckpoint(['direction:out', 'topic:billing', 'type:http'], consumed)
    assert.ok(fresh && chained)
    assert.notEqual(fresh.hash, chained.hash)
    assert.equal(chained.pathwayStartMs, consumed.pathwayStartMs)
  })

  test('no flush timer unless flushIntervalMs is given', () => {
    const setInterval = globalThis.setInterval
    let timers = 0
    globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
      timers++
      return setInterval(...args)
    }) as typeof setInterval
    try {
      make({ enabled: true, agentUrl: agent.url })
      assert.equal(timers, 0)
      make({ enabled: true, agentUrl: agent.url, flushIntervalMs: 10_000 })
      assert.equal(timers, 1)
    } finally {
      globalThis.setInterval = setInterval
    }
  })

  test('flush resolves once the Agent has the payload, as waitUntil needs', async () => {
    const dsm = make({ enabled: true, service: 'edge-flush', agentUrl: agent.url })
    dsm.setProduceCheckpoint('http', 'orders', {})
    await dsm.flush()
    assert.equal(agent.payloads.filter((p) => p.Service === 'edge-flush').length, 1)
  })

  test('runs the Wasm core handed over as a WebAssembly.Module, or the TS core when asked', () => {
    const wasmModule = new WebAssembly.Module(moduleBytes())
    assert.equal(make({ enabled: true, wasmModule }).backend, 'wasm')
    assert.equal(make({ enabled: true, wasmModule, core: 'ts' }).backend, 'ts')
    assert.equal(make({ enabled: true }).backend, 'wasm', 'the embedded bytes where the runtime compiles them')
    assert.equal(make({}).backend, null)
  })
})
