// One configuration of case 12 (bench/cases/bullmq.ts) in a process of its own: a BullMQ Queue and
// a Worker of one queue on the case's Redis, running rounds on request. argv: the configuration,
// the Redis port, the queue name, the Agent stand-in's URL. Plain JavaScript, as an application
// is: `pathwise` (the built package) is set up here as the README's explicit API does it; the
// automatic mode and dd-trace come in by the case's -r flag. A round adds `jobs` jobs of about 100
// bytes one after the other, awaiting each add, while the Worker processes them, and ends when the
// Worker has finished the last: the CPU time of this whole process over the round, per job.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const [config, port, queueName, agentUrl] = process.argv.slice(2)
const connection = { host: '127.0.0.1', port: Number(port) }

if (config === 'pathwise') {
  const { createDataStreams, instrumentBullmq } = require('pathwise')
  instrumentBullmq(require('bullmq'), createDataStreams({ enabled: true, service: 'bench-bullmq', agentUrl }))
}
const { Queue, Worker } = require('bullmq')
const tracer = config.startsWith('dd-trace') ? require('dd-trace') : undefined

const data = { order: 0, customer: 'c-000000', items: ['sku-1', 'sku-2', 'sku-3'], note: 'x'.repeat(24) }
const CARRIER = '{"_datadog":{"dd-pathway-ctx-base64":"EjXKdO8OqMfmjty4wWjmjty4wWg="}}'
const opts = config === 'carrier' ? { telemetry: { metadata: CARRIER } } : undefined
const queue = new Queue(queueName, { connection })
let done = 0
let awaited = 0
let finished = () => {}
let span
const worker = new Worker(
  queueName,
  async (job) => {
    if (span === undefined && tracer !== undefined) span = tracer.scope().active() != null
    if (++done === awaited) finished()
    return job.data.order
  },
  { connection },
)
worker.on('error', (err) => process.send({ type: 'error', message: String(err) }))

/** What the round's first job carries in Redis (its telemetry metadata's `_datadog` keys), read after the round. */
async function carried(id) {
  const job = await queue.getJob(id)
  const metadata = job?.opts?.telemetry?.metadata
  return metadata ? Object.keys(JSON.parse(metadata)._datadog ?? {}).sort() : []
}

async function round(jobs) {
  done = 0
  awaited = jobs
  const all = new Promise((resolve) => (finished = resolve))
  const start = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  let first
  for (let i = 0; i < jobs; i++) {
    const job = await queue.add('order', { ...data, order: i }, opts)
    first ??= job.id
  }
  await all
  const used = process.cpuUsage(start)
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  return { seconds, cpuMicros: used.user + used.system, carried: await carried(first), ...(span !== undefined && { span }) }
}

process.on('message', async (m) => {
  try {
    if (m.type === 'run') process.send({ type: 'round', ...(await round(m.jobs)) })
    else if (m.type === 'stop') {
      await Promise.all([worker.close(), queue.close()])
      process.exit(0)
    }
  } catch (err) {
    process.send({ type: 'error', message: String(err?.stack ?? err) })
  }
})
await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()])
process.send({ type: 'ready', node: process.version })
