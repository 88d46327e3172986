/**
 * The journey of an AMQP 1.0 message through rhea links (rhea.ts puts these wrappers on links,
 * or on rhea's Sender and Receiver classes):
 *
 * - Send: `Sender#send` records a produce checkpoint (dd-trace's tags: `exchange:<target address>`)
 *   and sends, in the caller's place, a copy of the caller's message that adds the context (the
 *   caller's message and maps are never touched). Where it goes depends on the peer, which
 *   announces itself when the connection opens: an application property always, since every
 *   broker keeps those; a delivery annotation too, dd-trace's carrier, only on a peer that
 *   announced itself as something other than RabbitMQ. RabbitMQ 3.10 closes the session on a
 *   message with delivery annotations (`unexpected_trailing_sections`), resets the connection and
 *   loses every message on it; where dd-trace would lose messages, delivery wins. A send before
 *   the peer is known carries the application property only.
 * - Receive: `Receiver#dispatch` of a 'message' records a consume checkpoint (`topic:<source
 *   address>`; parent: carriers.ts's messageContext, none: a new pathway) and runs every listener
 *   of that message (on the receiver, its session, connection or container) with its context current.
 */
import { types } from 'node:util'
import { PATHWAY_KEY, encodePathwayContext, type PathwayContext } from '../pathway/context.js'
import type { CheckpointNode, DataStreams } from '../api/data-streams.js'
import { wrapMethod } from '../instrument/instrumentation.js'
import { parentForSend, rememberMessageContext } from '../instrument/received-messages.js'
import { sendsFailed } from '../instrument/send-outcomes.js'
import { copyOf, read } from '../common/input.js'
import { messageContext } from './carriers.js'
import { PATHWAY_ENTRY_BYTES, bytesOf, consumeNodes, sendNodes } from './edges.js'
import { fail } from './log.js'

// Links are rhea's shapes: `any` at this boundary, checked where read.
type AnyFn = (...args: any[]) => any

export interface LinkHooks {
  dsm: DataStreams
  /** False once the instrumentation is undone: the wrappers then pass everything through. */
  active(): boolean
  /** True for a link another instrumentation holds (the class wrappers leave explicitly instrumented links to theirs). */
  standAside(link: unknown): boolean
}

/** dd-trace's name for a link without an address. */
const NO_ADDRESS = 'amq.topic'

/** The product RabbitMQ announces in its open frame's properties. */
const RABBITMQ = 'RabbitMQ'

/** Wraps `send` (of a sender, or of rhea's Sender class). Returns the undo. */
export function wrapSend(target: object, hooks: LinkHooks): () => void {
  const nodes = sendNodes(hooks.dsm)
  return wrapMethod(target as Record<string, AnyFn>, 'send', (send) =>
    function (this: unknown, message: unknown) {
      const args = Array.prototype.slice.call(arguments) as unknown[]
      // A format means the caller encoded the message itself: it goes as it is.
      if (!hooks.active() || hooks.standAside(this) || args[2] !== undefined || message === null || typeof message !== 'object') {
        return send.apply(this, args)
      }
      let checkpointed: CheckpointNode | null = null
      try {
        const node = nodes.get(addressOf(this, 'target'))
        const sent = node === null ? undefined : withContext(hooks.dsm, node, message, takesDeliveryAnnotations(read(this, 'connection')))
        if (sent !== undefined) [args[0], checkpointed] = [sent, node]
      } catch (err) {
        fail('send', err)
      }
      try {
        return send.apply(this, args)
      } catch (err) {
        // Checkpointed, then not sent: counted, and rhea's error is the application's.
        sendsFailed(hooks.dsm, checkpointed, 1)
        throw err
      }
    },
  )
}

/**
 * The message to send in the caller's place, with the context in an application properties map
 * (and a delivery annotations map when the peer takes them), the caller's keys kept; undefined
 * when no checkpoint was recorded. Plain objects (the usual message) are copied, which rhea
 * encodes as fast as the caller's own; anything else (a class instance, a Proxy, a frozen or
 * inheriting object) is inherited from instead, so that nothing of it is lost or read here (rhea
 * encodes a map's inherited keys too).
 */
