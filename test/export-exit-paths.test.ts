/**
 * Stats delivered on every way a process ends, in real child processes using the built package:
 * for each way of ending (a natural end, process.exit, an uncaught exception, an unhandled
 * rejection under each --unhandled-rejections mode, SIGTERM and SIGINT with no handler, a SIGTERM
 * handler that calls process.exit or that lets the process end by itself), in the manual API and
 * the automatic mode, ESM and CommonJS, every checkpoint recorded before the end reaches a real
 * HTTP Agent, from two DataStreams at once (in the automatic mode, two copies of pathwise); the
 * exit code, the signal and the output are those of the same program without pathwise; and an
 * Agent that never answers holds no end longer than the exit bound.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { gunzipSync } from 'node:zlib'
import { after, before, describe, test } from 'node:test'
import { decode } from '@msgpack/msgpack'
import fc from 'fast-check'
import { resolveConfig } from '../bindings/api/config.js'
import { BUN, appDir, type AppDir } from './helpers/app-dir.js'
import { startAgent, type DecodedPayload, type TestAgent } from './helpers/agent-server.js'
import { decodeSketch } from './helpers/sketches.js'

/**
 * The application: records checkpoints on two DataStreams, says `ready`, then ends as ENDING says.
 * MODE none loads no pathwise at all: the reference. The same body serves ESM and CommonJS.
 */
const BODY = `
const env = process.env
async function main() {
  // awaited either way, so that what comes after runs after an await (the same stack traces) with or without pathwise
  const pathwise = await (env.MODE === 'none' ? undefined : load())
  const first = env.MODE === 'auto' ? pathwise.autoInstrumentation().dsm : pathwise?.createDataStreams()
  const second = pathwise?.createDataStreams({ service: env.DD_SERVICE + '-2' })
  const topics = Number(env.TOPICS)
  let recorded = 0
  const record = (n) => {
    for (const end = recorded + n; recorded < end; recorded++) {
      ;(recorded % 2 === 0 ? first : second)?.setProduceCheckpoint('kafka', 't' + (Math.floor(recorded / 2) % topics), {})
    }
  }
  record(Number(env.COUNT))
  const ready = () => process.stdout.write('ready\\n')
  const waitForSignal = () => setInterval(() => {}, 1000)
  switch (env.ENDING) {
    case 'natural':
      return ready()
    case 'exit-code':
      ready()
      process.exitCode = 7
      return
    case 'exit':
      ready()
      process.exit(0)
    case 'flush-exit':
      await first?.flush()
      ready()
      process.exit(0)
    case 'throw':
      ready()
      setTimeout(() => {
        throw new Error('boom')
      })
      return
    case 'exception-handler':
      process.on('uncaughtException', (err) => {
        console.error('handled:', err.message)
        process.exitCode = 2
      })
      ready()
      setTimeout(() => {
        throw new Error('boom')
      })
      return
    case 'reject':
      ready()
      Promise.reject(new Error('rejected'))
      return
    case 'signal': {
      waitForSignal()
      return ready()
    }
    case 'signal-exit': {
      // a library that ends the process on a signal only where its listeners are the only ones
      waitForSignal()
      const { onExit } = await import(env.SIGNAL_EXIT)
      onExit((code, signal) => console.log('signal-exit saw', signal))
      return ready()
    }
    case 'handler-exit': {
      waitForSignal()
      process.on('SIGTERM', async () => {
        await new Promise((resolve) => setTimeout(resolve, 50)) // producer.disconnect()
        process.exit(0)
      })
      return ready()
    }
    case 'handler-own': {
      const keepAlive = waitForSignal()
      process.on('SIGTERM', () => {
        record(Number(env.EXTRA))
        clearInterval(keepAlive)
      })
      return ready()
    }
  }
}
main()
`
const ESM = `const load = () => import('pathwise')\n${BODY}`
const CJS = `const load = async () => require('pathwise')\n${BODY}`

const SIGNAL_EXIT = pathToFileURL(createRequire(import.meta.url).resolve('signal-exit')).href

/** Checkpoints a SIGTERM handler of its own records after the signal ('handler-own'). */
const EXTRA = 6
/** PATHWISE_EXIT_TIMEOUT_MS's default. */
const EXIT_BOUND_MS = 2000
/** A hang detector, not a speed: an end held past the bound by this much fails. */
const SLACK_MS = 3000

