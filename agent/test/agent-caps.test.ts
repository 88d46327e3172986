/**
 * The store's caps, set by flag: points past them are answered 200 (a tracer could do nothing
 * else) but counted in /api/status and said in the log, which a user would otherwise never learn.
 */
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import type { Status } from '../src/views/api.js'
import { getJson, pathwisePayload, postStats } from './helpers/agent-fixtures.js'
import { killAgentProcesses, startAgentProcess, waitFor } from './helpers/agent-process.js'

after(killAgentProcesses)

test('--max-series caps the series; the points past it are counted and logged', async () => {
  const agent = await startAgentProcess('--max-series', '2')
  const startMs = Date.now() - (Date.now() % 10_000)
  for (let i = 0; i < 3; i++) {
    const payload = pathwisePayload(`svc-${i}`, [{ startMs, points: [{ tags: ['direction:out', `topic:t${i}`, 'type:kafka'], hash: BigInt(i + 1), edge: [0.001] }] }])
    assert.equal((await postStats(agent.url, payload)).status, 200)
  }
  const status = await getJson<Status>(agent.url, '/api/status')
  assert.equal(status.series, 2)
  assert.equal(status.points.dropped, 1)
  await waitFor('the log line', () => agent.stderr(), (text) => /dropped 1 points past the caps \(2 series of --max-series 2/.test(text))
  agent.child.kill('SIGTERM')
  await agent.exited
})

test('a cap that is not a number is refused at start', async () => {
  const agent = startAgentProcess('--max-cells', 'lots')
  await assert.rejects(agent, /exited with 2/)
})
