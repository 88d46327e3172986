/** The `pathwise` bin, run as a user would (through tsx, as before a build): `agent` and `top`. */
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { after, before, describe, test } from 'node:test'
import { startAgent, type RunningAgent } from '../src/server.js'
import { pathwisePayload, postStats } from './helpers/agent-fixtures.js'
import { pipelineBucket } from './helpers/agent-pipeline.js'

function cli(...args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', 'tsx', 'bindings/cli.ts', ...args], { stdio: 'pipe' })
}

/** Resolves with everything printed once `pattern` appears in stdout. */
function waitForOutput(child: ChildProcessWithoutNullStreams, pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`no ${pattern} in: ${out}`)), timeoutMs)
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (pattern.test(out)) {
        clearTimeout(timer)
        resolve(out)
      }
    })
  })
}

function exit(child: ChildProcessWithoutNullStreams): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })))
}

describe('pathwise top', () => {
  let agent: RunningAgent
  before(async () => {
    // A fixed clock: one closed bucket of 20 messages is 2 messages per second, whenever the test runs.
    const start = Date.UTC(2026, 0, 1, 12, 0, 0)
    agent = await startAgent({ port: 0, log: () => {}, now: () => start + 15_000 })
    for (const p of pipelineBucket(start, 20).payloads) {
      if (p.service === 'orders-api') p.buckets[0].backlogs = [{ tags: ['partition:0', 'topic:orders', 'type:kafka_produce'], value: 500 }]
      if (p.service === 'billing') p.buckets[0].backlogs = [{ tags: ['consumer_group:billing', 'partition:0', 'topic:orders', 'type:kafka_commit'], value: 470 }]
      assert.equal((await postStats(agent.url, pathwisePayload(p.service, p.buckets))).status, 200)
    }
  })
  after(() => agent.close())

  test('--once prints one frame: edges with throughput and p99, pathways, lag', async () => {
    const { code, stdout } = await exit(cli('top', '--once', '--agent', agent.url))
    assert.equal(code, 0)
    const lines = stdout.split('\n')
    assert.match(lines[0], /^pathwise top · http:\/\/127\.0\.0\.1:\d+ · last 60 s/)
    assert.ok(lines.some((l) => /^EDGE\s+MSG\/S\s+P50\s+P95\s+P99/.test(l)))
    const edge = lines.find((l) => l.startsWith('kafka:orders → billing [billing]'))
    assert.match(edge ?? '', /\s2\.0\s+[\d.]+ ms\s+[\d.]+ ms\s+[\d.]+ ms\s+100 B\s+30$/)
    assert.ok(lines.some((l) => l.startsWith('orders-api → kafka:orders → billing → sqs:invoices → mailer ')))
    assert.ok(lines.some((l) => l.includes('aggregator (≈)')))
    assert.ok(lines.some((l) => /^billing\s+orders\s+0\s+30\s+\?$/.test(l)), stdout)
  })

  test('refreshes until q is pressed, then exits cleanly', async () => {
    const child = cli('top', '--agent', agent.url, '--interval', '0.2')
    const done = exit(child)
    const first = await waitForOutput(child, /EDGE[\s\S]*EDGE/)
    assert.ok(first.includes('\x1b[H\x1b[2J'), 'frames are redrawn in place')
    child.stdin.write('q')
    const { code } = await done
    assert.equal(code, 0)
  })

  test('--once against no agent: a one-line error and exit code 1', async () => {
    const { code, stderr } = await exit(cli('top', '--once', '--agent', 'http://127.0.0.1:9'))
    assert.equal(code, 1)
    assert.match(stderr, /^pathwise top: cannot read http:\/\/127\.0\.0\.1:9/)
  })
})

describe('pathwise agent', () => {
  test('starts on the given port, serves, and stops on SIGINT', async () => {
    const child = cli('agent', '--port', '0', '--window', '10m')
    const done = exit(child)
    const out = await waitForOutput(child, /listening on (http:\/\/127\.0\.0\.1:\d+)/)
    const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]
    const status = (await (await fetch(`${url}/api/status`)).json()) as { windowSeconds: number }
    assert.equal(status.windowSeconds, 600)
    assert.equal((await fetch(`${url}/info`)).status, 200)
    child.kill('SIGINT')
    assert.equal((await done).code, 0)
  })

  test('every command answers --help (and -h) with its usage, exit 0, through the library\'s bin and the agent\'s own', async () => {
    const own = (...args: string[]): ChildProcessWithoutNullStreams => spawn(process.execPath, ['--import', 'tsx', 'agent/src/bin.ts', ...args], { stdio: 'pipe' })
    for (const run of [cli, own]) {
      for (const [args, usage] of [
        [['agent', '--help'], /^ {2}pathwise agent \[options\][\s\S]*--prometheus URL[\s\S]*Durations:/m],
        [['top', '--help'], /^ {2}pathwise top \[options\][\s\S]*--once/m],
        [['agent', '-h'], /^ {2}pathwise agent \[options\]/m],
        [['top', '--once', '-h'], /^ {2}pathwise top \[options\]/m],
        [['--help'], /pathwise agent \[options\][\s\S]*pathwise top \[options\]/],
      ] as const) {
        const { code, stdout, stderr } = await exit(run(...args))
        assert.equal(code, 0, `${args.join(' ')}: ${stderr}`)
        assert.match(stdout, usage, args.join(' '))
        assert.equal(stderr, '')
      }
    }
    // Only its own usage.
    const { stdout } = await exit(cli('top', '--help'))
    assert.doesNotMatch(stdout, /pathwise agent \[options\]/)
  })

  test('an unknown command prints the usage and exits with 2', async () => {
    const { code, stderr } = await exit(cli('frobnicate'))
    assert.equal(code, 2)
    assert.match(stderr, /unknown command: frobnicate[\s\S]*pathwise agent \[options\]/)
  })
})
