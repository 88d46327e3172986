/**
 * Which message's context is current while the user's code handles consumed messages, so that a
 * produce made there links to the message it came from:
 *
 * - eachMessage, and a node-rdkafka-style 'data' listener or flowing-mode callback: the context
 *   of that message, for the whole handler (its async continuations included).
 * - eachBatch: the batch's consume checkpoints are recorded in one pass when it arrives, and the
 *   handler starts with the FIRST message's context current. Then, by how the handler walks
 *   `batch.messages` (bindings/instrument/message-iteration.ts):
 *   - `for...of` (for await, Array.from...): the context of the message the loop took, whatever
 *     the order of `resolveOffset` and the produce inside the loop (after it, the last one's);
 *   - `forEach` / `map` (`Promise.all(batch.messages.map(handle))`): each callback its own
 *     message's, concurrent ones included;
 *   - an indexed loop (`batch.messages[i]`), which pathwise cannot see: each `resolveOffset(offset)`
 *     makes current the context of the first message after `offset` (after the last message, the
 *     last one's stays), so the loop handle message i, produce, `resolveOffset` links each produce
 *     to its message i. Resolving first and producing after links each produce to the NEXT
 *     message: pathwise recognises that order (a produce after each resolveOffset, none before
 *     the first, one after the last) and warns once, with the fix.
 * - a node-rdkafka-style `consume(n, callback)`: the first message's context, for the callback.
 * - anywhere else (a message queued and handled later): `withMessageContext(dsm, message, fn)`
 *   (bindings/instrument/received-messages.ts) runs fn with the context of that message (one
 *   pathwise did not see makes fn start new pathways); `resolveOffset` inside it moves nothing.
 *
 * When every message of a batch came the same way, they all have the same pathway hash, so the
 * first message's context is then the right parent for any of them; the rule matters for
 * batches that mix pathways.
 */
import type { PathwayContext } from '../pathway/context.js'
import type { DataStreams } from '../api/data-streams.js'
import { followWalks, type Walks } from '../instrument/message-iteration.js'
import type { BatchContexts } from '../instrument/batch-checkpoints.js'
import { pinnedContext } from '../instrument/received-messages.js'
import { numberOf, read } from '../common/input.js'
import { log } from './log.js'

/** The batches whose handler is running and walks them by index: what a produce checks its parent against. */
const indexed = new Set<BatchFollower>()

/** One eachBatch handler's batch: its walks, and the resolveOffset rule for the loops pathwise cannot see. */
export class BatchFollower {
  private readonly walks: Walks | undefined
  /** The message whose context the resolveOffset rule made current last (the first one's at the start). */
  private cursor = 0
  private ruleCtx: PathwayContext | null
  private readonly last: number
  private readonly lastOffset: number
  // What the produces made under the rule looked like, to recognise resolveOffset called first.
  private resolves = 0
  private atEnd = false
  private producedFirst = false
  private producedBetween = false

  constructor(
    private readonly dsm: DataStreams,
    private readonly messages: readonly unknown[],
    /** The batch's contexts; null when none was recorded. */
    private readonly ctxs: BatchContexts | null,
  ) {
    this.walks = followWalks(dsm, messages)
    this.ruleCtx = ctxs?.get(0) ?? null
    this.last = messages.length - 1
    this.lastOffset = numberOf(read(messages[this.last], 'offset'))
    if (messages.length > 1) indexed.add(this)
  }

  /**
   * After the client's own resolveOffset: the rule moves the cursor forward (messages are in
   * offset order: a whole batch costs one pass), unless a walk or a pinned message says which
   * message is being handled, or someone else made another context current.
   */
  resolved(offset: unknown): void {
    const resolved = numberOf(offset)
    if (Number.isNaN(resolved) || (this.walks !== undefined && this.walks.iterating > 0) || pinnedContext() !== undefined) return
    const current = this.dsm.currentContext()
    if (current !== (this.ruleCtx ?? undefined) && (current === undefined || current !== this.walks?.entered)) return
    while (this.cursor < this.last && numberOf(read(this.messages[this.cursor], 'offset')) <= resolved) this.cursor++
    this.resolves++
    this.atEnd = resolved >= this.lastOffset
    const ctx = this.ctxs?.get(this.cursor) ?? null
    if (ctx === null) return
    this.ruleCtx = ctx
    // Makes it current for the rest of the caller's flow: the handler's code after resolveOffset.
    if (this.dsm.currentContext() !== ctx) this.dsm.enterContext(ctx)
  }

  /** A produce whose parent is `parent`, made while this handler runs. */
  produced(parent: PathwayContext | undefined): void {
    if (parent !== this.ruleCtx || (this.walks !== undefined && this.walks.iterating > 0) || pinnedContext() !== undefined) return
    if (this.resolves === 0) this.producedFirst = true
    else if (!this.atEnd) this.producedBetween = true
    else if (!this.producedFirst && this.producedBetween && this.resolves > 1) {
      log.warnOnce(
        'kafka:resolve-first',
        'an eachBatch handler calls resolveOffset(message.offset) before it produces for that message, in a loop pathwise cannot follow ' +
          '(batch.messages[i]): each produce then links to the NEXT message. Walk the batch with for (const message of batch.messages), ' +
          'forEach or map (the order then does not matter), resolve after producing, or produce inside withMessageContext(dsm, message, fn).',
      )
    }
  }

  /** The handler is over. */
  end(): void {
    indexed.delete(this)
  }
}

/** Tells the batches being handled that a produce was made with this parent; costs nothing when none is. */
export function noteProduce(parent: PathwayContext | undefined): void {
  if (indexed.size === 0) return
  for (const follower of indexed) follower.produced(parent)
}
