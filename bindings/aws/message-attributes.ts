/**
 * The `_datadog` message attribute, as SQS and SNS carry it: where the context goes into a message
 * being sent (beside at most 9 other attributes, within the service's size limit, keeping the other
 * keys of a `_datadog` a tracer already wrote), where it is read back, and how many bytes the
 * attributes weigh. SQS carries it as a String attribute, SNS as a Binary one, as Datadog's
 * tracers do: SNS subscription filter policies drop messages with a String attribute holding JSON
 * (dd-trace-js #1889), even when the policy is about other attributes.
 */
import { Buffer } from 'node:buffer'
import { encodePathwayContext, type PathwayContext } from '../pathway/context.js'
import type { CheckpointNode, DataStreams } from '../api/data-streams.js'
import { DATADOG_KEY, carrierBytes, carrierPrefix, closeCarrier, parseCarrier } from './carrier.js'
import { log } from './middleware.js'
import { bytesOf } from './size.js'
import { copyWith, items, keysOf, read } from '../common/input.js'

/** SQS and SNS refuse a message with more message attributes than this. */
const MAX_ATTRIBUTES = 10
/** Bytes of the carrier attribute's name and data type ('String' and 'Binary' are both 6). */
const DATADOG_ATTRIBUTE_BYTES = DATADOG_KEY.length + 'String'.length

/** What differs between the services that carry the context in a message attribute. */
export interface AttributeService {
  /** 'SQS queue', 'SNS topic': for the warnings. */
  readonly destination: string
  /** The entry's key of the message body. */
  readonly bodyKey: string
  /** The largest message the service takes, body and attributes (unless a destination's own is given): a context that would push a message past it is not written. */
  readonly maxBytes: number
  /** The most a batch's messages may weigh together. */
  readonly maxBatchBytes: number
  /** Whether the carrier is a Binary attribute (else a String one). */
  readonly binary: boolean
}

/** How one message is sent. */
export interface AttributePlan {
  /** Bytes of the message as sent: body and attributes, the carrier included when there is one. */
  size: number
  /** Bytes of the message as the caller wrote it. */
  readonly bare: number
  /** A copy of the entry carrying this context; null when it cannot carry one. */
  write: ((encoded: string) => unknown) | null
  /** Whether the context was left out because of a size limit (the message's or, in a batch, the batch's). */
  overLimit: boolean
}

/**
 * How `entry` (a message to send to `name`) carries the context, the message at most `maxBytes`
 * with it. Reads the entry only through bindings/common/input.ts.
 */
export function planAttributeCarrier(entry: object, service: AttributeService, name: string, maxBytes = service.maxBytes): AttributePlan {
  const attributes = read(entry, 'MessageAttributes')
  const existing = read(attributes, DATADOG_KEY)
  const bare = bytesOf(read(entry, service.bodyKey)) + attributesBytes(attributes)
  const none: AttributePlan = { size: bare, bare, write: null, overLimit: false }
  // Attributes that are no object cannot take the carrier: the message goes as it came.
  if (attributes !== undefined && attributes !== null && typeof attributes !== 'object') return none
  if (existing === undefined && keysOf(attributes).length >= MAX_ATTRIBUTES) {
    log.warnOnce(
      `attributes:${service.destination}:${name}`,
      `a message sent to ${service.destination} ${name} already has ${MAX_ATTRIBUTES} message attributes, the most it allows: ` +
        `it is sent without the pathway context (its consumers start a new pathway). Leave one attribute free for ${DATADOG_KEY}.`,
    )
    return none
  }
  // An existing `_datadog` that holds no JSON object is someone else's: left as it is.
  const carrier = existing === undefined ? undefined : parseCarrier(carrierText(existing) ?? '')
  if (carrier === null) return none
  const prefix = carrierPrefix(carrier)
  const size = bare - attributeBytes(DATADOG_KEY, existing) + DATADOG_ATTRIBUTE_BYTES + carrierBytes(Buffer.byteLength(prefix))
  if (size > maxBytes) return { ...none, overLimit: true }
  return {
    size,
    bare,
    overLimit: false,
    write(encoded) {
      const text = closeCarrier(prefix, encoded)
      const value = service.binary ? { DataType: 'Binary', BinaryValue: Buffer.from(text) } : { DataType: 'String', StringValue: text }
      // A copy: the caller's command keeps its input as written.
      const withCarrier = attributes === undefined || attributes === null ? { [DATADOG_KEY]: value } : copyWith(attributes, DATADOG_KEY, value)
      return (withCarrier === undefined ? undefined : copyWith(entry, 'MessageAttributes', withCarrier)) ?? entry
    },
  }
}

/** Leaves the message as the caller wrote it (its size then counts without the carrier). */
export function withoutCarrier(plan: AttributePlan): void {
  plan.size = plan.bare
  plan.write = null
}

/**
 * Contexts for a batch's messages in order while the batch in all stays within `maxBytes`; the
 * messages past that point go as written (as dd-trace-go does for SNS). Returns how many
 * messages lost their context to the batch's limit.
 */
export function fitBatch(plans: readonly (AttributePlan | null)[], maxBytes: number): number {
  let total = 0
  for (const plan of plans) total += plan?.bare ?? 0
  let full = false
  let leftOut = 0
  for (const plan of plans) {
    if (plan === null || plan.write === null) continue
    full ||= total + plan.size - plan.bare > maxBytes
    if (full) {
      withoutCarrier(plan)
      plan.overLimit = true
      leftOut++
    } else total += plan.size - plan.bare
  }
  return leftOut
}

/**
 * Records the produce checkpoint of one message and returns the entry to send: a copy carrying
 * the context, or the entry itself when it cannot carry one (its throughput still counts).
 */
export function sendWithContext(dsm: DataStreams, node: CheckpointNode, entry: unknown, plan: AttributePlan, parent: PathwayContext | null): unknown {
  const ctx = dsm.setCheckpoint(node, parent, plan.size)
  return ctx === null || plan.write === null ? entry : plan.write(encodePathwayContext(ctx))
}

/** The JSON text of a `_datadog` attribute: String, or Binary (as SNS carries it, raw delivery on). */
export function carrierText(attribute: unknown): string | undefined {
  const text = read(attribute, 'StringValue')
  if (typeof text === 'string') return text
  const bytes = read(attribute, 'BinaryValue')
  // a view of the bytes, not a copy
  if (ArrayBuffer.isView(bytes) && bytes instanceof Uint8Array) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
  return undefined
}

/** Bytes of the attributes as SQS and SNS count them toward the message size: names, data types and values. */
export function attributesBytes(attributes: unknown): number {
  let size = 0
  for (const name of keysOf(attributes)) size += attributeBytes(name, read(attributes, name))
  return size
}

const LIST_KEYS = ['StringListValues', 'BinaryListValues'] as const

function attributeBytes(name: string, attribute: unknown): number {
  if (attribute === undefined || attribute === null) return 0
  let size = Buffer.byteLength(name) + bytesOf(read(attribute, 'DataType')) + bytesOf(read(attribute, 'StringValue')) + bytesOf(read(attribute, 'BinaryValue'))
  for (const key of LIST_KEYS) for (const v of items(read(attribute, key)) ?? []) size += bytesOf(v)
  return size
}
