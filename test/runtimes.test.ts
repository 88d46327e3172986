/**
 * The edge runtimes the tests use (test/runtimes/harness.ts), without pathwise: workerd, Deno and
 * Bun each serve test/runtimes/fixtures/smoke.js, run Wasm (or have none when started without it),
 * gzip with CompressionStream and POST to a local Agent stand-in, and stop when told to.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import { startBun, startDeno, startWorkerd, type RunningRuntime } from './runtimes/harness.js'
import { ADD_WASM } from './runtimes/fixtures/smoke.js'

const SMOKE = fileURLToPath(new URL('./runtimes/fixtures/smoke.js', import.meta.url))
const SMOKE_WORKERD = fileURLToPath(new URL('./runtimes/fixtures/smoke-workerd.js', import.meta.url))

interface Posted {
  method: string | undefined
  headers: IncomingHttpHeaders
  body: Buffer
}

// Stands in for the Datadog Agent: records each POST under its x-smoke-label.
const posted = new Map<string, Posted>()
const agent = createServer((request, response) => {
  const chunks: Buffer[] = []
  request.on('data', (chunk: Buffer) => chunks.push(chunk))
  request.on('end', () => {
    posted.set(String(request.headers['x-smoke-label']), {
      method: request.method,
      headers: request.headers,
      body: Buffer.concat(chunks),
    })
    response.end('accepted')
  })
})
let bindings: { AGENT_URL: string }

before(async () => {
  await new Promise<void>((resolve) => agent.listen(0, '127.0.0.1', resolve))
  bindings = { AGENT_URL: `http://127.0.0.1:${(agent.address() as AddressInfo).port}/v0.1/pipeline_stats` }
})

after(async () => {
  agent.closeAllConnections()
  await new Promise((resolve) => agent.close(resolve))
})

interface Case {
  label: string
  start(): Promise<RunningRuntime>
  wasm: boolean
  /**
   * Workers (and so workerd) refuse `WebAssembly.instantiate(bytes)`: wasm
   * code must come in as a `.wasm` module, a `WebAssembly.Module`.
   */
  wasmFromBytesRefused?: boolean
  /** add(40, 2) through a `.wasm` module import (workerd only). */
  wasmModuleImport?: number
}

const cases: Case[] = [
  {
    label: 'workerd',
    wasm: true,
    wasmFromBytesRefused: true,
    wasmModuleImport: 42,
    start: () =>
      startWorkerd({
        program: SMOKE_WORKERD,
        modules: [
          { name: 'smoke.js', path: SMOKE },
          { name: 'add.wasm', contents: ADD_WASM },
        ],
        bindings,
      }),
  },
  { label: 'deno', wasm: true, start: () => startDeno({ program: SMOKE, bindings }) },
  { label: 'bun', wasm: true, start: () => startBun({ program: SMOKE, bindings }) },
  { label: 'workerd-no-wasm', wasm: false, start: () => startWorkerd({ program: SMOKE, bindings, wasm: false }) },
  { label: 'deno-no-wasm', wasm: false, start: () => startDeno({ program: SMOKE, bindings, wasm: false }) },
  { label: 'bun-no-wasm', wasm: false, start: () => startBun({ program: SMOKE, bindings, wasm: false }) },
]

// Each case has its own runtime process and label, so they can run at once.
describe('edge runtimes', { concurrency: true }, () => {
  for (const c of cases) {
    test(`${c.label}: serves, ${c.wasm ? 'runs wasm' : 'has no WebAssembly'}, gzips and posts to the agent`, async () => {
      const runtime = await c.start()
      try {
        const response = await fetch(`${runtime.url}/?label=${c.label}`)
        const text = await response.text()
        assert.equal(response.status, 200, `${text}\n${runtime.output()}`)
        const { wasmError, ...report } = JSON.parse(text) as { wasmError: string | null }
        if (c.wasmFromBytesRefused) assert.match(String(wasmError), /Wasm code generation disallowed by embedder/)
        else assert.equal(wasmError, null)
        assert.deepEqual(report, {
          label: c.label,
          webAssembly: c.wasm ? 'object' : 'undefined',
          add: c.wasm && !c.wasmFromBytesRefused ? 5 : null,
          compressionStream: 'function',
          agentStatus: 200,
          agentBody: 'accepted',
          ...(c.wasmModuleImport === undefined ? {} : { wasmModuleImport: c.wasmModuleImport }),
        })

        const post = posted.get(c.label)
        assert.ok(post, `the agent got nothing from ${c.label}`)
        assert.equal(post.method, 'POST')
        assert.equal(post.headers['content-encoding'], 'gzip')
        assert.equal(gunzipSync(post.body).toString('utf8'), `hello from ${c.label}`)
      } finally {
        await runtime.stop()
      }
      await assert.rejects(fetch(runtime.url), 'the runtime still answers after stop()')
    })
  }
})
