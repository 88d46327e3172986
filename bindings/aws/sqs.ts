/**
 * The journey of an SQS message (`@aws-sdk/client-sqs`): SendMessage and SendMessageBatch record a
 * produce checkpoint per message and write its context into the `_datadog` String attribute;
 * ReceiveMessage asks for that attribute, records a consume checkpoint per message, and hands back
 * only the attributes the caller asked for. A message that carries no `_datadog` attribute may
 * still carry a context in its body: an SNS notification (raw delivery off) or an EventBridge event.
 */
import type { PathwayContext } from '../pathway/context.js'
import type { CheckpointNode, DataStreams } from '../api/data-streams.js'
import { TransportNodes, isLive } from '../instrument/transport-nodes.js'
import type { Instrumentation } from '../instrument/instrumentation.js'
import { DATADOG_KEY, parseCarrier, readCarrier } from './carrier.js'
import { fail, instrumentClientClass, interceptPlugin, type AwsPlugin, type Interception } from './middleware.js'
import { beginReceive, parentForSend, rememberMessageContext } from '../instrument/received-messages.js'
import { bytesOf } from './size.js'
import { copyWith, items, read } from '../common/input.js'
import { enabledDataStreams } from '../instrument/settings.js'
import { md5OfMessageAttributes, type SqsAttribute } from './sqs-md5.js'
import { attributesBytes, carrierText, planAttributeCarrier, sendWithContext, type AttributeService } from './message-attributes.js'
import { notificationContext } from './sns.js'
import { eventContext } from './eventbridge.js'

/** SQS carries `_datadog` as a String attribute; its largest message, body and attributes, is 1 MiB. */
const SQS: AttributeService = { destination: 'SQS queue', bodyKey: 'MessageBody', maxBytes: 1_048_576, binary: false }

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

/** The produce checkpoint of one message, and the entry to send. */
function produce(dsm: DataStreams, nodes: QueueNodes, entry: unknown, parent: PathwayContext | null): unknown {
  if (nodes.out === null || entry === null || typeof entry !== 'object') return entry
  try {
    return sendWithContext(dsm, nodes.out, entry, planAttributeCarrier(entry, SQS, nodes.queue), parent)
  } catch (err) {
    fail('sqs produce', err)
    return entry
  }
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
    const body = read(message, 'Body')
    const text = carrierText(read(attributes, DATADOG_KEY))
    const parent = text === undefined ? bodyContext(body) : readCarrier(text)
    const ctx = dsm.setCheckpoint(nodes.in, parent, bytesOf(body) + attributesBytes(attributes))
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

/**
 * The context in the body of a message without a `_datadog` attribute: an SNS notification (raw
 * delivery off), whose own attributes carry it, or whose message is an EventBridge event; or an
 * EventBridge event (a rule's SQS target). Other bodies cost a scan for the marker words, not a parse.
 */
function bodyContext(body: unknown): PathwayContext | null {
  if (typeof body !== 'string' || !body.startsWith('{') || !(body.includes('"Notification"') || body.includes('"detail-type"'))) return null
  const value = parseCarrier(body)
  if (value === null) return null
  if (value.Type === 'Notification') return notificationContext(value) ?? eventContext(typeof value.Message === 'string' ? parseCarrier(value.Message) : null)
  return eventContext(value)
}