interface Ending {
  name: string
  ending: string
  /** Node flags, before the script. */
  flags?: string[]
  /** Sent once the child says ready. */
  signal?: NodeJS.Signals
}

const ENDINGS: Ending[] = [
  { name: 'natural end', ending: 'natural' },
  { name: 'natural end, process.exitCode = 7', ending: 'exit-code' },
  { name: 'process.exit(0) right after producing', ending: 'exit' },
  { name: 'await dsm.flush(); process.exit(0)', ending: 'flush-exit' },
  { name: 'uncaught exception', ending: 'throw' },
  { name: "uncaught exception, the app's own uncaughtException listener", ending: 'exception-handler' },
  { name: 'unhandled rejection', ending: 'reject' },
  { name: 'unhandled rejection, --unhandled-rejections=strict', ending: 'reject', flags: ['--unhandled-rejections=strict'] },
  { name: 'unhandled rejection, --unhandled-rejections=warn', ending: 'reject', flags: ['--unhandled-rejections=warn'] },
  { name: 'unhandled rejection, --unhandled-rejections=warn-with-error-code', ending: 'reject', flags: ['--unhandled-rejections=warn-with-error-code'] },
  { name: 'unhandled rejection, --unhandled-rejections=none', ending: 'reject', flags: ['--unhandled-rejections=none'] },
  { name: 'SIGTERM, no handler', ending: 'signal', signal: 'SIGTERM' },
  { name: 'SIGINT, no handler', ending: 'signal', signal: 'SIGINT' },
  { name: 'SIGTERM, only signal-exit listening (as under execa, write-file-atomic)', ending: 'signal-exit', signal: 'SIGTERM' },
  { name: 'a SIGTERM handler that calls process.exit(0)', ending: 'handler-exit', signal: 'SIGTERM' },
  { name: 'a SIGTERM handler that lets the process end', ending: 'handler-own', signal: 'SIGTERM' },
]

type Kind = 'esm' | 'cjs'
interface Mode {
  name: string
  kind: Kind
  mode: 'manual' | 'auto'
  /** The executable: Node, or Bun (where `import 'pathwise'` is the Node build). */
  runtime: string
}
const MODES: Mode[] = [
  { name: 'manual API, ESM', kind: 'esm', mode: 'manual', runtime: process.execPath },
  { name: 'manual API, CommonJS', kind: 'cjs', mode: 'manual', runtime: process.execPath },
  { name: '--import pathwise/register', kind: 'esm', mode: 'auto', runtime: process.execPath },
  { name: '-r pathwise/register', kind: 'cjs', mode: 'auto', runtime: process.execPath },
  { name: 'Bun, manual API', kind: 'esm', mode: 'manual', runtime: BUN },
]

interface Ended {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** From `ready` to the end. */
  endingMs: number
}

/** Runs the application once; the signal, if any, goes when it says ready. Killed after 30 s (a hang). */
function runApp(dir: string, runtime: string, kind: Kind, mode: Mode['mode'] | 'none', ending: Ending, env: Record<string, string>): Promise<Ended> {
  const script = kind === 'esm' ? 'app.mjs' : 'app.cjs'
  const register = mode !== 'auto' ? [] : kind === 'esm' ? ['--import', 'pathwise/register'] : ['-r', 'pathwise/register']
  return new Promise((resolve, reject) => {
    const child = spawn(runtime, [...(ending.flags ?? []), ...register, script], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1', MODE: mode, ENDING: ending.ending, EXTRA: String(EXTRA), SIGNAL_EXIT, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let readyAt = 0
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk
      if (readyAt === 0 && stdout.includes('ready\n')) {
        readyAt = Date.now()
        if (ending.signal !== undefined) child.kill(ending.signal)
      }
    })
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.once('error', reject)
    child.once('close', (code, signal) => {
      clearTimeout(killer)
      resolve({ code, signal, stdout, stderr, endingMs: readyAt === 0 ? NaN : Date.now() - readyAt })
    })
  })
}

/** At most `limit` children at a time: the machine is shared. */
function pool(limit: number): <T>(job: () => Promise<T>) => Promise<T> {
  let running = 0
  const waiting: (() => void)[] = []
  return async (job) => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve))
    running++
    try {
      return await job()
    } finally {
      running--
      waiting.shift()?.()
    }
  }
}

