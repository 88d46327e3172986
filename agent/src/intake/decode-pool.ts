import { availableParallelism } from 'node:os'
import { Worker, type WorkerOptions } from 'node:worker_threads'
import type { DecodeReply, DecodeRequest } from './decode-worker.js'
import { IntakeError } from './body.js'
import type { TransferPayload } from './transfer.js'

/**
 * Decoding off the main thread: gunzip, msgpack and the schema run in worker threads, so that the
 * API answers while a payload decodes, and each worker has a heap limit, so that a payload that
 * would take more (millions of one-byte msgpack containers, each a JS object of tens of bytes) ends
 * its worker, not the agent, and is refused with a 413. The main thread only merges what a worker
 * hands over (transfer.ts), a slice at a time.
 *
 * A worker is held until its payload is merged, so that at most `size` payloads are decoded or
 * held decoded at once; others wait their turn, their bodies only compressed.
 */

export interface DecodePoolOptions {
  /** Worker threads. */
  size: number
  /** Each worker's V8 old-generation limit, in MB. */
  heapMb: number
}

/** One worker on 2 cores, leaving the other to the main thread; two at most, each holding up to one payload's memory. */
export const DEFAULT_DECODE_WORKERS = Math.max(1, Math.min(2, availableParallelism() - 1))
/** Room for about 150,000 decoded points; a tracer's payload holds tens of thousands at most (the store keeps 10,000 series). */
export const DEFAULT_DECODE_HEAP_MB = 128

const SHUTTING_DOWN = 'the agent is shutting down'

export class DecodePool {
  private readonly live = new Set<Worker>()
  private readonly idle: Worker[] = []
  private readonly waiting: Array<{ resolve: (worker: Worker) => void; reject: (err: Error) => void }> = []
  private closed = false

  constructor(private readonly options: DecodePoolOptions) {}

  /** Decodes `body` in a worker and runs `use` on it while holding that worker. Rejects with IntakeError for a payload refused. */
  async decode<T>(body: Uint8Array, maxDecompressedBytes: number, use: (transfer: TransferPayload) => Promise<T>): Promise<T> {
    const worker = await this.acquire()
    let reusable = true
    try {
      const transfer = await new Promise<TransferPayload>((resolve, reject) => {
        const settle = (): void => {
          worker.off('message', onMessage)
          worker.off('error', onError)
          worker.off('exit', onExit)
        }
        const onMessage = (reply: DecodeReply): void => {
          settle()
          if (reply.retire) reusable = false
          if ('transfer' in reply) resolve(reply.transfer)
          else reject(new IntakeError(reply.refused, reply.status))
        }
        const onError = (err: Error): void => {
          settle()
          reusable = false
          if ((err as NodeJS.ErrnoException).code !== 'ERR_WORKER_OUT_OF_MEMORY') return reject(err)
          reject(new IntakeError(`payload too costly to decode: over the decoder's heap limit of ${this.options.heapMb} MB`, 413))
        }
        // Without an error first: terminated by close().
        const onExit = (): void => {
          settle()
          reusable = false
          reject(new IntakeError(SHUTTING_DOWN, 503))
        }
        worker.on('message', onMessage)
        worker.on('error', onError)
        worker.on('exit', onExit)
        worker.postMessage({ body, maxDecompressedBytes } satisfies DecodeRequest)
      })
      return await use(transfer)
    } finally {
      this.release(worker, reusable)
    }
  }

  async close(): Promise<void> {
    this.closed = true
    for (const waiter of this.waiting.splice(0)) waiter.reject(new IntakeError(SHUTTING_DOWN, 503))
    await Promise.all([...this.live].map((worker) => worker.terminate()))
  }

  private acquire(): Promise<Worker> {
    if (this.closed) return Promise.reject(new IntakeError(SHUTTING_DOWN, 503))
    const worker = this.idle.pop() ?? (this.live.size < this.options.size ? this.spawn() : undefined)
    if (worker) return Promise.resolve(worker)
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }))
  }

  /** Hands the worker to the next payload waiting; one that failed is replaced, its memory gone with it. */
  private release(worker: Worker, reusable: boolean): void {
    if (!reusable) {
      this.live.delete(worker)
      void worker.terminate()
    }
    if (this.closed) return
    const next = this.waiting.shift()
    if (next) next.resolve(reusable ? worker : this.spawn())
    else if (reusable) this.idle.push(worker)
  }

  private spawn(): Worker {
    const worker = startWorker({ resourceLimits: { maxOldGenerationSizeMb: this.options.heapMb } })
    // Pending requests keep the process alive, not the workers.
    worker.unref()
    // An idle worker has no payload to report an error to; a busy one reports it through `decode`.
    worker.on('error', () => {})
    worker.once('exit', () => {
      this.live.delete(worker)
      const at = this.idle.indexOf(worker)
      if (at >= 0) this.idle.splice(at, 1)
    })
    this.live.add(worker)
    return worker
  }
}

/**
 * The worker module beside this one: decode-worker.js in dist/; decode-worker.ts from source, where
 * the worker has to load tsx itself (Node 20 does not pass the parent's --import on to workers).
 */
function startWorker(options: WorkerOptions): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./decode-worker.js', import.meta.url), options)
  const source = new URL('./decode-worker.ts', import.meta.url).href
  return new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}) })`, { ...options, eval: true })
}
