import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import { startWorker } from '../model/worker-thread.js'
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
 * A worker takes the next payload as soon as it has handed one over, so decoding and merging
 * overlap: the workers decode while the main thread merges. What they have handed over and the
 * main thread has not merged yet is held within `heldBytes`; past it, payloads wait their turn,
 * their bodies only compressed.
 */

export interface DecodePoolOptions {
  /** Worker threads. */
  size: number
  /** Each worker's V8 old-generation limit, in MB. */
  heapMb: number
  /** Decoded payloads handed over and not merged yet, in bytes of their transfer form: past this, decoding waits. */
  heldBytes: number
}

/** A worker a core: on 2 cores the two workers and the main thread share them (measured: BENCHMARKS.md); four at most. */
export const DEFAULT_DECODE_WORKERS = Math.max(1, Math.min(4, availableParallelism()))
/** A real payload's transfer form is about half its msgpack (50 points: 60 KB); a payload at the size limits up to 256 MB. */
export const DEFAULT_HELD_BYTES = 128 * 1024 * 1024
/** Room for about 150,000 decoded points; a tracer's payload holds tens of thousands at most (the store keeps 10,000 series). */
export const DEFAULT_DECODE_HEAP_MB = 128

const SHUTTING_DOWN = 'the agent is shutting down'

export class DecodePool {
  private readonly live = new Set<Worker>()
  private readonly idle: Worker[] = []
  private readonly waiting: Array<{ resolve: (worker: Worker) => void; reject: (err: Error) => void }> = []
  private closed = false
  /** Bytes of the transfers handed over whose `use` has not finished. */
  private held = 0

  constructor(private readonly options: DecodePoolOptions) {}

  /**
   * Decodes `body` in a worker, then runs `use` on it (the worker going on with the next payload
   * meanwhile), counting it as held until `use` is done. Rejects with IntakeError for a payload refused.
   */
  async decode<T>(body: Uint8Array, maxDecompressedBytes: number, use: (transfer: TransferPayload) => Promise<T>): Promise<T> {
    const transfer = await this.decodeOnly(body, maxDecompressedBytes)
    const bytes = transferBytes(transfer)
    this.held += bytes
    try {
      return await use(transfer)
    } finally {
      this.held -= bytes
      this.pump()
    }
  }

  private async decodeOnly(body: Uint8Array, maxDecompressedBytes: number): Promise<TransferPayload> {
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
      return transfer
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
    const promise = new Promise<Worker>((resolve, reject) => this.waiting.push({ resolve, reject }))
    this.pump()
    return promise
  }

  /** The worker back to the idle ones; one that failed is replaced, its memory gone with it. */
  private release(worker: Worker, reusable: boolean): void {
    if (reusable) this.idle.push(worker)
    else {
      this.live.delete(worker)
      void worker.terminate()
    }
    this.pump()
  }

  /** Hands workers to the payloads waiting, in turn, while the transfers held leave room. */
  private pump(): void {
    while (!this.closed && this.waiting.length > 0 && this.held < this.options.heldBytes) {
      const worker = this.idle.pop() ?? (this.live.size < this.options.size ? this.spawn() : undefined)
      if (!worker) return
      this.waiting.shift()!.resolve(worker)
    }
  }

  private spawn(): Worker {
    const worker = startWorker(new URL('./decode-worker', import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: this.options.heapMb } })
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

function transferBytes(t: TransferPayload): number {
  return t.numbers.byteLength + t.text.byteLength + t.cells.byteLength + (t.transactions ? t.transactions.bytes.byteLength + t.transactions.spans.byteLength : 0)
}