/** Checkpoints recorded per `service|topic`, as the application records them. */
function expected(service: string, count: number, topics: number): Map<string, number> {
  const out = new Map<string, number>()
  for (let i = 0; i < count; i++) {
    const key = `${i % 2 === 0 ? service : `${service}-2`}|t${Math.floor(i / 2) % topics}`
    out.set(key, (out.get(key) ?? 0) + 1)
  }
  return out
}

/** Checkpoints delivered per `service|topic` for these services: the count of each point's pathway latency sketch. */
function delivered(payloads: DecodedPayload[], services: string[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const payload of payloads) {
    if (!services.includes(payload.Service)) continue
    for (const bucket of payload.Stats) {
      for (const point of bucket.Stats) {
        const topic = point.EdgeTags.find((t) => t.startsWith('topic:'))?.slice('topic:'.length)
        const key = `${payload.Service}|${topic}`
        out.set(key, (out.get(key) ?? 0) + decodeSketch(point.PathwayLatency).count)
      }
    }
  }
  return out
}

/** Payloads a hanging Agent read in full but never answered. */
function received(agent: TestAgent): DecodedPayload[] {
  return agent.requests
    .filter((r) => r.path === '/v0.1/pipeline_stats' && r.body.byteLength > 0)
    .map((r) => decode(gunzipSync(r.body), { useBigInt64: true }) as DecodedPayload)
}

describe('stats delivered on every way a process ends', { concurrency: true }, () => {
  let app: AppDir
  let ok: TestAgent
  let hanging: TestAgent
  // children waiting on a silent Agent use no CPU: 8 at a time keep both cores busy without crowding them
  const limit = pool(8)
  const references = new Map<string, Promise<Ended>>()
  /** The same program without pathwise, run once per runtime, module kind and ending. */
  const reference = ({ runtime, kind }: Mode, ending: Ending): Promise<Ended> => {
    const key = `${runtime} ${kind} ${ending.name}`
    let run = references.get(key)
    if (run === undefined) references.set(key, (run = limit(() => runApp(app.dir, runtime, kind, 'none', ending, { COUNT: '10', TOPICS: '1' }))))
    return run
  }
  // The size of each run, drawn per case: checkpoints and topics, over two DataStreams.
  const sizes = fc.sample(fc.record({ count: fc.integer({ min: 2, max: 400 }), topics: fc.integer({ min: 1, max: 30 }) }), { numRuns: ENDINGS.length * MODES.length * 2, seed: 21 })
  let drawn = 0

  before(async () => {
    app = await appDir({ 'app.mjs': ESM, 'app.cjs': CJS })
    ok = await startAgent()
    hanging = await startAgent({ mode: 'hang' })
  })
  after(async () => {
    await Promise.all([ok.close(), hanging.close(), app.remove()])
  })

  for (const mode of MODES) {
    // Bun takes no --unhandled-rejections
    for (const ending of mode.runtime === BUN ? ENDINGS.filter((e) => e.flags === undefined) : ENDINGS) {
      // The bound is checked in one mode of each module kind (the exit path does not depend on how
      // pathwise was loaded), and not after `await dsm.flush()`, which waits for an answer as long as
      // any caller's flush does (the Agent's deadlines), by design.
      const bounded = mode.kind === 'esm' ? mode.mode === 'manual' : mode.mode === 'auto'
      const agentKinds = bounded && ending.ending !== 'flush-exit' ? (['answering', 'never answering'] as const) : (['answering'] as const)
      for (const agentKind of agentKinds) {
        const size = sizes[drawn]
        const service = `exit${drawn++}`
        test(`${mode.name}: ${ending.name}, ${agentKind} Agent`, async () => {
          const agent = agentKind === 'answering' ? ok : hanging
          const [ended, without] = await Promise.all([
            limit(() =>
              runApp(app.dir, mode.runtime, mode.kind, mode.mode, ending, {
                DD_DATA_STREAMS_ENABLED: 'true',
                DD_SERVICE: service,
                DD_TRACE_AGENT_URL: agent.url,
                // Against the answering Agent, what is checked is delivery: a bound no loaded machine reaches
                ...(agentKind === 'answering' ? { PATHWISE_EXIT_TIMEOUT_MS: '20000' } : {}),
                COUNT: String(size.count),
                TOPICS: String(size.topics),
              }),
            ),
            reference(mode, ending),
          ])
          const context = `${JSON.stringify(size)}\n--- stderr:\n${ended.stderr}\n--- without pathwise:\n${without.stderr}`
          assert.deepEqual([ended.code, ended.signal], [without.code, without.signal], context)
          const count = size.count + (ending.ending === 'handler-own' ? EXTRA : 0)
          const services = [service, `${service}-2`]
          if (agentKind === 'answering') {
            // Node's own output (the error it prints, its warnings) as without pathwise, and nothing of pathwise's
            assert.equal(ended.stdout, without.stdout)
            assert.equal(ended.stderr.replaceAll(/\d+/g, 'N'), without.stderr.replaceAll(/\d+/g, 'N'), context)
            assert.deepEqual(delivered(ok.payloads, services), expected(service, count, size.topics), context)
          } else {
            assert.ok(ended.endingMs < EXIT_BOUND_MS + SLACK_MS, `the end took ${ended.endingMs} ms\n${context}`)
            // every checkpoint was sent, though never confirmed
            assert.deepEqual(delivered(received(hanging), services), expected(service, count, size.topics), context)
          }
        })
      }
    }
  }
})

