/**
 * The journey of an SQS message (`@aws-sdk/client-sqs`): SendMessage and SendMessageBatch record a
 * produce checkpoint per message and write its context into the `_datadog` String attribute;
 * ReceiveMessage asks for that attribute, records a consume checkpoint per message, and hands back
 * only the attributes the caller asked for.
 */
import { Buffer } from 'node:buffer'
import { encodePathwayContext, type PathwayContext } from '../context.js'
import type { CheckpointNode, DataStreams } from '../data-streams.js'
import { TransportNodes, isLive } from '../transport-nodes.js'
import type { Instrumentation } from '../instrument/instrumentation.js'
import { DATADOG_KEY, carrierBytes, carrierPrefix, closeCarrier, parseCarrier, readCarrier } from './carrier.js'
import { fail, instrumentClientClass, interceptPlugin, log, type AwsPlugin, type Interception } from './middleware.js'
import { beginReceive, parentForSend, rememberMessageContext } from '../received-messages.js'
import { bytesOf } from './size.js'
import { copyWith, enabledDataStreams, items, keysOf, read } from '../input.js'
import { md5OfMessageAttributes, type SqsAttribute } from './sqs-md5.js'

/** SQS refuses a message with more message attributes than this. */
const MAX_ATTRIBUTES = 10
/** The largest message SQS takes (body and attributes): a context that would push a message past it is not written. */
const MAX_MESSAGE_BYTES = 1_048_576
const DATADOG_ATTRIBUTE_BYTES = DATADOG_KEY.length + 'String'.length

interface ReceivedMessage {
  MessageAttributes?: Record<string, SqsAttribute>
  MD5OfMessageAttributes?: string
}

/**
 * `sqsClient.middlewareStack.use(pathwiseSqs(dsm))`: Data Streams Monitoring for this client.
 * Each message sent must leave one of its 10 attributes free for `_datadog`.
 */
export function pathwiseSqs(dsm: DataStreams): AwsPlugin {
  return sqsPlugin(dsm, 'pathwiseSqs')
}

/** The automatic mode: every SQSClient, created before or after, on its first call. */
export const sqsInstrumentation: Instrumentation = {
  module: '@aws-sdk/client-sqs',
  supportedVersions: '>=3.0.0 <4',
  patch: (exports, dsm) => instrumentClientClass(exports, 'SQSClient', dsm, (dsm, active) => sqsPlugin(dsm, 'pathwiseSqsAuto', active)),
}

interface QueueNodes {
  queue: string
  out: CheckpointNode | null
  in: CheckpointNode | null
}

function sqsPlugin(dsm: DataStreams, name: string, active?: () => boolean): AwsPlugin {
  if (enabledDataStreams(dsm) === null) return { applyToStack() {} }
  const queues = new TransportNodes<QueueNodes>(
    (queueUrl) => {
      const queue = queueName(queueUrl)
      return { queue, out: dsm.node(['direction:out', `topic:${queue}`, 'type:sqs']), in: dsm.node(['direction:in', `topic:${queue}`, 'type:sqs']) }
    },
    (nodes) => isLive(nodes.out) && isLive(nodes.in),
  )

  return interceptPlugin(
    name,
    (command, input): Interception | undefined => {
      if (command !== 'SendMessageCommand' && command !== 'SendMessageBatchCommand' && command !== 'ReceiveMessageCommand') return undefined
      const queueUrl = read(input, 'QueueUrl')
      if (typeof queueUrl !== 'string') return { input }
      const nodes = queues.get(queueUrl)
      if (command === 'ReceiveMessageCommand') return receive(dsm, nodes, input)
      const parent = parentForSend(dsm)
      if (command === 'SendMessageCommand') return { input: produce(dsm, nodes, input, parent) }
      const entries = items(read(input, 'Entries'))
      if (entries === undefined) return { input }
      return { input: copyWith(input, 'Entries', entries.map((entry) => produce(dsm, nodes, entry, parent))) ?? input }
    },
    active,
  )
}

/** The queue name: the last path segment of the queue URL. */
function queueName(queueUrl: string): string {
  const url = queueUrl.endsWith('/') ? queueUrl.slice(0, -1) : queueUrl
  return url.slice(url.lastIndexOf('/') + 1)
}

/**
 * Records the produce checkpoint of one message and returns the entry to send: a copy carrying
 * the context, or the entry itself when it cannot carry one (its throughput still counts).
 */
