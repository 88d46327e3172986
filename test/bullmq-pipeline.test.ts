/**
 * BullMQ on a real Redis: a → q1 → b → q2 → c, with b and c Workers in child processes, started
 * with the explicit API (`instrumentBullmq`), `--import pathwise/register` and `-r pathwise/register`.
 * a (this process, explicit API) adds to q1 with Queue.add, Queue.addBulk, FlowProducer.add (a
 * parent with children and a grandchild) and a delayed add; b adds one job to q2 for each q1 job
 * it processes. Checked at the test Agent: every hash of the chain (recomputed with dd-trace's
 * FNV-1), the edge tags, each job counted once per attempt, payload sizes (the JSON of job.data),
 * the delayed job's edge latency; a job retried twice is consumed three times from its add; a job
 * that always fails shows in the `failed` backlog; a sandboxed processor's job is consumed from its
 * add and returns what it returns without pathwise; a stalled job is consumed again, from its add.
 * Uses the built package for the automatic mode: run `npm run build` first.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { createDataStreams, instrumentBullmq } from '../bindings/index.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { startRedis, type RedisPeer } from './peers/redis.js'
import { ENV, depthsOf, expectedHash, inTags, outTags, startService, waitForCount, type Mode, type Service } from './fixtures/bullmq/setup.js'

const require = createRequire(import.meta.url)
const bullmq = require('bullmq') as typeof import('bullmq')
const root = fileURLToPath(new URL('..', import.meta.url))

const json = (data: unknown): number => Buffer.byteLength(JSON.stringify(data))

describe('BullMQ pipeline a → q1 → b → q2 → c, Workers in child processes', () => {
  let redis: RedisPeer
  let agent: TestAgent
  const services: Service[] = []

  before(async () => {
    ;[redis, agent] = await Promise.all([startRedis(), startAgent()])
  })
  after(async () => {
    await Promise.all(services.map((s) => s.stop()))
    await Promise.all([redis.stop(), agent.close()])
  })

  for (const mode of ['explicit', 'auto-esm', 'auto-cjs'] as Mode[]) {
    test(`${mode}: add, addBulk, a flow and a delayed job reach c through b, each hash chained to its parent`, async () => {
      if (mode !== 'explicit') assert.ok(existsSync(`${root}/dist/register.js`), 'dist/ is missing: npm run build')
      const prefix = `pipe-${mode}`
      const config = { prefix, port: redis.port, agentUrl: agent.url }
      const [a, b, c] = ['a', 'b', 'c'].map((s) => `${s}-${mode}`)
      services.push(...(await Promise.all([startService(mode, 'b', b, config), startService(mode, 'c', c, config)])))

      const dsm = createDataStreams({ enabled: true, service: a, env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
      const undo = instrumentBullmq(bullmq, dsm)
      const connection = { host: redis.host, port: redis.port }
      const q1 = new bullmq.Queue(`${prefix}-q1`, { connection })
      const flows = new bullmq.FlowProducer({ connection })
      const q1Data = [
        { order: 1, note: 'added' },
        { order: 2 },
        { order: 3, items: ['x', 'y'] },
        { root: true },
        { child: 1 },
        { child: 2, more: 'data' },
        { grandchild: 'é' },
        { delayed: true },
      ]
      try {
        await q1.add('add', q1Data[0])
        await q1.addBulk([
          { name: 'bulk-1', data: q1Data[1] },
          { name: 'bulk-2', data: q1Data[2] },
        ])
        await flows.add({
          name: 'flow-root',
          queueName: `${prefix}-q1`,
          data: q1Data[3],
          children: [
            { name: 'flow-child-1', queueName: `${prefix}-q1`, data: q1Data[4] },
            { name: 'flow-child-2', queueName: `${prefix}-q1`, data: q1Data[5], children: [{ name: 'flow-grandchild', queueName: `${prefix}-q1`, data: q1Data[6] }] },
          ],
        })
        await q1.add('delayed', q1Data[7], { delay: 400 })
        await dsm.flush()
      } finally {
        await Promise.all([q1.close(), flows.close()])
        undo()
      }

      const aOut = expectedHash(a, outTags(`${prefix}-q1`), 0n)
      const bIn = expectedHash(b, inTags(`${prefix}-q1`), aOut)
      const bOut = expectedHash(b, outTags(`${prefix}-q2`), bIn)
      const cIn = expectedHash(c, inTags(`${prefix}-q2`), bOut)
      const produced = await waitForCount(agent, services, a, aOut, q1Data.length)
      const consumed = await waitForCount(agent, services, b, bIn, q1Data.length)
      const forwarded = await waitForCount(agent, services, b, bOut, q1Data.length)
      const last = await waitForCount(agent, services, c, cIn, q1Data.length)

      assert.deepEqual(produced.EdgeTags, outTags(`${prefix}-q1`))
      assert.deepEqual(consumed.EdgeTags, inTags(`${prefix}-q1`))
      assert.deepEqual(forwarded.EdgeTags, outTags(`${prefix}-q2`))
      assert.deepEqual(last.EdgeTags, inTags(`${prefix}-q2`))
      assert.deepEqual([produced, consumed, forwarded, last].map((p) => p.ParentHash), [0n, aOut, bIn, bOut])
      assert.deepEqual([produced, consumed, forwarded, last].map((p) => p.edge.count), [8, 8, 8, 8], 'each job counted once where it was added and once where it was processed')

      // Payload sizes: the JSON of each job's data, the same where it was added and where it was processed.
      const sizes = q1Data.map(json).sort((x, y) => x - y)
      for (const point of [produced, consumed]) {
        assert.ok(Math.abs(point.size.quantile(0) - sizes[0]) <= sizes[0] * 0.02, `smallest size ${point.size.quantile(0)}, expected ${sizes[0]}`)
        assert.ok(Math.abs(point.size.quantile(1) - sizes[7]) <= sizes[7] * 0.02, `largest size ${point.size.quantile(1)}, expected ${sizes[7]}`)
      }
      // The delayed job waited 400 ms in the queue: its consume's edge latency says so.
      assert.ok(consumed.edge.quantile(1) >= 0.39, `largest edge latency ${consumed.edge.quantile(1)} s`)
      assert.ok(last.edge.quantile(0) >= 0)
    })
  }

  test('retries, failures and a sandboxed processor (explicit API)', async () => {
    const prefix = 'attempts'
    const config = { prefix, port: redis.port, agentUrl: agent.url }
    services.push(await startService('explicit', 'b', 'b-attempts', config))
    const dsm = createDataStreams({ enabled: true, service: 'a-attempts', env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
    const undo = instrumentBullmq(bullmq, dsm)
    const connection = { host: redis.host, port: redis.port }
    const retry = new bullmq.Queue(`${prefix}-retry`, { connection })
    const fail = new bullmq.Queue(`${prefix}-fail`, { connection })
    const sandboxed = new bullmq.Queue(`${prefix}-sandboxed`, { connection })
    try {
      await retry.add('retried', { n: 1 }, { attempts: 3, backoff: { type: 'fixed', delay: 100 } })
      await fail.add('failing', { n: 2 })
      const job = await sandboxed.add('sandboxed', { n: 21 })
      // Polled, not job.waitUntilFinished: QueueEvents starts reading events only after a round trip, and misses a job done sooner.
      let result: { doubled: number; pid: number } | undefined
      for (const deadline = Date.now() + 20_000; result === undefined; await new Promise((r) => setTimeout(r, 50))) {
        assert.ok(Date.now() < deadline, 'the sandboxed job did not finish')
        result = (await sandboxed.getJob(job.id!))?.returnvalue ?? undefined
      }
      assert.equal(result.doubled, 42)
      assert.notEqual(result.pid, services.at(-1)!.child.pid, 'the processor ran in a child process of the Worker')
      await dsm.flush()
    } finally {
      await Promise.all([retry.close(), fail.close(), sandboxed.close()])
      undo()
    }
    for (const queue of ['retry', 'fail', 'sandboxed']) {
      const out = expectedHash('a-attempts', outTags(`${prefix}-${queue}`), 0n)
      const attempts = queue === 'retry' ? 3 : 1
      const point = await waitForCount(agent, services, 'b-attempts', expectedHash('b-attempts', inTags(`${prefix}-${queue}`), out), attempts)
      assert.equal(point.ParentHash, out, `${queue}: every attempt is consumed from the job's add`)
      assert.equal(point.edge.count, attempts, `${queue}: ${attempts} attempts`)
    }
    // The job that failed for good is in the queue's failed set, sampled as a backlog.
    await agent.waitFor(() => depthsOf(agent, 'b-attempts').get(`topic:${prefix}-fail,state:failed`) === 1, 10_000)
    assert.equal(depthsOf(agent, 'b-attempts').get(`topic:${prefix}-retry,state:failed`), 0)
  })

  test('a stalled job is consumed again by another Worker, from its add', async () => {
    const prefix = 'stalled'
    const config = { prefix, port: redis.port, agentUrl: agent.url }
    const stalling = await startService('explicit', 'stall', 'stalling', config)
    services.push(stalling)
    const dsm = createDataStreams({ enabled: true, service: 'a-stalled', env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
    const undo = instrumentBullmq(bullmq, dsm)
    const queue = new bullmq.Queue(`${prefix}-stall`, { connection: { host: redis.host, port: redis.port } })
    try {
      await queue.add('stalls', { n: 3 })
      await dsm.flush()
    } finally {
      await queue.close()
      undo()
    }
    await stalling.line(/stalling/)
    stalling.child.kill('SIGKILL')
    services.push(await startService('explicit', 'recover', 'recovering', config))
    const out = expectedHash('a-stalled', outTags(`${prefix}-stall`), 0n)
    for (const service of ['stalling', 'recovering']) {
      const point = await waitForCount(agent, services, service, expectedHash(service, inTags(`${prefix}-stall`), out), 1)
      assert.equal(point.ParentHash, out)
    }
  })
})
