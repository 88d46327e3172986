/**
 * BullMQ in one process on a real Redis, through pathwise's telemetry: the application's own
 * telemetry keeps working beside it (its spans, its context in the processor, its propagation, its
 * meter); concurrent jobs each see their own context; the jobs run exactly as without pathwise
 * whatever they are given (frozen opts and flows, data JSON cannot hold, a job scheduler's
 * repeated jobs, which carry no context); queue backlogs are sampled; off means off, and the
 * undo restores BullMQ and quiets what was made meanwhile.
 */
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { after, before, describe, test } from 'node:test'
import { contextOf, createDataStreams, instrumentBullmq, type DataStreams } from '../bindings/index.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { startRedis, type RedisPeer } from './peers/redis.js'
import { appTelemetry } from './fixtures/bullmq/app-telemetry.js'
import { ENV, depthsOf, expectedHash, inTags, outTags, waitForCount } from './fixtures/bullmq/setup.js'
import { pointsOf } from './fixtures/aws/pathways.js'
import { decodeSketch } from './helpers/sketches.js'

const require = createRequire(import.meta.url)
const bullmq = require('bullmq') as typeof import('bullmq')

/** Resolves with what `fn` gives once it gives something. */
async function eventually<T>(fn: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = fn()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('BullMQ telemetry, in process', () => {
  let redis: RedisPeer
  let agent: TestAgent
  let connection: { host: string; port: number }
  const created: DataStreams[] = []
  const dataStreams = (service: string, flushIntervalMs = 0): DataStreams => {
    const dsm = createDataStreams({ enabled: true, service, env: ENV, agentUrl: agent.url, flushIntervalMs })
    created.push(dsm)
    return dsm
  }

  before(async () => {
    ;[redis, agent] = await Promise.all([startRedis(), startAgent()])
    connection = { host: redis.host, port: redis.port }
  })
  after(async () => {
    await Promise.all(created.map((dsm) => dsm.shutdown()))
    await Promise.all([redis.stop(), agent.close()])
  })

  test("the application's telemetry keeps its spans, context, propagation and meter beside pathwise's", async () => {
    const dsm = dataStreams('composed')
    const undo = instrumentBullmq(bullmq, dsm)
    const app = appTelemetry()
    const queue = new bullmq.Queue('composed', { connection, telemetry: app as never })
    const inProcessor: { app?: string; pathway?: bigint; metadata?: string }[] = []
    const worker = new bullmq.Worker(
      'composed',
      async (job) => {
        inProcessor.push({ app: app.current()?.span?.id, pathway: dsm.currentContext()?.hash, metadata: job.opts.telemetry?.metadata })
      },
      { connection, telemetry: app as never },
    )
    try {
      await queue.add('job', { n: 1 })
      await eventually(() => inProcessor[0], 'the job')
      await eventually(() => (app.counters.get('bullmq.jobs.completed') ? true : undefined), 'the completed counter')
    } finally {
      await Promise.all([worker.close(), queue.close()])
      undo()
    }
    const produced = app.spans.find((s) => s.name === 'add composed.job')
    const consumed = app.spans.find((s) => s.name === 'process composed')
    assert.ok(produced && consumed, `spans: ${app.spans.map((s) => s.name).join(', ')}`)
    assert.equal(consumed.parent, produced.id, "the application's context went from the add to the processing")
    assert.equal(inProcessor[0].app, consumed.id, "the application's context is current in the processor")
    const metadata = JSON.parse(inProcessor[0].metadata!)
    assert.equal(metadata.traceparent, produced.id)
    assert.match(metadata._datadog['dd-pathway-ctx-base64'], /^[A-Za-z0-9+/]{27}=$/)

    const out = expectedHash('composed', outTags('composed'), 0n)
    const consume = expectedHash('composed', inTags('composed'), out)
    assert.equal(inProcessor[0].pathway, consume, "pathwise's context is current in the processor too")
    await dsm.flush()
    await waitForCount(agent, [], 'composed', consume, 1)
  })

  test('an application telemetry that only measures (a meter, no tracer) gets its counts, and jobs their context', async () => {
    const dsm = dataStreams('metered')
    const undo = instrumentBullmq(bullmq, dsm)
    const { meter, counters } = appTelemetry()
    const queue = new bullmq.Queue('metered', { connection, telemetry: { meter } as never })
    const seen: bigint[] = []
    const worker = new bullmq.Worker('metered', async () => void seen.push(dsm.currentContext()!.hash), { connection, telemetry: { meter } as never })
    try {
      await queue.add('job', {})
      await eventually(() => (counters.get('bullmq.jobs.completed') === 1 ? true : undefined), 'the completed counter')
    } finally {
      await Promise.all([worker.close(), queue.close()])
      undo()
    }
    assert.deepEqual(seen, [expectedHash('metered', inTags('metered'), expectedHash('metered', outTags('metered'), 0n))])
  })

  test('concurrent jobs each see their own context, and contextOf(job) gives it', async () => {
    const dsm = dataStreams('concurrent')
    const undo = instrumentBullmq(bullmq, dsm)
    const queues = ['left', 'right'].map((name) => new bullmq.Queue(`concurrent-${name}`, { connection }))
    const seen = new Map<string, { current: bigint; ofJob: bigint }[]>()
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const processor = async (job: import('bullmq').Job) => {
      const before = dsm.currentContext()!.hash
      // Both jobs are in their processors at once before either goes on.
      if ([...seen.values()].flat().length + 1 >= 2) release()
      seen.set(job.queueName, [...(seen.get(job.queueName) ?? []), { current: before, ofJob: contextOf(job)!.hash }])
      await gate
      seen.get(job.queueName)!.push({ current: dsm.currentContext()!.hash, ofJob: contextOf(job)!.hash })
    }
    const workers = queues.map((q) => new bullmq.Worker(q.name, processor, { connection }))
    try {
      await Promise.all(queues.map((q) => q.add('job', { q: q.name })))
      await eventually(() => ([...seen.values()].flat().length === 4 ? true : undefined), 'both jobs')
    } finally {
      await Promise.all([...workers, ...queues].map((c) => c.close()))
      undo()
    }
    for (const q of queues) {
      const expected = expectedHash('concurrent', inTags(q.name), expectedHash('concurrent', outTags(q.name), 0n))
      assert.deepEqual(seen.get(q.name), [
        { current: expected, ofJob: expected },
        { current: expected, ofJob: expected },
      ])
    }
  })

  test('jobs run exactly as without pathwise: frozen opts and flows, data JSON cannot hold', async () => {
    const dsm = dataStreams('hostile')
    const circular: Record<string, unknown> = { a: 1 }
    circular.self = circular
    const throwing = {
      get boom(): never {
        throw new Error('a getter that throws')
      },
    }
    const frozenFlow = Object.freeze({
      name: 'flow-frozen',
      queueName: 'hostile',
      data: { n: 3 },
      children: Object.freeze([Object.freeze({ name: 'flow-child', queueName: 'hostile', data: { n: 4 } })]),
    })
    /** How each add ends, on a Queue and a FlowProducer made now: the jobs' names, data and options as stored, or the error. */
    const outcomes = async () => {
      const queue = new bullmq.Queue('hostile', { connection })
      const flows = new bullmq.FlowProducer({ connection })
      try {
        return await Promise.all(
          [
            () => queue.add('frozen', { n: 1 }, Object.freeze({ attempts: 2, delay: 5 })),
            () => queue.add('bigint', { n: 1n } as never),
            () => queue.add('circular', circular),
            () => queue.add('throwing', throwing),
            () => queue.addBulk(Object.freeze([Object.freeze({ name: 'bulk-frozen', data: Object.freeze({ n: 2 }), opts: Object.freeze({ lifo: true }) })]) as never),
            () => flows.add(frozenFlow as never),
          ].map(async (add) => {
            try {
              const added = await add()
              const jobs = Array.isArray(added) ? added : 'job' in added ? [added.job, ...(added.children ?? []).map((c) => c.job)] : [added]
              return jobs.map((j) => [j.name, j.data, { ...j.opts, telemetry: undefined, parent: undefined }])
            } catch (err) {
              return `threw ${(err as Error).name}: ${(err as Error).message}`
            }
          }),
        )
      } finally {
        await Promise.all([queue.close(), flows.close()])
      }
    }
    const plain = await outcomes()
    const undo = instrumentBullmq(bullmq, dsm)
    const instrumented = await outcomes().finally(undo)
    assert.deepEqual(instrumented, plain)
    assert.equal(plain.filter((o) => typeof o === 'string').length, 3, `three adds throw as BullMQ makes them: ${JSON.stringify(plain)}`)
    // An add BullMQ refuses is not counted: only the jobs it stored were produced.
    await dsm.shutdown()
    const produced = pointsOf(agent).filter((p) => p.service === 'hostile' && p.EdgeTags[0] === 'direction:out')
    assert.equal(produced.reduce((sum, p) => sum + decodeSketch(p.EdgeLatency).count, 0), 4)
  })

  test("flows with nodes pathwise cannot copy (a getter that throws, a cycle) go as they came, their jobs' payload sizes still their data's", async () => {
    const dsm = dataStreams('uncopied')
    const data = { text: 'x'.repeat(1000) }
    // BullMQ never reads `audit`; pathwise's copy of the node (to give it opts) would.
    const node = (name: string, children?: object[]) =>
      Object.defineProperty({ name, queueName: 'uncopied', data, ...(children && { children }) }, 'audit', {
        enumerable: true,
        get() {
          throw new Error('not readable')
        },
      })
    const added = async () => {
      const flows = new bullmq.FlowProducer({ connection })
      try {
        const tree = await flows.add(node('parent', [node('child')]) as never)
        return [tree.job, ...(tree.children ?? []).map((c) => c.job)].map((j) => [j.name, j.data])
      } finally {
        await flows.close()
      }
    }
    const plain = await added()
    const undo = instrumentBullmq(bullmq, dsm)
    const instrumented = await added().finally(undo)
    assert.deepEqual(instrumented, plain)
    await dsm.flush()
    const produced = pointsOf(agent).filter((p) => p.service === 'uncopied' && p.EdgeTags.join() === outTags('uncopied').join())
    const sizes = produced.map((p) => decodeSketch(p.PayloadSize))
    assert.equal(sizes.reduce((sum, s) => sum + s.count, 0), 2, 'both jobs produced')
    // {"text":"x…"}: 1,013 bytes of JSON (the sketch keeps values within 2%).
    assert.ok(sizes.every((s) => s.quantile(0) > 990), `payload sizes: ${sizes.map((s) => s.quantile(0)).join(', ')}`)

    // A flow that is its own child cannot be copied either, and its walk ends: a closed FlowProducer answers at once, as without pathwise.
    const cyclic: Record<string, unknown> = { name: 'cycle', queueName: 'uncopied', data }
    cyclic.children = [cyclic]
    const closed = new bullmq.FlowProducer({ connection })
    await closed.close()
    const undoAgain = instrumentBullmq(bullmq, dsm)
    try {
      assert.equal(await closed.add(cyclic as never), undefined)
      assert.equal(await closed.addBulk([cyclic] as never), undefined)
    } finally {
      undoAgain()
    }
  })

  test('a job BullMQ adds without its context is counted as such, and an add that fails after its checkpoint as a failed send', async () => {
    const dsm = dataStreams('outcomes')
    const undo = instrumentBullmq(bullmq, dsm)
    const queue = new bullmq.Queue('outcomes', { connection })
    try {
      const omitted = await queue.add('omitted', { n: 1 }, { telemetry: { omitContext: true } })
      const [own, carried] = await queue.addBulk([
        { name: 'own', data: { n: 2 }, opts: { telemetry: { metadata: '{"traceparent":"mine"}' } } },
        { name: 'carried', data: { n: 3 } },
      ])
      assert.equal(omitted.opts.telemetry?.metadata, undefined)
      assert.equal(own.opts.telemetry?.metadata, '{"traceparent":"mine"}', "the job's own metadata, kept by BullMQ")
      assert.match(String(carried.opts.telemetry?.metadata), /_datadog/)
      assert.equal(dsm.stats.contextsLeftOut, 2)
      // BullMQ refuses a job id of '0' after asking for its metadata: the checkpoint made for it is a failed send.
      await assert.rejects(queue.add('refused', { n: 4 }, { jobId: '0' }), /JobId cannot be '0'/)
      assert.equal(dsm.stats.failedSends, 1)
    } finally {
      await queue.obliterate({ force: true })
      await queue.close()
      undo()
    }
  })

  test("a job scheduler's jobs carry no context: each iteration starts its pathway where it is processed", async () => {
    const dsm = dataStreams('scheduled')
    const undo = instrumentBullmq(bullmq, dsm)
    const queue = new bullmq.Queue('scheduled', { connection })
    const metadata: unknown[] = []
    const worker = new bullmq.Worker('scheduled', async (job) => void metadata.push(job.opts.telemetry?.metadata), { connection })
    try {
      await dsm.runWithContext(dsm.setCheckpoint(['direction:in', 'topic:upstream', 'type:kafka'], null), () =>
        queue.upsertJobScheduler('every-100ms', { every: 100 }, { name: 'tick', data: { tick: true } }),
      )
      await eventually(() => (metadata.length >= 3 ? true : undefined), 'three iterations')
      await queue.removeJobScheduler('every-100ms')
    } finally {
      await Promise.all([worker.close(), queue.close()])
      undo()
    }
    assert.ok(metadata.every((m) => m === undefined || !String(m).includes('_datadog')), `metadata: ${JSON.stringify(metadata)}`)
    await dsm.flush()
    const points = pointsOf(agent).filter((p) => p.service === 'scheduled' && p.EdgeTags.includes('topic:scheduled'))
    assert.deepEqual(
      points.map((p) => [p.EdgeTags, p.ParentHash]),
      points.map(() => [inTags('scheduled'), 0n]),
    )
    assert.ok(points.length >= 1)
  })

  test('queue backlogs: waiting, delayed, active and failed, sampled once per flush interval', async () => {
    const dsm = dataStreams('depths', 200)
    const undo = instrumentBullmq(bullmq, dsm)
    const queue = new bullmq.Queue('depths', { connection })
    try {
      await queue.addBulk([1, 2, 3].map((n) => ({ name: 'waits', data: { n } })))
      await queue.add('prioritized', { n: 4 }, { priority: 5 })
      await queue.add('later', { n: 5 }, { delay: 60_000 })
      await queue.add('later', { n: 6 }, { delay: 60_000 })
      const expected = { waiting: 4, delayed: 2, active: 0, failed: 0 }
      const reported = () => Object.entries(expected).every(([state, n]) => depthsOf(agent, 'depths').get(`topic:depths,state:${state}`) === n)
      for (const deadline = Date.now() + 10_000; !reported(); ) {
        assert.ok(Date.now() < deadline, `depths: ${JSON.stringify([...depthsOf(agent, 'depths')])}`)
        await dsm.flush()
        await new Promise((r) => setTimeout(r, 100))
      }
    } finally {
      await queue.obliterate({ force: true })
      await queue.close()
      undo()
    }
  })

  test('off means off; the undo restores BullMQ and quiets the objects made meanwhile', async () => {
    const prototypes = [bullmq.QueueBase.prototype, bullmq.Queue.prototype, bullmq.Worker.prototype, bullmq.FlowProducer.prototype]
    const snapshot = () => prototypes.map((p) => Object.getOwnPropertyNames(p).map((name) => [name, Object.getOwnPropertyDescriptor(p, name)]))
    const before = snapshot()
    const disabled = createDataStreams({ enabled: false })
    instrumentBullmq(bullmq, disabled)()
    assert.deepEqual(snapshot(), before, 'disabled: nothing changed')

    const dsm = dataStreams('undone')
    const undo = instrumentBullmq(bullmq, dsm)
    assert.notDeepEqual(snapshot(), before)
    instrumentBullmq(bullmq, dataStreams('second'))()
    assert.notDeepEqual(snapshot(), before, 'a second instrumentation of the module stood aside: its undo leaves the first in place')
    const queue = new bullmq.Queue('undone', { connection })
    const metadata: unknown[] = []
    const worker = new bullmq.Worker('undone', async (job) => void metadata.push(job.opts.telemetry?.metadata), { connection })
    try {
      await queue.add('instrumented', {})
      await eventually(() => metadata[0], 'the first job')
      undo()
      assert.deepEqual(snapshot(), before, 'undone: the prototypes are as they were')
      await queue.add('after', {})
      await eventually(() => (metadata.length === 2 ? true : undefined), 'the second job')
    } finally {
      await Promise.all([worker.close(), queue.close()])
    }
    assert.match(String(metadata[0]), /_datadog/)
    assert.equal(metadata[1], undefined, 'a job added after the undo carries nothing')
    await dsm.flush()
    const counted = (direction: string) =>
      pointsOf(agent)
        .filter((p) => p.service === 'undone' && p.EdgeTags[0] === direction)
        .reduce((sum, p) => sum + decodeSketch(p.EdgeLatency).count, 0)
    assert.deepEqual([counted('direction:out'), counted('direction:in')], [1, 1], 'the job added after the undo is not recorded')
  })
})
