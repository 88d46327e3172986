/**
 * Which message's context is current while the user's code handles consumed messages, so that a
 * produce made there links to the message it came from:
 *
 * - eachMessage, and a node-rdkafka-style 'data' listener or flowing-mode callback: the context
 *   of that message, for the whole handler (its async continuations included).
 * - eachBatch: the batch's consume checkpoints are recorded in one pass when it arrives; the
 *   handler starts with the FIRST message's context current, and each `resolveOffset(offset)`
 *   makes current the context of the first message after `offset` (after the last message, the
 *   last one's stays). So the usual loop — handle message i, produce, `resolveOffset(i)` — links
 *   each produce to its message i.
 * - a node-rdkafka-style `consume(n, callback)`: the first message's context, for the callback.
 * - anywhere else (a message queued and handled later), and for messages handled concurrently:
 *   `withMessageContext(dsm, message, fn)` (bindings/instrument/received-messages.ts) runs fn with the
 *   context of that message (one pathwise did not see makes fn start new pathways).
 *
 * When every message of a batch came the same way, they all have the same pathway hash, so the
 * first message's context is then the right parent for any of them; the rule matters for
 * batches that mix pathways.
 *
 */
import type { PathwayContext } from '../pathway/context.js'
import type { DataStreams } from '../api/data-streams.js'
import { numberOf, read } from '../common/input.js'

/**
 * The eachBatch rule: what a `resolveOffset(offset)` call does after the client's own. Messages
 * are in offset order; the cursor only moves forward, so a whole batch costs one pass.
 */
export function followResolvedOffsets(dsm: DataStreams, messages: readonly unknown[], ctxs: readonly (PathwayContext | null)[]): (offset: unknown) => void {
  let cursor = 0
  const last = messages.length - 1
  return (offset) => {
    const resolved = numberOf(offset)
    if (Number.isNaN(resolved)) return
    while (cursor < last && numberOf(read(messages[cursor], 'offset')) <= resolved) cursor++
    const ctx = ctxs[cursor]
    // Makes it current for the rest of the caller's flow: the handler's code after resolveOffset.
    if (ctx !== null && dsm.currentContext() !== ctx) dsm.enterContext(ctx)
  }
}
