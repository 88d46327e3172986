/** terminal/: what tracers name things reaches the terminal without driving it (printable.ts), and `pathwise top`'s frame fits it (top.ts). */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fc from 'fast-check'
import { fileURLToPath } from 'node:url'
import { after, afterEach, before, describe, test } from 'node:test'
import type { Summary } from '../src/views/api.js'
import { startAgent, type RunningAgent } from '../src/server.js'
import { printable } from '../src/terminal/printable.js'
import { frameWidth, render } from '../src/terminal/top.js'
import { getJson, pathwisePayload, postStats } from './helpers/agent-fixtures.js'
import { killAgentProcesses, runBin, startAgentProcess } from './helpers/agent-process.js'
import { pipelineBucket } from './helpers/agent-pipeline.js'

describe('terminal output', () => {
  afterEach(killAgentProcesses)

  test('printable drops escape sequences whole, and every C0, DEL and C1 code', () => {
    const cases: Array<[string, string]> = [
      ['orders\x1b]0;pwned\x07-api\x1b[2J', 'orders-api'], // OSC ended by BEL (sets the title), CSI (clears the screen)
      ['a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\', 'alink'], // OSC ended by ST (a hyperlink)
      ['\x1b[1;31mred\x1b[0m', 'red'],
      ['x\x9b2Jy\x9d0;t\x9cz', 'xyz'], // the 8-bit CSI and OSC
      ['title\x1b]0;never ended', 'title'], // a terminal swallows an unterminated string too
      ['reset\x1bc\x1b(B', 'reset'], // other escapes, with an intermediate
      ['line\nforged\r\ttab\x00\x7f\x85', 'lineforgedtab'],
      ['csi cut\x1b[12', 'csi cut12'],
      ['kafka:orders → billing · p99 ≈ 3 ms … é 日本', 'kafka:orders → billing · p99 ≈ 3 ms … é 日本'],
    ]
    for (const [input, output] of cases) assert.equal(printable(input), output, JSON.stringify(input))
  })

  test('pathwise top --once: a service and a topic named with escape sequences print as their printable rest', async () => {
    const agent = await startAgentProcess()
    const hostile = pathwisePayload('evil\x1b]0;pwned\x07-svc\x1b[2J', [
      { startMs: Date.now() - (Date.now() % 10_000), points: [{ tags: ['direction:out', 'topic:ord\x9b2Jers\x1b[5m', 'type:kafka'], hash: 7n, edge: [0.01] }] },
    ])
    assert.equal((await postStats(agent.url, hostile)).status, 200)
    const top = runBin('top', '--once', '--agent', agent.url)
    let stdout = ''
    top.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    assert.equal(await new Promise((resolve) => top.on('close', resolve)), 0)
    agent.child.kill('SIGTERM')
    await agent.exited
    assert.doesNotMatch(stdout, /[\x00-\x09\x0b-\x1f\x7f-\x9f]/, JSON.stringify(stdout))
    assert.match(stdout, /^evil-svc → kafka:orders\s/m)
  })
})

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** `pathwise-agent top …args` with exactly `env` (plus PATH), its output piped; resolves with what it printed. */
function top(env: Record<string, string>, ...args: string[]): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'agent/src/bin.ts', 'top', ...args], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'pipe' })
  let stdout = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout })))
}

const width = (line: string): number => [...line].length
/** The rows of the table under the header starting with `title`, up to the blank line after it. */
function rows(frame: string, title: string): string[] {
  const lines = frame.split('\n')
  const start = lines.findIndex((l) => l.startsWith(title))
  assert.ok(start >= 0, `no ${title} table in:\n${frame}`)
  const end = lines.indexOf('', start)
  return lines.slice(start + 1, end)
}
const LATENCY = String.raw`(?:[\d.]+ m?s|—)`
/** A pathway row ends with its rate and three latencies. */
const PATHWAY_ROW = new RegExp(String.raw`\s\d+(?:\.\d)?\s+${LATENCY}\s+${LATENCY}\s+${LATENCY}$`)