/** Counts the process listeners pathwise may add, as the program goes; pathwise is imported only after the first count. */
const LISTENERS = `
import { createRequire } from 'node:module'
const counts = () => ['beforeExit', 'exit', 'SIGTERM', 'SIGINT'].map((event) => process.listenerCount(event))
const report = { atStart: counts() }
const { createDataStreams, autoInstrumentation } = await import('pathwise')
const esm = createDataStreams()
const cjs = createRequire(import.meta.url)('pathwise').createDataStreams()
report.created = counts()
await Promise.all([esm.shutdown(), cjs.shutdown()])
report.shutDown = counts()
await autoInstrumentation()?.dsm.shutdown()
report.allShutDown = counts()
console.log(JSON.stringify(report))
`

describe('the exit listeners', () => {
  test('the bound: exitTimeoutMs, else PATHWISE_EXIT_TIMEOUT_MS, else 2000 ms; what is not a positive number counts as not given', () => {
    const bound = (options: object, env: Record<string, string>) => resolveConfig(options, env).exitTimeoutMs
    assert.equal(bound({}, {}), EXIT_BOUND_MS)
    assert.equal(bound({}, { PATHWISE_EXIT_TIMEOUT_MS: '750' }), 750)
    assert.equal(bound({ exitTimeoutMs: 5000 }, { PATHWISE_EXIT_TIMEOUT_MS: '750' }), 5000)
    for (const bad of [0, -1, NaN, Infinity, '300', null]) assert.equal(bound({ exitTimeoutMs: bad }, {}), EXIT_BOUND_MS, String(bad))
    for (const bad of ['', 'soon', '-5', '0']) assert.equal(bound({}, { PATHWISE_EXIT_TIMEOUT_MS: bad }), EXIT_BOUND_MS, bad)
  })

  test('one set for every DataStreams and copy of pathwise, gone after the last shutdown; none with DSM off', async () => {
    const app = await appDir({ 'app.mjs': LISTENERS })
    try {
      const runWith = (args: string[], enabled: boolean) =>
        new Promise<Record<string, number[]>>((resolve, reject) => {
          const child = spawn(process.execPath, [...args, 'app.mjs'], {
            cwd: app.dir,
            env: { ...process.env, DD_DATA_STREAMS_ENABLED: String(enabled), DD_TRACE_AGENT_URL: 'http://127.0.0.1:9' },
            stdio: ['ignore', 'pipe', 'inherit'],
          })
          let out = ''
          child.stdout.on('data', (chunk: Buffer) => (out += chunk))
          child.once('error', reject)
          child.once('close', (code) => (code === 0 ? resolve(JSON.parse(out) as Record<string, number[]>) : reject(new Error(`exited with ${code}`))))
        })
      const [off, on] = await Promise.all([runWith([], false), runWith(['--import', 'pathwise/register'], true)])
      const none = off.atStart
      const one = none.map((n) => n + 1)
      assert.deepEqual(off, { atStart: none, created: none, shutDown: none, allShutDown: none })
      // the register bundle's DataStreams, then two more from the ESM and CommonJS builds: still one set
      assert.deepEqual(on, { atStart: one, created: one, shutDown: one, allShutDown: none })
    } finally {
      await app.remove()
    }
  })
})
