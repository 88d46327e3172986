import { getHeapStatistics } from 'node:v8'
import { parentPort } from 'node:worker_threads'
import { IntakeError } from './body.js'
import { decodeToTransfer } from './decode.js'
import type { TransferPayload } from './transfer.js'

/** The decode worker's side of decode-pool.ts: one payload at a time, under the heap limit the pool gave it. */

export interface DecodeRequest {
  body: Uint8Array
  maxDecompressedBytes: number
}

export type DecodeReply = ({ transfer: TransferPayload } | { refused: string; status: number }) & {
  /** Whether this worker should be replaced rather than kept: see RETIRE_BYTES. */
  retire: boolean
}

/**
 * A worker holding more than this once its reply is out (a big payload's garbage, or a heap grown
 * for it) is replaced, so that an idle agent does not keep an attack's memory.
 */
const RETIRE_BYTES = 64 * 1024 * 1024

const port = parentPort!
port.on('message', ({ body, maxDecompressedBytes }: DecodeRequest) => {
  let result: { transfer: TransferPayload } | { refused: string; status: number }
  try {
    result = { transfer: decodeToTransfer(body, maxDecompressedBytes) }
  } catch (err) {
    // Anything else is a bug: thrown, it ends the worker and reaches the pool as an error.
    if (!(err instanceof IntakeError)) throw err
    result = { refused: err.message, status: err.status }
  }
  // The transfer's arrays are the worker's own, made by TransferWriter: moved, not copied, so not counted as held.
  const moved = 'transfer' in result ? [result.transfer.numbers.buffer as ArrayBuffer, result.transfer.text.buffer as ArrayBuffer, result.transfer.cells.buffer as ArrayBuffer] : []
  if ('transfer' in result && result.transfer.transactions) moved.push(result.transfer.transactions.bytes.buffer as ArrayBuffer, result.transfer.transactions.spans.buffer as ArrayBuffer)
  const heap = getHeapStatistics()
  const held = heap.total_heap_size + heap.external_memory - moved.reduce((sum, b) => sum + b.byteLength, 0)
  port.postMessage({ ...result, retire: held > RETIRE_BYTES } satisfies DecodeReply, moved)
})
