/**
 * BullMQ queue depths (views/queue-jobs.ts, views/lag.ts queueLag): pathwise's BullMQ
 * instrumentation samples how many jobs a queue holds waiting, delayed, active and failed, and
 * sends them as `queue_depth` backlogs. The agent shows them on the queue's node, its waiting jobs
 * as the lag of the queue's consume edges (in seconds at the consumers' rate), keeps them across a
 * restart with `--db`, and leaves them out of the Kafka offsets of `/metrics`. Payloads go to the
 * agent over HTTP, as tracers send them.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Summary } from '../src/views/api.js'
import { startAgent, type RunningAgent } from '../src/server.js'
import { getJson, pathwisePayload, postStats } from './helpers/agent-fixtures.js'

const B = Date.UTC(2026, 0, 1, 12, 0, 0)

const depth = (queue: string, state: string, value: number) => ({ tags: ['type:queue_depth', 'queue_type:bullmq', `topic:${queue}`, `state:${state}`], value })

async function send(agent: RunningAgent, service: string, startMs: number, points: { tags: string[]; hash: bigint; parent?: bigint; edge: number[] }[], backlogs: ReturnType<typeof depth>[]): Promise<void> {
  const res = await postStats(agent.url, pathwisePayload(service, [{ startMs, points, backlogs }]))
  assert.equal(res.status, 200, res.text)
}

describe('queue depths (BullMQ)', () => {
  let dir: string
  let agent: RunningAgent
  let s: Summary
  const options = () => ({ port: 0, log: () => {}, now: () => B + 25_000, db: join(dir, 'history.sqlite') })

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pathwise-queue-depth-'))
    agent = await startAgent(options())
    const ten = Array.from({ length: 20 }, () => 0.05)
    await send(agent, 'archiver', B - 10_000, [{ tags: ['direction:out', 'topic:reports', 'type:bullmq'], hash: 0x21n, edge: ten }], [depth('reports', 'waiting', 30), depth('reports', 'delayed', 4)])
    await send(
      agent,
      'reporter',
      B - 10_000,
      [{ tags: ['direction:in', 'topic:reports', 'type:bullmq'], hash: 0x22n, parent: 0x21n, edge: ten }],
      // Sampled by another process in the same bucket: the highest of the bucket counts.
      [depth('reports', 'waiting', 25), depth('reports', 'active', 2), depth('reports', 'failed', 0)],
    )
    // The next bucket, still filling: its samples are the latest.
    await send(agent, 'reporter', B, [], [depth('reports', 'waiting', 12), depth('reports', 'delayed', 3), depth('reports', 'active', 1), depth('reports', 'failed', 2)])
    s = await getJson<Summary>(agent.url, '/api/summary')
  })
  after(async () => {
    await agent.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test("the queue's node shows its latest jobs per state", () => {
    const node = s.nodes.find((n) => n.id === 'bullmq:reports')
    assert.deepEqual(node?.jobs, { waiting: 12, delayed: 3, active: 1, failed: 2 })
    assert.equal(s.nodes.find((n) => n.id === 'service:reporter')?.jobs, undefined)
  })

  test('its consume edge has the waiting jobs as lag, in seconds at the consumers\' rate', () => {
    const edge = s.edges.find((e) => e.id === 'bullmq:reports>service:reporter')!
    assert.ok(edge.rate > 0, `consume rate ${edge.rate}`)
    assert.deepEqual(edge.lag, { messages: 12, seconds: 12 / edge.rate })
    assert.equal(s.edges.find((e) => e.id === 'service:archiver>bullmq:reports')?.lag, undefined, 'a produce edge has no lag')
  })

  test('/metrics leaves queue depths out of the Kafka offsets', async () => {
    const text = await (await fetch(`${agent.url}/metrics`)).text()
    assert.ok(!/pathwise_kafka_offset\{[^}]*queue_depth/.test(text) && !/pathwise_kafka_offset\{[^}]*topic="reports"/.test(text), 'queue depths among the Kafka offsets')
  })

  test('kept across a restart with --db', async () => {
    await agent.close()
    agent = await startAgent(options())
    const again = await getJson<Summary>(agent.url, '/api/summary')
    assert.deepEqual(again.nodes.find((n) => n.id === 'bullmq:reports')?.jobs, { waiting: 12, delayed: 3, active: 1, failed: 2 })
  })
})
