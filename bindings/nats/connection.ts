/**
 * NATS (nats.js 2, the `nats` package): a message's journey through one connection, or through
 * every connection (the automatic mode patches nats.js's connection class).
 *
 * - Publish: `publish`, and so `request`, `requestMany` and JetStream's `js.publish`, which all
 *   publish through it, record a produce checkpoint (`direction:out, topic:<subject>, type:nats`)
 *   and carry the context in the message's headers (headers.ts). A server without header support,
 *   headers pathwise cannot add to, or a message the header would push past the server's
 *   `max_payload`: the message goes as the caller made it, still counted, with one warning.
 * - Subscribe: every message delivered to a subscription (core, queue group, wildcard, and the
 *   subscriptions JetStream consumers deliver through) is recorded by delivery.ts; jetstream.ts
 *   tells those subscriptions their consumer and hands contexts to the caller.
 * - Request/reply: the request is a publish and its delivery like any other; the reply is not
 *   recorded (it travels to the requester's inbox, which pathwise skips, and `msg.respond()` goes
 *   past the connection's publish). So a pathway never returns to where it started, and a
 *   requester's context stays its own: its next request hangs off the same parent, not off a reply.
 */
import { Buffer } from 'node:buffer'
import type { DataStreams } from '../api/data-streams.js'
import { undoAll, withOffSwitch, wrapMethod, type Instrumentation } from '../instrument/instrumentation.js'
import { parentForSend } from '../instrument/received-messages.js'
import { classPrototype, copyWith, read, viewBytes } from '../common/input.js'
import { encodePathwayContext } from '../pathway/context.js'
import { PATHWAY_LINE_BYTES, blockWithContext, callerBlock } from './headers.js'
import { Delivery, handOverContexts, inboxPrefixOf, isRecorded, natsHooks, type NatsHooks } from './delivery.js'
import { instrumentJetStream } from './jetstream.js'
import { fail, log } from './log.js'

// Connections are nats.js's shapes: `any` at this boundary, checked where read.
type AnyFn = (...args: any[]) => any

/** `NATS/1.0` and the empty line that close a block of pathwise's own. */
const BLOCK_FRAME_BYTES = 12

/**
 * Calls of a wrapped method under way, process-wide: where a connection is instrumented twice
 * (explicitly, and by the automatic mode on its class), the inner wrapper stands aside.
 */
const INSIDE = Symbol.for('pathwise.nats.inside')
const inside = ((globalThis as Record<symbol, unknown>)[INSIDE] ??= { publish: 0, subscribe: 0, jetstream: 0 }) as Record<'publish' | 'subscribe' | 'jetstream', number>

/**
 * Instruments one connection (what nats.js's `connect()` resolves to): its publishes, the
 * subscriptions it makes from now on, and the JetStream clients it makes from now on. Returns the
 * undo. With DSM disabled nothing is changed.
 */
export function instrumentNats(nc: object, dsm: DataStreams): () => void {
  return withOffSwitch(dsm, (dsm, active) => instrumentConnection(nc as Record<string, any>, natsHooks(dsm, active)))
}

/** The automatic mode: nats.js's connection class, for every connection. */
export const natsInstrumentation: Instrumentation = {
  module: 'nats/lib/nats-base-client/nats',
  supportedVersions: '>=2.0.0 <3',
  patch(exports, dsm) {
    const connection = classPrototype(exports, 'NatsConnectionImpl')
    return connection === undefined ? () => {} : instrumentNats(connection, dsm)
  },
}