describe('pathwise top: the frame fits the terminal', () => {
  let agent: RunningAgent
  let summary: Summary
  before(async () => {
    const start = Date.UTC(2026, 0, 1, 12, 0, 0)
    agent = await startAgent({ port: 0, log: () => {}, now: () => start + 25_000 })
    const { payloads } = pipelineBucket(start, 20)
    // A service with a long name, so that names must be cut.
    for (const p of payloads) if (p.service === 'mailer') p.service = 'transactional-email-notification-dispatcher'
    for (const p of payloads) assert.equal((await postStats(agent.url, pathwisePayload(p.service, p.buckets))).status, 200)
    summary = await getJson<Summary>(agent.url, '/api/summary')
  })
  after(() => agent.close())

  test('--once at 80 columns: every pathway row keeps its rate and latencies, names cut with an ellipsis', async () => {
    const { code, stdout } = await top({ COLUMNS: '80' }, '--once', '--agent', agent.url)
    assert.equal(code, 0)
    for (const line of stdout.split('\n')) assert.ok(width(line) <= 80, `${width(line)} columns: ${line}`)
    const pathways = rows(stdout, 'PATHWAY')
    assert.equal(pathways.length, summary.pathways.length)
    for (const row of pathways) assert.match(row, PATHWAY_ROW)
    const mailer = pathways.find((r) => r.includes('dispatcher'))
    assert.ok(mailer, stdout)
    // Cut in the middle: the first producer and the consumer both show.
    assert.match(mailer, /^orders-api → .*….*-dispatcher\s/)
    const expected = summary.pathways.find((p) => p.service.startsWith('transactional'))!
    assert.ok(mailer.includes(` ${expected.rate.toFixed(1)} `), mailer)
    // Edges keep their rate and p99 too.
    for (const row of rows(stdout, 'EDGE')) assert.match(row, new RegExp(String.raw`\s\d+\.\d\s.*${LATENCY}`))
    assert.doesNotMatch(stdout, /q quits/)
  })

  test('piped with COLUMNS unset: 120 columns, and no "q quits"', async () => {
    const { code, stdout } = await top({}, '--once', '--agent', agent.url)
    assert.equal(code, 0)
    const widest = Math.max(...stdout.split('\n').map(width))
    assert.equal(widest, 120, stdout)
    assert.doesNotMatch(stdout, /q quits/)
    assert.equal(frameWidth({ isTTY: false, columns: 0 } as never, {}), 120)
    assert.equal(frameWidth({ isTTY: false, columns: 0 } as never, { COLUMNS: 'wide' }), 120)
    assert.equal(frameWidth({ isTTY: true, columns: 100 } as never, { COLUMNS: '80' }), 100)
  })

  test('live and piped: frames without "q quits"; in a terminal (a pseudo-terminal 80 columns wide): "q quits", and q quits', async () => {
    const piped = spawn(process.execPath, ['--import', 'tsx', 'agent/src/bin.ts', 'top', '--agent', agent.url, '--interval', '0.2'], { cwd: ROOT, stdio: 'pipe' })
    let frames = ''
    piped.stdout.on('data', (c: Buffer) => (frames += c.toString()))
    await until(() => (frames.match(/PATHWAY/g) ?? []).length >= 2, () => frames)
    piped.kill('SIGINT')
    await new Promise((resolve) => piped.on('close', resolve))
    assert.doesNotMatch(frames, /q quits/)

    // util-linux's script runs top on a pseudo-terminal: stdin and stdout are a TTY there.
    const command = `stty cols 80 rows 50; exec '${process.execPath}' --import tsx agent/src/bin.ts top --agent '${agent.url}' --interval 0.2`
    const tty = spawn('script', ['-qfec', command, '/dev/null'], { cwd: ROOT, stdio: 'pipe' })
    let screen = ''
    tty.stdout.on('data', (c: Buffer) => (screen += c.toString()))
    await until(() => /q quits[\s\S]*PATHWAY[\s\S]*\n\s*\n/.test(screen), () => screen)
    tty.stdin.write('q')
    const code = await new Promise((resolve) => tty.on('close', resolve))
    assert.equal(code, 0)
    const frame = screen.slice(screen.lastIndexOf('\x1b[H\x1b[2J') + 7).replace(/\x1b\[[\d;?]*[a-zA-Z]/g, '')
    for (const line of frame.split(/\r?\n/)) assert.ok(width(line) <= 80, `${width(line)} columns: ${line}`)
    for (const row of rows(frame.replace(/\r/g, ''), 'PATHWAY')) assert.match(row, PATHWAY_ROW)
  })
})

describe('pathwise top: hostile input', () => {
  test('any width and any names: a frame of at most that many columns, never a throw', () => {
    const name = fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }), fc.constant('x'.repeat(20_000)))
    const quantiles = fc.option(fc.record({ p50: fc.double(), p95: fc.double(), p99: fc.double() }))
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.array(fc.tuple(name, name, fc.double(), quantiles), { maxLength: 6 }), fc.boolean(), (columns, hops, interactive) => {
        const summary = {
          now: 0,
          rangeSeconds: 60,
          nodes: [],
          edges: hops.map(([from, to, rate, latency]) => ({ id: from, from, to, kind: 'produce', type: 'kafka', count: 1, filling: 0, rate, latency, payloadSize: latency })),
          pathways: hops.map(([from, to, rate, latency]) => ({ id: from, nodes: [from, to], service: to, count: 1, filling: 0, rate, latency, approximate: false, complete: true })),
          lag: [],
          status: { payloads: { accepted: 0, rejected: 0 } },
        } as unknown as Summary
        const frame = render(summary, 'http://127.0.0.1:8126', columns, interactive)
        for (const line of frame.split('\n')) assert.ok(width(line) <= columns, `${width(line)} > ${columns}`)
        assert.doesNotMatch(frame.split('\n').slice(1).join('\n'), /[\x00-\x09\x0b-\x1f\x7f-\x9f]/)
      }),
      { numRuns: 200 },
    )
  })

  test('any COLUMNS: a width from 1 to 1000', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.integer().map(String), fc.double().map(String)), fc.boolean(), fc.integer({ min: -5, max: 5000 }), (columns, isTTY, ttyColumns) => {
        const w = frameWidth({ isTTY, columns: ttyColumns } as never, { COLUMNS: columns })
        assert.ok(Number.isInteger(w) && w >= 1 && (isTTY || w <= 1000), String(w))
      }),
    )
  })
})

async function until(ok: () => boolean, what: () => string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!ok()) {
    assert.ok(Date.now() < deadline, `timed out; got:\n${what()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
