/**
 * BullMQ between dd-trace 6.21 and pathwise, both ways, on a real Redis: a dd-trace service (Node
 * 24, `-r dd-trace/init`, DD_DATA_STREAMS_ENABLED=true) adds jobs with Queue.add, Queue.addBulk and
 * FlowProducer.add; pathwise's Worker (this process, instrumentBullmq) processes them and adds a job
 * back for each, which the dd-trace service processes. At the test Agent: pathwise's edge tags are
 * dd-trace's, in both directions; pathwise's consumes have dd-trace's produce as parent, and
 * dd-trace's consumes have pathwise's produce as parent (each parent hash joins); the child of
 * dd-trace's flow, which dd-trace sends without a context, starts a pathway at pathwise.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { describe, test } from 'node:test'
import { createDataStreams, instrumentBullmq } from '../bindings/index.js'
import { node24Binary } from '../bench/node24.js'
import { decodeSketch } from './helpers/sketches.js'
import { pointsOf, type ServicePoint } from './fixtures/aws/pathways.js'
import { ENV, expectedHash, inTags, outTags, redisAndAgent } from './fixtures/bullmq/setup.js'

const require = createRequire(import.meta.url)
const bullmq = require('bullmq') as typeof import('bullmq')
const root = fileURLToPath(new URL('..', import.meta.url))
const ddService = fileURLToPath(new URL('./fixtures/bullmq/dd-trace-service.cjs', import.meta.url))

/** The jobs dd-trace adds: add, two of addBulk, a flow's parent and child. */
const JOBS = 5

/** Messages a service's points of these edge tags and parent counted, over every bucket. */
function counted(points: ServicePoint[], tags: string[], parent: bigint): number {
  return points.filter((p) => p.EdgeTags.join() === tags.join() && p.ParentHash === parent).reduce((sum, p) => sum + decodeSketch(p.EdgeLatency).count, 0)
}

describe('BullMQ between dd-trace 6.21 (Node 24) and pathwise', () => {
  const peers = redisAndAgent()

  test('pathways cross both ways: the same edge tags, and every parent hash joins', async () => {
    const node = await node24Binary((line) => console.log(line))
    const { redis, agent } = peers
    const prefix = 'interop'
    const dsm = createDataStreams({ enabled: true, service: 'pathwise-worker', env: ENV, agentUrl: agent.url, flushIntervalMs: 0 })
    const undo = instrumentBullmq(bullmq, dsm)
    const connection = { host: redis.host, port: redis.port }
    const back = new bullmq.Queue(`${prefix}-from-pathwise`, { connection })
    const worker = new bullmq.Worker(`${prefix}-to-pathwise`, async (job) => void (await back.add(`reply-${job.name}`, { to: job.name })), { connection })
    try {
      await worker.waitUntilReady()
      const env = {
        ...process.env,
        DD_DATA_STREAMS_ENABLED: 'true',
        DD_SERVICE: 'dd-trace-service',
        DD_ENV: ENV,
        DD_TRACE_AGENT_URL: agent.url,
        DD_TRACE_STATS_COMPUTATION_ENABLED: 'false',
        DD_INSTRUMENTATION_TELEMETRY_ENABLED: 'false',
        DD_REMOTE_CONFIGURATION_ENABLED: 'false',
      }
      const child = spawn(node, ['-r', 'dd-trace/init', ddService, JSON.stringify({ prefix, port: redis.port, expected: JOBS })], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
      let output = ''
      child.stdout.on('data', (chunk: Buffer) => (output += chunk))
      child.stderr.on('data', (chunk: Buffer) => (output += chunk))
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
      clearTimeout(timer)
      assert.equal(code, 0, output)
      assert.match(output, new RegExp(`dd-trace processed ${JOBS} jobs`))
      await dsm.flush()
    } finally {
      await Promise.all([worker.close(), back.close()])
      undo()
      await dsm.shutdown()
    }

    const dd = pointsOf(agent).filter((p) => p.service === 'dd-trace-service')
    const pw = pointsOf(agent).filter((p) => p.service === 'pathwise-worker')
    const toPathwise = `${prefix}-to-pathwise`
    const fromPathwise = `${prefix}-from-pathwise`

    // dd-trace's produce: the edge tags pathwise writes for the same hop.
    const ddOut = dd.filter((p) => p.EdgeTags.includes('direction:out'))
    assert.ok(ddOut.length > 0, `no dd-trace produce: ${dd.map((p) => p.EdgeTags.join()).join('; ')}`)
    for (const p of ddOut) assert.deepEqual(p.EdgeTags, outTags(toPathwise))
    const ddOutHash = ddOut[0].Hash
    assert.ok(ddOut.every((p) => p.Hash === ddOutHash && p.ParentHash === 0n))

    // pathwise's consume: dd-trace's produce is its parent, for each job dd-trace sent a context with.
    const pwIn = expectedHash('pathwise-worker', inTags(toPathwise), ddOutHash)
    assert.equal(counted(pw, inTags(toPathwise), ddOutHash), JOBS - 1, 'add, addBulk and the flow parent carried dd-trace context')
    assert.equal(counted(pw, inTags(toPathwise), 0n), 1, 'the flow child carried none (dd-trace injects the flow parent only)')
    const pwOut = expectedHash('pathwise-worker', outTags(fromPathwise), pwIn)
    assert.equal(counted(pw, outTags(fromPathwise), pwIn), JOBS - 1)

    // dd-trace's consume: the same edge tags as pathwise's, and pathwise's produce as its parent.
    const ddIn = dd.filter((p) => p.EdgeTags.includes('direction:in'))
    for (const p of ddIn) assert.deepEqual(p.EdgeTags, inTags(fromPathwise))
    assert.equal(counted(dd, inTags(fromPathwise), pwOut), JOBS - 1, `dd-trace consumes: ${ddIn.map((p) => `${p.ParentHash.toString(16)}`).join(', ')}`)
    const orphanOut = expectedHash('pathwise-worker', outTags(fromPathwise), expectedHash('pathwise-worker', inTags(toPathwise), 0n))
    assert.equal(counted(dd, inTags(fromPathwise), orphanOut), 1)
  })
})
