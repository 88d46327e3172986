/**
 * The parent side of the hostile-input suite: runs a group of properties in a child process
 * (test/fixtures/hostile/child.ts) under a watchdog. The child names each case on fd 3 before it
 * starts; a case that takes longer than the limit is a hang: the child is killed, the property
 * fails naming that case, and a new child goes on with the properties not run yet. A child that
 * dies otherwise fails the property it was in, the same way.
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import type { ChildMessage } from '../fixtures/hostile/harness.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const CHILD = fileURLToPath(new URL('../fixtures/hostile/child.ts', import.meta.url))
const OUTPUT_TAIL = 4_000

export interface HostileRun {
  group: string
  core: 'wasm' | 'ts'
  agentUrl: string
  numRuns: number
  seed: number
  /** A case taking longer than this is a hang. */
  caseTimeoutMs: number
  /** Loading, and the flush at the end, get this long. */
  setupTimeoutMs: number
}

export interface PropertyOutcome {
  name: string
  runs: number
  errors: string[]
}

interface ChildRun {
  results: PropertyOutcome[]
  /** The property running when the child was killed or died, with what happened to it. */
  cut?: PropertyOutcome
  done: boolean
  output: string
}

export async function runHostileGroup(run: HostileRun): Promise<PropertyOutcome[]> {
  const outcomes = new Map<string, PropertyOutcome>()
  for (;;) {
    const child = await runChild(run, [...outcomes.keys()])
    for (const r of child.results) {
      const known = outcomes.get(r.name)
      if (known === undefined) outcomes.set(r.name, r)
      else known.errors.push(...r.errors)
    }
    if (child.done) break
    if (child.cut === undefined || outcomes.has(child.cut.name)) {
      throw new Error(`the ${run.group} child (${run.core} core) stopped outside any property:\n${child.output}`)
    }
    outcomes.set(child.cut.name, child.cut)
  }
  return [...outcomes.values()]
}

function runChild(run: HostileRun, skip: string[]): Promise<ChildRun> {
  const args = ['--import', 'tsx', CHILD, run.group, run.core, run.agentUrl, String(run.numRuns), String(run.seed)]
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', HOSTILE_SKIP: JSON.stringify(skip) },
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  })
  let output = ''
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-OUTPUT_TAIL))
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)

  const result: ChildRun = { results: [], done: false, output: '' }
  const pending = new Map<string, PropertyOutcome>()
  let current: PropertyOutcome | undefined
  let label: string | undefined
  let since = Date.now()
  let cut: string | undefined

  createInterface({ input: child.stdio[3] as Readable }).on('line', (line) => {
    const m = JSON.parse(line) as ChildMessage
    since = Date.now()
    if (m.t === 'prop') {
      current = { name: m.name, runs: 0, errors: [] }
      pending.set(m.name, current)
    } else if (m.t === 'start') {
      label = m.label
      if (current !== undefined) current.runs++
    } else if (m.t === 'end') {
      label = undefined
    } else if (m.t === 'result') {
      const p = pending.get(m.name) ?? { name: m.name, runs: m.runs, errors: [] }
      if (m.error !== undefined) p.errors.push(m.error)
      result.results.push(p)
      current = undefined
    } else if (m.t === 'async-error') {
      const error = `an error reached the event loop (pathwise threw asynchronously): ${m.error}`
      const p = pending.get(m.name)
      if (p !== undefined) p.errors.push(error)
      else result.results.push({ name: '(outside the properties)', runs: 0, errors: [error] })
    } else if (m.t === 'done') {
      result.done = true
    }
  })

  const watchdog = setInterval(() => {
    const limit = label === undefined ? run.setupTimeoutMs : run.caseTimeoutMs
    if (Date.now() - since <= limit) return
    cut = label === undefined ? `no progress within ${limit} ms outside a case` : `hang: a case ran over ${limit} ms: ${label}`
    child.kill('SIGKILL')
  }, 100)

  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      clearInterval(watchdog)
      result.output = (cut === undefined ? '' : cut + '\n') + output
      if (!result.done && current !== undefined) {
        // Exit code 13: an awaited promise never settled and nothing was left to run.
        const how = code === 13 ? 'a promise that never settles' : signal ?? `exit code ${code}`
        const why = cut ?? `the child died (${how}) during case: ${label ?? '(between cases)'}\n${output}`
        result.cut = { ...current, errors: [...current.errors, why] }
      }
      resolve(result)
    })
  })
}