function withContext(dsm: DataStreams, node: CheckpointNode, message: object, annotate: boolean): object | undefined {
  const ownProperties = read(message, 'application_properties')
  const ownAnnotations = annotate ? read(message, 'delivery_annotations') : undefined
  const addProperties = isMap(ownProperties)
  const addAnnotations = annotate && isMap(ownAnnotations)
  const entries = (addProperties ? 1 : 0) + (addAnnotations ? 1 : 0)
  const size = bodyBytes(read(message, 'body')) + bytesOf(ownProperties) + bytesOf(read(message, 'delivery_annotations')) + entries * PATHWAY_ENTRY_BYTES
  const ctx = dsm.setCheckpoint(node, parentForSend(dsm), size)
  if (ctx === null) return undefined
  if (entries === 0) return message
  const value = encodePathwayContext(ctx)
  const copy = extended(message)
  if (addProperties) set(copy, 'application_properties', withEntry(ownProperties, value))
  if (addAnnotations) set(copy, 'delivery_annotations', withEntry(ownAnnotations, value))
  return copy
}

/** A map the context may join: none yet, or an object (not an array). */
function isMap(map: unknown): boolean {
  return map === undefined || map === null || (typeof map === 'object' && !Array.isArray(map))
}

/** A map with the context: a new one, a copy of a plain one, or one inheriting the caller's. */
function withEntry(map: unknown, value: string): object {
  if (map === undefined || map === null) return { 'dd-pathway-ctx-base64': value }
  const copy = extended(map as object)
  set(copy, PATHWAY_KEY, value)
  return copy
}

/** A copy of a plain object (its own keys are all it has), else an object inheriting from it. */
function extended(target: object): Record<string, unknown> {
  if (isPlain(target)) {
    const copy = copyOf(target)
    if (copy !== undefined) return copy
  }
  return Object.create(target) as Record<string, unknown>
}

function isPlain(value: object): boolean {
  try {
    if (types.isProxy(value) || !Object.isExtensible(value)) return false
    const proto = Object.getPrototypeOf(value)
    return proto === Object.prototype || proto === null
  } catch {
    return false
  }
}

/** Sets an own property, defined: a setter up an inherited chain is not run. */
function set(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
}

/** Whether the connection's peer announced itself, as something other than RabbitMQ (which drops messages that carry delivery annotations). */
function takesDeliveryAnnotations(connection: unknown): boolean {
  const open = read(read(connection, 'remote'), 'open')
  if (open === undefined || open === null) return false
  return read(read(open, 'properties'), 'product') !== RABBITMQ
}

/** A link's source or target address, dd-trace's name when it has none. */
function addressOf(link: unknown, end: 'source' | 'target'): string {
  const address = read(read(read(link, 'options'), end), 'address')
  return typeof address === 'string' && address !== '' ? address : NO_ADDRESS
}

/** The bytes of a body: a data or sequence section by its content, anything else as bytesOf counts it. */
function bodyBytes(body: unknown): number {
  return typeof read(body, 'typecode') === 'number' ? bytesOf(read(body, 'content')) : bytesOf(body)
}

/** Wraps `dispatch` (of a receiver, or of rhea's Receiver class). Returns the undo. */
export function wrapDispatch(target: object, hooks: LinkHooks): () => void {
  const { dsm } = hooks
  const nodes = consumeNodes(dsm)

  const checkpoint = (receiver: unknown, event: unknown): PathwayContext | null => {
    const message = read(event, 'message')
    if (message === null || typeof message !== 'object') return null
    const node = nodes.get(addressOf(receiver, 'source'))
    if (node === null) return null
    // A message the caller asked to get undecoded (a format): its bytes, and no context.
    const raw = read(event, 'format') !== undefined
    const size = raw ? bytesOf(message) : bodyBytes(read(message, 'body')) + bytesOf(read(message, 'application_properties')) + bytesOf(read(message, 'delivery_annotations'))
    const ctx = dsm.setCheckpoint(node, raw ? null : messageContext(message), size)
    if (ctx !== null) rememberMessageContext(message, ctx)
    return ctx
  }

  return wrapMethod(target as Record<string, AnyFn>, 'dispatch', (dispatch) =>
    function (this: unknown, name: unknown, event: unknown) {
      const args = arguments as unknown as unknown[]
      if (name !== 'message' || !hooks.active() || hooks.standAside(this)) return dispatch.apply(this, args)
      let ctx: PathwayContext | null = null
      try {
        ctx = checkpoint(this, event)
      } catch (err) {
        fail('receive', err)
      }
      return ctx === null ? dispatch.apply(this, args) : dsm.runWithContext(ctx, () => dispatch.apply(this, args))
    },
  )
}
