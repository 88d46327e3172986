/**
 * Which received message a send links to, for every transport.
 *
 * A consumer instrumentation that calls the user's handler makes the message's context current
 * for that handler (Kafka's eachMessage). A receive the caller awaits is different: an AWS SDK
 * middleware runs inside the SDK call's own async chain, and a context it makes current there does
 * not reach the caller's code after `await client.send(...)`. So received contexts travel another
 * way, by this rule:
 *
 * 1. `contextOf(message)` is the context of the consume checkpoint of a message a client handed
 *    back (a Kafka message, an SQS `Message`, a Kinesis `Record`), and
 *    `withMessageContext(dsm, message, fn)` runs `fn` with it current: a send inside links to
 *    exactly that message.
 *    Walking the array a receive handed back (for...of, forEach, map: message-iteration.ts)
 *    makes each message's context current in turn, by rule 3.
 * 2. Otherwise a send links to the LAST message of the most recent receive (ReceiveMessage,
 *    GetRecords) that the same DataStreams made in the sender's async flow, the way Python's
 *    thread-local context is that of the last consumed message. The receive's flow is the async
 *    function that called `client.send(receive)`, from that call on, and whatever it calls or
 *    starts from then on; concurrent flows (two polling loops) each see their own receive.
 *    A receive that returns nothing changes nothing. When the receive's messages came along
 *    different pathways, a second send linked by this rule warns once: it is likely a loop over
 *    the messages that pathwise cannot follow (an indexed one).
 * 3. A context made current after that receive (`dsm.runWithContext`, a consumer
 *    instrumentation's handler scope) wins over it; with no receive at all, the current context
 *    is the parent; with neither, the send starts a new pathway.
 *
 * Rule 2 works because the receive's middleware starts synchronously inside `client.send`, in
 * the caller's flow: it enters there a slot that the response fills in later. It does not travel
 * back up through an `await`: when a helper first awaits something and then receives, the
 * helper's caller does not see that receive (its sends start new pathways rather than link to
 * the wrong message). Hand the messages back and use `withMessageContext` there.
 * (Sharing one slot more widely would link concurrent flows, such as a poller and an HTTP
 * handler, to each other's messages.)
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { PathwayContext } from '../pathway/context.js'
import type { DataStreams } from '../api/data-streams.js'
import { read } from '../common/input.js'
import { createLogger } from '../common/logger.js'

const log = createLogger(false)

/** A receive's context, and the context that was current when the receive began. */
interface Received {
  ctx: PathwayContext
  before: PathwayContext | undefined
  /** Whether the receive's messages came along different pathways (then its last one is the wrong parent for some). */
  mixed: boolean
  /** Sends that linked to it by rule 2. */
  sends: number
}

/** What a flow carries: its last receive per DataStreams, or the message withMessageContext pinned. */
interface Flow {
  received: Map<DataStreams, Received>
  pinned?: PathwayContext | null
}

/**
 * Process-wide (global symbols), like the automatic mode itself: the copy of pathwise that
 * `pathwise/register` loads records the contexts, and the application's own copy, imported for
 * `contextOf` and `withMessageContext`, reads and sets them.
 */
const shared = globalThis as { [key: symbol]: unknown }
const FLOWS = Symbol.for('pathwise.aws.flows')
const flows = (shared[FLOWS] ??= new AsyncLocalStorage<Flow>()) as AsyncLocalStorage<Flow>

/**
 * Called at the start of a receive, synchronously in the caller's flow. Returns what the
 * response calls with the contexts of its messages, in order (at least one).
 */
export function beginReceive(dsm: DataStreams): (ctxs: readonly PathwayContext[]) => void {
  // A copy, so that flows which shared the previous one do not see this receive.
  const previous = flows.getStore()
  const flow: Flow = { received: new Map(previous?.received), pinned: previous?.pinned }
  flows.enterWith(flow)
  const before = dsm.currentContext()
  return (ctxs) => {
    const ctx = ctxs[ctxs.length - 1]
    let mixed = false
    for (const c of ctxs) mixed ||= c.hashHi !== ctx.hashHi || c.hashLo !== ctx.hashLo
    flow.pinned = undefined
    flow.received.set(dsm, { ctx, before, mixed, sends: 0 })
  }
}

