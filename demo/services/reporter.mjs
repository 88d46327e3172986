// Processes the BullMQ queue `reports` two jobs at a time, at times a little slower than they come
// (waiting jobs show on the map); a few fail once and are retried, fewer fail for good.
import { Worker } from 'bullmq'
import { jitter, redis, running, sleep } from './env.mjs'

const worker = new Worker(
  'reports',
  async (job) => {
    await sleep(jitter(40))
    if (Math.random() < (job.attemptsMade === 0 ? 0.05 : 0.2)) throw new Error('the report could not be written')
    return { written: job.data.sequence }
  },
  { connection: redis, concurrency: 2 },
)
worker.on('error', () => {})
while (running.on) await sleep(200)
await worker.close()
