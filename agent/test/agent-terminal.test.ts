import assert from 'node:assert/strict'
import { afterEach, describe, test } from 'node:test'
import { printable } from '../src/terminal.js'
import { pathwisePayload, postStats } from './helpers/agent-fixtures.js'
import { killAgentProcesses, runBin, startAgentProcess } from './helpers/agent-process.js'

/** What tracers name things reaches the terminal without driving it. */

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