function instrumentConnection(target: Record<string, any>, hooks: NatsHooks): () => void {
  return undoAll([
    wrapMethod(target, 'publish', (publish: AnyFn) =>
      function (this: unknown, subject: unknown, data: unknown, options: unknown) {
        if (!hooks.active() || inside.publish > 0) return publish.apply(this, arguments as unknown as unknown[])
        let opts = options
        try {
          opts = produce(hooks, this, subject, data, options)
        } catch (err) {
          fail('publish', err)
        }
        inside.publish++
        try {
          return opts === options ? publish.apply(this, arguments as unknown as unknown[]) : publish.call(this, subject, data, opts)
        } finally {
          inside.publish--
        }
      },
    ),
    wrapMethod(target, 'subscribe', (subscribe: AnyFn) =>
      function (this: unknown, subject: unknown, opts: unknown) {
        if (!hooks.active() || inside.subscribe > 0) return subscribe.apply(this, arguments as unknown as unknown[])
        let delivery: Delivery | undefined
        let args: unknown[] = [...(arguments as unknown as unknown[])]
        let iterating = false
        try {
          delivery = new Delivery(hooks, this, read(opts, 'queue'))
          const callback = read(opts, 'callback')
          if (typeof callback !== 'function') iterating = true
          else {
            const copy = copyWith(opts, 'callback', delivery.wrapCallback(callback as AnyFn, true))
            if (copy === undefined) delivery = undefined
            else args = [subject, copy, ...args.slice(2)]
          }
        } catch (err) {
          fail('subscribe', err)
          delivery = undefined
        }
        inside.subscribe++
        let sub: unknown
        try {
          sub = subscribe.apply(this, args)
        } finally {
          inside.subscribe--
        }
        if (delivery !== undefined) attach(hooks, delivery, sub, iterating)
        return sub
      },
    ),
    wrapMethod(target, 'jetstream', (jetstream: AnyFn) =>
      function (this: unknown) {
        if (!hooks.active() || inside.jetstream > 0) return jetstream.apply(this, arguments as unknown as unknown[])
        inside.jetstream++
        let js: unknown
        try {
          js = jetstream.apply(this, arguments as unknown as unknown[])
        } finally {
          inside.jetstream--
        }
        instrumentJetStream(js, hooks)
        return js
      },
    ),
  ])
}

/** A subscription made: its deliveries recorded; an iterator's, its messages' contexts handed on. */
function attach(hooks: NatsHooks, delivery: Delivery, sub: unknown, iterating: boolean): void {
  delivery.sub = sub
  if (!iterating) return
  // nats.js hands an iterator subscription its messages through the subscription's `callback` method.
  wrapMethod(sub as Record<string, any>, 'callback', (callback: AnyFn) => delivery.wrapCallback(callback, false))
  handOverContexts(hooks, sub)
}

/**
 * The produce checkpoint of a publish, and the options to publish with: the caller's, or a copy
 * whose headers carry the context.
 */
function produce(hooks: NatsHooks, nc: unknown, subject: unknown, data: unknown, options: unknown): unknown {
  if (typeof subject !== 'string' || !isRecorded(subject, inboxPrefixOf(nc))) return options
  const node = hooks.out.get(subject)
  if (node === null) return options
  const { dsm } = hooks
  const parent = parentForSend(dsm)
  const bytes = typeof data === 'string' ? Buffer.byteLength(data) : ArrayBuffer.isView(data) ? viewBytes(data) : 0
  const info = read(nc, 'info')
  const caller = read(info, 'headers') === false ? undefined : callerBlock(read(options, 'headers'))
  const block = caller === undefined ? 0 : caller.length === 0 ? BLOCK_FRAME_BYTES + PATHWAY_LINE_BYTES : caller.length + PATHWAY_LINE_BYTES
  const maxPayload = read(info, 'max_payload')
  // A message too large even without the header is refused by nats.js: not a message sent.
  if (typeof maxPayload === 'number' && bytes + (caller?.length ?? 0) > maxPayload) return options
  if (caller === undefined || (typeof maxPayload === 'number' && bytes + block > maxPayload)) {
    dsm.setCheckpoint(node, parent, bytes + (caller?.length ?? 0))
    warnUncarried(info, caller)
    return options
  }
  const ctx = dsm.setCheckpoint(node, parent, bytes + block)
  if (ctx === null) return options
  const headers = blockWithContext(caller, encodePathwayContext(ctx))
  if (headers === undefined) return options
  return options === undefined || options === null ? { headers } : (copyWith(options, 'headers', headers) ?? options)
}

function warnUncarried(info: unknown, caller: Uint8Array | undefined): void {
  if (read(info, 'headers') === false) {
    log.warnOnce('nats:no-headers', 'nats: the server does not support headers (older than 2.2, or no_header_support): messages go without the pathway context, still counted')
  } else if (caller === undefined) {
    log.warnOnce('nats:headers', 'nats: a publish whose headers are not nats.js headers goes without the pathway context, still counted')
  } else {
    log.warnOnce('nats:max-payload', "nats: a message the pathway header would push past the server's max_payload goes without it, still counted")
  }
}