/**
 * A message's context is kept on the message object itself, in a private field that a class
 * stamps onto it (a base constructor that returns the message makes `new` add the field there):
 * the field is invisible to the application (it is no property: enumeration, spread, JSON,
 * deepStrictEqual and getOwnPropertySymbols do not see it) and costs a field store, where a
 * non-enumerable property (Object.defineProperty per message) cost about 180 ns more and a
 * WeakMap entry several times the checkpoint (in GC of the weak table). The class is
 * process-wide (a global symbol), so the automatic mode's copy of pathwise and the
 * application's read the same field.
 */
interface MessageStamps {
  set(message: object, ctx: PathwayContext): void
  get(message: object): PathwayContext | undefined
}

const STAMPS = Symbol.for('pathwise.messageContextStamps')
const stamps = (shared[STAMPS] ??= messageStamps()) as MessageStamps

function messageStamps(): MessageStamps {
  const ReturnsTarget = function (target: object) {
    return target
  } as unknown as new (target: object) => object
  class Stamp extends ReturnsTarget {
    #ctx: PathwayContext | undefined
    constructor(target: object, ctx: PathwayContext) {
      super(target)
      this.#ctx = ctx
    }
    static set(message: object, ctx: PathwayContext): void {
      if (#ctx in message) (message as Stamp).#ctx = ctx
      else new Stamp(message, ctx)
    }
    static get(message: object): PathwayContext | undefined {
      return #ctx in message ? (message as Stamp).#ctx : undefined
    }
  }
  return { set: Stamp.set, get: Stamp.get }
}

/** Remembers the context of a message handed to the application; not on one that takes no property (frozen, a Proxy). */
export function rememberMessageContext(message: object, ctx: PathwayContext): void {
  try {
    if (Object.isExtensible(message)) stamps.set(message, ctx)
  } catch {
    // A Proxy's trap threw: the message keeps no context, as a frozen one.
  }
}

/** The parent of a send made now, by the rule above. */
export function parentForSend(dsm: DataStreams): PathwayContext | null {
  const flow = flows.getStore()
  const current = dsm.currentContext()
  // Pinned by withMessageContext, unless a context was made current inside it since.
  if (flow?.pinned !== undefined && (current === undefined || current === flow.pinned)) return flow.pinned
  const received = flow?.received.get(dsm)
  if (received !== undefined && received.before === current) {
    if (received.mixed && ++received.sends === 2) {
      log.warnOnce(
        'received:mixed',
        'several sends after one receive of messages from different pathways all link to its last message: nothing said which message ' +
          'each send handles. Walk the messages with for...of, forEach or map (each send then links to the message being walked), ' +
          'or handle each inside withMessageContext(dsm, message, fn).',
      )
    }
    return received.ctx
  }
  return current ?? null
}

/** The context withMessageContext (or a walk's forEach or map) pinned for this flow; undefined when none. */
export function pinnedContext(): PathwayContext | null | undefined {
  return flows.getStore()?.pinned
}

/**
 * The context of the consume checkpoint of a received message, if pathwise saw it arrive; for a
 * client's wrapper of a delivered message (nats.js's JetStream `JsMsg` keeps its `Msg` in `msg`),
 * the wrapped message's. Never throws.
 */
export function contextOf(message: object): PathwayContext | undefined {
  if (message === null || (typeof message !== 'object' && typeof message !== 'function')) return undefined
  const ctx = stamps.get(message)
  if (ctx !== undefined) return ctx
  const inner = read(message, 'msg')
  return inner !== null && typeof inner === 'object' ? stamps.get(inner) : undefined
}

/**
 * Runs fn with the context of this received message current, so that sends inside link to it
 * (and to nothing else: a message pathwise did not see makes those sends start a new pathway).
 * Returns what fn returns, and fn's own errors reach the caller; fn no function: undefined.
 */
export function withMessageContext<T>(dsm: DataStreams, message: object, fn: () => T): T {
  const ctx = contextOf(message) ?? null
  const runWithContext = read(dsm, 'runWithContext')
  const run =
    typeof runWithContext === 'function'
      ? () => runWithContext.call(dsm, ctx, fn) as T
      : () => (typeof fn === 'function' ? fn() : (undefined as T))
  return flows.run({ received: new Map(), pinned: ctx }, run)
}
