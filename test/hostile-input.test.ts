/**
 * Hostile input, property-based: every public entry point of pathwise (the `pathwise` and
 * `pathwise/edge` exports, the DataStreams methods, the core, the Kafka wrappers, the AWS
 * middleware, the NATS wrappers, the HTTP channels' subscribers, the RabbitMQ wrappers (amqplib, rhea), the BullMQ instrumentation, the automatic mode's patching of whatever module loads under a client's name) called with what an adversarial user can hand over (throwing getters, Proxies that
 * throw on every trap, revoked Proxies, objects whose toString/valueOf/Symbol.toPrimitive throw,
 * Symbols, null-prototype objects, NaN, ±Infinity, -0, huge numbers, strings and buffers of MBs,
 * length bombs, sparse arrays, cycles, random JSON and bytes, wrong types), mixed with valid input.
 * No call may throw into the caller or hang; a call handed on to a client reaches it unchanged
 * apart from the pathway context, and the caller gets the client's answer. Each group runs in a
 * child process under a watchdog (test/helpers/hostile-watchdog.ts), with the Wasm core and with
 * the TS core. Afterwards the DataStreams that went through it all flush to a real pathwise
 * agent, which must accept every payload, and the sketches in them must decode: with Datadog's
 * @datadog/sketches-js, or with the agent's own reader where they are in the sparse form the agent
 * asked for.
 *
 * HOSTILE_RUNS (runs per property, default 150) and HOSTILE_SEED (default: new each run, printed
 * with any failure) tune it.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { after, before, describe, test } from 'node:test'
import { gunzipSync } from 'node:zlib'
import { decode } from '@msgpack/msgpack'
import { runHostileGroup, type PropertyOutcome } from './helpers/hostile-watchdog.js'
import { startRecordingProxy, type RecordingProxy } from './helpers/recording-proxy.js'
import { decodeEitherForm } from './helpers/sketches.js'

const RUNS = Number(process.env.HOSTILE_RUNS ?? 150)
const SEED = Number(process.env.HOSTILE_SEED ?? Math.floor(Math.random() * 2 ** 31))
const CASE_TIMEOUT_MS = 5_000
/** Loading a group (tsx, the clients) and flushing at its end. */
const SETUP_TIMEOUT_MS = 60_000

type Core = 'wasm' | 'ts'
/** The groups whose cases go through a DataStreams, which flushes to the agent at the end. */
const FLUSHING = ['api-node', 'api-edge', 'kafkajs', 'confluent', 'aws', 'nats', 'http', 'rabbitmq', 'bullmq']
const GROUPS = [...FLUSHING, 'core'].flatMap((group) => (['wasm', 'ts'] as Core[]).map((core) => ({ group, core })))

/** The real agent, `pathwise agent` run as a user would. */
async function startPathwiseAgent(): Promise<{ url: string; child: ChildProcessWithoutNullStreams }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bindings/cli.ts', 'agent', '--port', '0'], { stdio: 'pipe' })
  let out = ''
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the agent did not start: ${out}`)), 30_000)
    child.stderr.on('data', (chunk: Buffer) => (out += chunk))
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (m !== null) {
        clearTimeout(timer)
        resolve(m[1])
      }
    })
  })
  return { url, child }
}

/** Runs the groups, at most as many at once as there are CPUs. */
function runAll(recorderUrl: string): Map<string, Promise<PropertyOutcome[]>> {
  const runs = new Map<string, Promise<PropertyOutcome[]>>()
  let slots = Math.max(1, availableParallelism())
  const waiting: (() => void)[] = []
  const slot = async () => {
    if (slots > 0) slots--
    else await new Promise<void>((resolve) => waiting.push(resolve))
  }
  const release = () => (waiting.length > 0 ? waiting.shift()!() : slots++)
  for (const { group, core } of GROUPS) {
    const run = (async () => {
      await slot()
      try {
        return await runHostileGroup({
          group,
          core,
          agentUrl: recorderUrl,
          numRuns: RUNS,
          seed: SEED,
          caseTimeoutMs: CASE_TIMEOUT_MS,
          setupTimeoutMs: SETUP_TIMEOUT_MS,
        })
      } finally {
        release()
      }
    })()
    // Awaited by its test; a rejection is reported there.
    run.catch(() => {})
    runs.set(`${group}/${core}`, run)
  }
  return runs
}

interface Payload {
  Service: string
  Stats: { Stats: { EdgeTags: string[]; PathwayLatency: Uint8Array; EdgeLatency: Uint8Array; PayloadSize: Uint8Array }[] }[]
}

describe(`hostile input (seed ${SEED}, ${RUNS} runs a property)`, () => {
  let agent: { url: string; child: ChildProcessWithoutNullStreams }
  let recorder: RecordingProxy
  let runs: Map<string, Promise<PropertyOutcome[]>>

  before(async () => {
    agent = await startPathwiseAgent()
    recorder = await startRecordingProxy(agent.url)
    runs = runAll(recorder.url)
  })
  after(async () => {
    await Promise.allSettled(runs.values())
    await recorder.close()
    agent.child.kill('SIGINT')
  })

  for (const { group, core } of GROUPS) {
    test(`${group}, ${core} core: no call throws or hangs`, async (t) => {
      const outcomes = await runs.get(`${group}/${core}`)!
      assert.ok(outcomes.length > 0, 'no property ran')
      for (const o of outcomes) {
        await t.test(`${o.name} (${o.runs} runs)`, () => {
          if (o.errors.length > 0) assert.fail(`${o.errors.join('\n\n')}\n(HOSTILE_SEED=${SEED})`)
        })
      }
    })
  }

  test('the agent accepted every flush, and the sketches decode: with @datadog/sketches-js, or with the agent’s reader in the sparse form', async () => {
    await Promise.allSettled(runs.values())
    const services = new Set<string>()
    let points = 0
    for (const request of recorder.forwarded) {
      assert.ok(request.status >= 200 && request.status < 300, `the agent answered ${request.status}`)
      const payload = decode(gunzipSync(request.body), { useBigInt64: true }) as Payload
      services.add(payload.Service)
      for (const bucket of payload.Stats) {
        for (const point of bucket.Stats) {
          points++
          for (const bytes of [point.PathwayLatency, point.EdgeLatency, point.PayloadSize]) {
            const sketch = decodeEitherForm(bytes)
            assert.ok(sketch.count >= 1, `an empty sketch in ${point.EdgeTags.join(',')}`)
            for (const q of [0, 0.5, 1]) {
              const v = sketch.quantile(q)
              assert.ok(Number.isFinite(v) && v >= 0, `quantile ${q} is ${v} in ${point.EdgeTags.join(',')}`)
            }
          }
        }
      }
    }
    const expected = FLUSHING.flatMap((group) => ['wasm', 'ts'].map((core) => `hostile-${group}-${core}`))
    for (const service of expected) assert.ok(services.has(service), `nothing came from ${service}`)
    assert.ok(points > 0, 'no stats point reached the agent')
  })
})
