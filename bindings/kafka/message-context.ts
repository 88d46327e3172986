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
 *   `withKafkaMessageContext(dsm, message, fn)` runs fn with the context of that message (any
 *   message pathwise checkpointed; one it did not see makes fn start new pathways).
 *
 * When every message of a batch came the same way, they all have the same pathway hash, so the
 * first message's context is then the right parent for any of them; the rule matters for
 * batches that mix pathways.
 *
 * A message's context is kept on the message object itself, under a non-enumerable global symbol:
 * a WeakMap entry per message would cost several times the checkpoint (in GC of the weak table),
 * the property is invisible to the application (enumeration, spread, JSON, deepStrictEqual), and
 * the automatic mode's copy of pathwise and the application's share the symbol.
 */
import type { PathwayContext } from '../context.js'
import type { DataStreams } from '../data-streams.js'
import { asyncLocalStore } from '../node/platform.js'

const CONTEXT = Symbol.for('pathwise.kafka.messageContext')
/** Reused: one descriptor object per message would be garbage on the hot path. */
const descriptor: PropertyDescriptor = { value: undefined, configurable: true, writable: true }

export function rememberMessage(message: object, ctx: PathwayContext): void {
  if (!Object.isExtensible(message)) return
  descriptor.value = ctx
  Object.defineProperty(message, CONTEXT, descriptor)
  descriptor.value = undefined
}

/** The context of the consume checkpoint of a message a consumer handed over. */
export function kafkaMessageContext(message: object): PathwayContext | undefined {
  return (message as { [CONTEXT]?: PathwayContext })[CONTEXT]
}

/** Runs fn with the context of this consumed message current, so that a produce inside links to it. */
export function withKafkaMessageContext<T>(dsm: DataStreams, message: object, fn: () => T): T {
  return dsm.runWithContext(kafkaMessageContext(message) ?? null, fn)
}

/**
 * The eachBatch rule: what a `resolveOffset(offset)` call does after the client's own. Messages
 * are in offset order; the cursor only moves forward, so a whole batch costs one pass.
 */
export function followResolvedOffsets(
  messages: readonly { offset?: unknown }[],
  ctxs: readonly (PathwayContext | null)[],
): (offset: unknown) => void {
  let cursor = 0
  const last = messages.length - 1
  return (offset) => {
    const resolved = Number(offset)
    if (Number.isNaN(resolved)) return
    while (cursor < last && Number(messages[cursor].offset) <= resolved) cursor++
    const ctx = ctxs[cursor]
    // Makes it current for the rest of the caller's flow: the handler's code after resolveOffset.
    if (ctx !== null) asyncLocalStore.enter(ctx)
  }
}
