/**
 * BullMQ queue backlogs, what BullMQ users watch: how many jobs are waiting (the wait list and the
 * prioritized set), delayed, active and failed. Sampled once per flush interval (10 s; 10 s too when
 * stats are sent only on flush) per queue, not per job:
 * one `getCounts` of the queue's backend (what `Queue.getJobCounts` asks, a single Redis script) on
 * a Queue or Worker of this process, recorded as `queue_depth` backlogs. At most MAX_QUEUES
 * queues; a queue whose Queue or Worker closed (or was collected) is no longer sampled.
 */
import type { DataStreams } from '../api/data-streams.js'
import { BUCKET_MS } from '../core/constants.js'
import { read } from '../common/input.js'
import { settingsOf } from '../instrument/settings.js'
import { fail, log } from './telemetry.js'

/** Most queues sampled by one instrumentation: one Redis call each per 10 s. */
export const MAX_QUEUES = 100
const TYPES = ['waiting', 'prioritized', 'delayed', 'active', 'failed']

interface Sampled {
  /** The latest Queue or Worker of that name registered: not kept alive by the sampler. */
  instance: WeakRef<object>
  busy: boolean
}

export class JobCountSampler {
  private readonly queues = new Map<string, Sampled>()
  private timer: ReturnType<typeof setInterval> | undefined

  constructor(private readonly dsm: DataStreams) {}

  /** Samples `name` through `instance` (a Queue or a Worker) from now on, unless a live one samples it already. */
  register(name: unknown, instance: object): void {
    if (typeof name !== 'string' || this.queues.get(name)?.instance.deref() !== undefined) return
    if (!this.queues.has(name) && this.queues.size >= MAX_QUEUES) {
      log.warnOnce('bullmq:queues', `bullmq: ${MAX_QUEUES} queues sampled already; the backlogs of more are not reported`)
      return
    }
    this.queues.set(name, { instance: new WeakRef(instance), busy: false })
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sample(), settingsOf(this.dsm).flushIntervalMs || BUCKET_MS)
      this.timer.unref?.()
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.queues.clear()
  }

  private sample(): void {
    for (const [name, sampled] of this.queues) {
      const instance = sampled.instance.deref()
      if (instance === undefined || read(instance, 'closing') !== undefined || read(instance, 'closed') === true) {
        this.queues.delete(name)
        continue
      }
      if (sampled.busy) continue
      sampled.busy = true
      void this.count(name, instance).finally(() => (sampled.busy = false))
    }
    if (this.queues.size === 0) this.stop()
  }

  private async count(name: string, instance: object): Promise<void> {
    try {
      const backend = (instance as { getBackend?: () => unknown }).getBackend?.()
      const getCounts = read(backend, 'getCounts')
      if (typeof getCounts !== 'function') return
      const counts: unknown = await getCounts.call(backend, TYPES)
      const n = (i: number): number => {
        const v = read(counts, i)
        return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0
      }
      this.dsm.trackQueueDepth('bullmq', name, 'waiting', n(0) + n(1))
      this.dsm.trackQueueDepth('bullmq', name, 'delayed', n(2))
      this.dsm.trackQueueDepth('bullmq', name, 'active', n(3))
      this.dsm.trackQueueDepth('bullmq', name, 'failed', n(4))
    } catch (err) {
      fail('job counts', err)
    }
  }
}