function produce(dsm: DataStreams, nodes: QueueNodes, entry: unknown, parent: PathwayContext | null): unknown {
  if (nodes.out === null || entry === null || typeof entry !== 'object') return entry
  try {
    const attributes = read(entry, 'MessageAttributes')
    const existing = read(attributes, DATADOG_KEY)
    let size = bytesOf(read(entry, 'MessageBody')) + attributesBytes(attributes)
    let prefix: string | null = null
    // Attributes that are no object cannot take the carrier: the message goes as it came.
    const canCarry = attributes === undefined || attributes === null || typeof attributes === 'object'
    if (canCarry && existing === undefined && keysOf(attributes).length >= MAX_ATTRIBUTES) {
      log.warnOnce(
        `sqs-attributes:${nodes.queue}`,
        `a message sent to SQS queue ${nodes.queue} already has ${MAX_ATTRIBUTES} message attributes, the most SQS allows: ` +
          `it is sent without the pathway context (its consumers start a new pathway). Leave one attribute free for ${DATADOG_KEY}.`,
      )
    } else if (canCarry) {
      // An existing `_datadog` that holds no JSON object is someone else's: left as it is.
      const carrier = existing === undefined ? undefined : parseCarrier(carrierText(existing) ?? '')
      prefix = carrier === null ? null : carrierPrefix(carrier)
      if (prefix !== null) {
        const withCarrier = size - attributeBytes(DATADOG_KEY, existing) + DATADOG_ATTRIBUTE_BYTES + carrierBytes(Buffer.byteLength(prefix))
        if (withCarrier > MAX_MESSAGE_BYTES) prefix = null
        else size = withCarrier
      }
    }
    const ctx = dsm.setCheckpoint(nodes.out, parent, size)
    if (ctx === null || prefix === null) return entry
    const carrier: SqsAttribute = { DataType: 'String', StringValue: closeCarrier(prefix, encodePathwayContext(ctx)) }
    // A copy: the caller's command keeps its input as written.
    const withCarrier = attributes === undefined || attributes === null ? { [DATADOG_KEY]: carrier } : copyWith(attributes, DATADOG_KEY, carrier)
    return (withCarrier === undefined ? undefined : copyWith(entry, 'MessageAttributes', withCarrier)) ?? entry
  } catch (err) {
    fail('sqs produce', err)
    return entry
  }
}

/** The JSON text of an existing `_datadog` attribute (String, or Binary as dd-trace's SNS writes it). */
function carrierText(attribute: unknown): string | undefined {
  const text = read(attribute, 'StringValue')
  if (typeof text === 'string') return text
  const bytes = read(attribute, 'BinaryValue')
  if (ArrayBuffer.isView(bytes) && bytes instanceof Uint8Array) return Buffer.from(bytes).toString('utf8')
  return undefined
}

function receive(dsm: DataStreams, nodes: QueueNodes, input: unknown): Interception {
  const names = items(read(input, 'MessageAttributeNames'))
  // A copy that asks for `_datadog` too, then trimmed from what the caller gets; none if the input cannot be copied.
  const asking =
    names !== undefined && names.some(selectsDatadog)
      ? undefined
      : copyWith(input, 'MessageAttributeNames', names === undefined ? [DATADOG_KEY] : [...names, DATADOG_KEY])
  const handOff = beginReceive(dsm)
  return {
    input: asking ?? input,
    after(output: unknown) {
      const messages = items(read(output, 'Messages'))
      if (messages === undefined) return
      let last: PathwayContext | null = null
      for (const message of messages) {
        if (message === null || typeof message !== 'object') continue
        last = consume(dsm, nodes, message) ?? last
        if (asking !== undefined) trim(message as ReceivedMessage)
      }
      if (last !== null) handOff(last)
    },
  }
}

/** Whether a name of MessageAttributeNames selects `_datadog`: itself, `All`, `.*` or a prefix such as `_dat.*`. */
function selectsDatadog(name: unknown): boolean {
  if (typeof name !== 'string') return false
  if (name === DATADOG_KEY || name === 'All') return true
  return name.endsWith('.*') && DATADOG_KEY.startsWith(name.slice(0, -2))
}

function consume(dsm: DataStreams, nodes: QueueNodes, message: object): PathwayContext | null {
  if (nodes.in === null) return null
  try {
    const attributes = read(message, 'MessageAttributes')
    const text = carrierText(read(attributes, DATADOG_KEY))
    const parent = text === undefined ? null : readCarrier(text)
    const ctx = dsm.setCheckpoint(nodes.in, parent, bytesOf(read(message, 'Body')) + attributesBytes(attributes))
    if (ctx !== null) rememberMessageContext(message, ctx)
    return ctx
  } catch (err) {
    fail('sqs consume', err)
    return null
  }
}

/** Removes the `_datadog` the caller did not ask for, leaving the message as SQS would have returned it. */
function trim(message: ReceivedMessage): void {
  try {
    const attributes = message.MessageAttributes
    if (attributes === undefined || attributes === null || !(DATADOG_KEY in attributes)) return
    const { [DATADOG_KEY]: _datadog, ...rest } = attributes
    if (Object.keys(rest).length === 0) {
      delete message.MessageAttributes
      delete message.MD5OfMessageAttributes
    } else {
      message.MessageAttributes = rest
      if (message.MD5OfMessageAttributes !== undefined) message.MD5OfMessageAttributes = md5OfMessageAttributes(rest)
    }
  } catch (err) {
    fail('sqs trim', err)
  }
}

/** Bytes of the attributes as SQS counts them toward the message size: names, data types and values. */
function attributesBytes(attributes: unknown): number {
  let size = 0
  for (const name of keysOf(attributes)) size += attributeBytes(name, read(attributes, name))
  return size
}

function attributeBytes(name: string, attribute: unknown): number {
  if (attribute === undefined || attribute === null) return 0
  const value = (key: string) => bytesOf(read(attribute, key))
  let size = Buffer.byteLength(name) + value('DataType') + value('StringValue') + value('BinaryValue')
  for (const key of ['StringListValues', 'BinaryListValues']) for (const v of items(read(attribute, key)) ?? []) size += bytesOf(v)
  return size
}
