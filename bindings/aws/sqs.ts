/**
 * The journey of an SQS message (`@aws-sdk/client-sqs`): SendMessage and SendMessageBatch record a
 * produce checkpoint per message and write its context into the `_datadog` String attribute;
 * ReceiveMessage asks for that attribute, records a consume checkpoint per message, and hands back
 * only the attributes the caller asked for. A message that carries no `_datadog` attribute may
 * still carry a context in its body: an SNS notification (raw delivery off) or an EventBridge event.
 * Near the size limits (a queue's, sqs-queue-limits.ts, and a batch's 1 MiB) the context is left
 * out, and a send SQS refuses for its size is sent once more as the caller wrote it.
 */
import type { PathwayContext } from '../pathway/context.js'
import type { CheckpointNode, DataStreams } from '../api/data-streams.js'
import { TransportNodes, isLive } from '../instrument/transport-nodes.js'
import type { Instrumentation } from '../instrument/instrumentation.js'
import { DATADOG_KEY, parseCarrier, readCarrier } from './carrier.js'
import { clientOfCall, fail, instrumentClientClass, interceptPlugin, type AwsPlugin, type Interception } from './middleware.js'
import { beginReceive, parentForSend, rememberMessageContext } from '../instrument/received-messages.js'
import { bytesOf } from './size.js'
import { copyWith, items, read } from '../common/input.js'
import { enabledDataStreams } from '../instrument/settings.js'
import { md5OfMessageAttributes, type SqsAttribute } from './sqs-md5.js'
import { attributesBytes, carrierText, fitBatch, planAttributeCarrier, sendWithContext, type AttributePlan, type AttributeService } from './message-attributes.js'
import { MAX_BATCH_BYTES, QueueLimits, errorCode, isBatchTooLong, lookupThrough, type QueueLookup } from './sqs-queue-limits.js'
import { contextsLeftOut, sendsFailed } from '../instrument/send-outcomes.js'
import { followWalks } from '../instrument/message-iteration.js'
import { notificationContext } from './sns.js'
import { eventContext } from './eventbridge.js'

/** SQS carries `_datadog` as a String attribute; a queue's largest message is its own (sqs-queue-limits.ts), a batch's 1 MiB in all. */
const SQS: AttributeService = { destination: 'SQS queue', bodyKey: 'MessageBody', maxBytes: 1_048_576, maxBatchBytes: MAX_BATCH_BYTES, binary: false }

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
  patch: (exports, dsm) =>
    instrumentClientClass(exports, 'SQSClient', dsm, (dsm, active) => sqsPlugin(dsm, 'pathwiseSqsAuto', active, lookupThrough(exports, clientOfCall))),
}

interface QueueNodes {
  queue: string
  out: CheckpointNode | null
  in: CheckpointNode | null
}

function sqsPlugin(dsm: DataStreams, name: string, active?: () => boolean, lookup?: QueueLookup): AwsPlugin {
  if (enabledDataStreams(dsm) === null) return { applyToStack() {} }
  const queues = new TransportNodes<QueueNodes>(
    (queueUrl) => {
      const queue = queueName(queueUrl)
      return { queue, out: dsm.node(['direction:out', `topic:${queue}`, 'type:sqs']), in: dsm.node(['direction:in', `topic:${queue}`, 'type:sqs']) }
    },
    (nodes) => isLive(nodes.out) && isLive(nodes.in),
  )
  const limits = new QueueLimits(lookup)

  return interceptPlugin(
    name,
    (command, input): Interception | undefined => {
      if (command === 'GetQueueAttributesCommand' || command === 'SetQueueAttributesCommand' || command === 'CreateQueueCommand') {
        return { input, after: (output) => limits.learnFrom(command, input, output) }
      }
      if (command !== 'SendMessageCommand' && command !== 'SendMessageBatchCommand' && command !== 'ReceiveMessageCommand') return undefined
      const queueUrl = read(input, 'QueueUrl')
      if (typeof queueUrl !== 'string') return { input }
      const nodes = queues.get(queueUrl)
      if (command === 'ReceiveMessageCommand') return receive(dsm, nodes, input)
      const send: QueueSend = { dsm, nodes, limits, queueUrl, parent: parentForSend(dsm) }
      return command === 'SendMessageCommand' ? sendOne(send, input) : sendBatch(send, input)
    },
    active,
  )
}

/** The queue name: the last path segment of the queue URL. */
function queueName(queueUrl: string): string {
  const url = queueUrl.endsWith('/') ? queueUrl.slice(0, -1) : queueUrl
  return url.slice(url.lastIndexOf('/') + 1)
}

/** One SendMessage or SendMessageBatch call. */
interface QueueSend {
  dsm: DataStreams
  nodes: QueueNodes
  limits: QueueLimits
  queueUrl: string
  parent: PathwayContext | null
}

const refusedWhy = 'SQS refused the message with the context for its size'

/** SendMessage: the message carries the context if it stays within the queue's limit; refused for its size with it, it is sent once more as written. */
function sendOne(send: QueueSend, input: unknown): Interception {
  const { dsm, nodes, limits, queueUrl } = send
  const plan = planOf(send, input, limits.of(queueUrl).bytes)
  if (plan?.overLimit) contextsLeftOut(dsm, 1, `SQS queue ${nodes.queue}`, queueTooSmall(limits, queueUrl))
  const sent = produce(send, input, plan)
  return {
    input: sent,
    retry(err) {
      if (sent === input || plan === null || !limits.refused(queueUrl, plan.size, errorCode(err), read(err, 'message'))) return undefined
      contextsLeftOut(dsm, 1, `SQS queue ${nodes.queue}`, refusedWhy)
      return input
    },
    failed: () => sendsFailed(dsm, plan === null ? null : nodes.out, 1),
  }
}

/**
 * SendMessageBatch: contexts for the messages that stay within the queue's limit, in order while
 * the batch stays within 1 MiB in all. A batch refused whole for its length is sent once more as
 * written; entries refused for their size, once more as written in a second batch, whose answer
 * is folded into the first.
 */
function sendBatch(send: QueueSend, input: unknown): Interception {
  const { dsm, nodes, limits, queueUrl } = send
  const entries = items(read(input, 'Entries'))
  if (entries === undefined) return { input }
  const limit = limits.of(queueUrl).bytes
  const plans = entries.map((entry) => planOf(send, entry, limit))
  const destination = `SQS queue ${nodes.queue}`
  const tooLarge = plans.filter((plan) => plan?.overLimit).length
  const overBatch = fitBatch(plans, MAX_BATCH_BYTES)
  if (tooLarge > 0) contextsLeftOut(dsm, tooLarge, destination, queueTooSmall(limits, queueUrl))
  if (overBatch > 0) contextsLeftOut(dsm, overBatch, destination, `the context would have pushed a SendMessageBatch past SQS's ${MAX_BATCH_BYTES} bytes in all`)
  const sent = entries.map((entry, i) => produce(send, entry, plans[i]))
  const carrying = new Map<unknown, { entry: unknown; size: number }>()
  sent.forEach((entry, i) => {
    if (entry !== entries[i]) carrying.set(read(entry, 'Id'), { entry: entries[i], size: plans[i]?.size ?? 0 })
  })
  const checkpointed = plans.filter((plan) => plan !== null).length
  return {
    input: copyWith(input, 'Entries', sent) ?? input,
    retry(err) {
      if (carrying.size === 0 || !isBatchTooLong(err)) return undefined
      contextsLeftOut(dsm, carrying.size, destination, 'SQS refused the SendMessageBatch with the contexts for its length')
      return input
    },
    resend(output) {
      const again: unknown[] = []
      for (const failure of items(read(output, 'Failed')) ?? []) {
        const carried = carrying.get(read(failure, 'Id'))
        if (carried !== undefined && limits.refused(queueUrl, carried.size, read(failure, 'Code'), read(failure, 'Message'))) again.push(carried.entry)
      }
      if (again.length === 0) return undefined
      contextsLeftOut(dsm, again.length, destination, refusedWhy)
      return { input: copyWith(input, 'Entries', again), merge: mergeBatchAnswers }
    },
    failed: () => sendsFailed(dsm, nodes.out, checkpointed),
    after: (output) => sendsFailed(dsm, nodes.out, items(read(output, 'Failed'))?.length ?? 0),
  }
}

function queueTooSmall(limits: QueueLimits, queueUrl: string): string {
  const limit = limits.of(queueUrl)
  return limit.known
    ? `the context would have pushed a message past the queue's MaximumMessageSize (${limit.bytes} bytes)`
    : `the context would have pushed a message past ${limit.bytes} bytes, the size pathwise assumes until it learns the queue's MaximumMessageSize ` +
        '(the automatic mode asks SQS; in the middleware mode a GetQueueAttributes of it through this client teaches it)'
}

/** A batch's answer with the entries sent again: those entries' first failures replaced by how their resend went. */
function mergeBatchAnswers(first: unknown, second: unknown): unknown {
  const resent = new Set<unknown>()
  for (const entry of [...(items(read(second, 'Successful')) ?? []), ...(items(read(second, 'Failed')) ?? [])]) resent.add(read(entry, 'Id'))
  const failed = [...(items(read(first, 'Failed')) ?? []).filter((f) => !resent.has(read(f, 'Id'))), ...(items(read(second, 'Failed')) ?? [])]
  const successful = [...(items(read(first, 'Successful')) ?? []), ...(items(read(second, 'Successful')) ?? [])]
  const merged = copyWith(first, 'Successful', successful)
  return merged === undefined ? first : (copyWith(merged, 'Failed', failed) ?? first)
}

/** How a message to send carries the context; null when it is no message (it then goes as it came, uncounted). */
function planOf(send: QueueSend, entry: unknown, limit: number): AttributePlan | null {
  if (send.nodes.out === null || entry === null || typeof entry !== 'object') return null
  try {
    return planAttributeCarrier(entry, SQS, send.nodes.queue, limit)
  } catch (err) {
    fail('sqs produce', err)
    return null
  }
}

/** The produce checkpoint of one message, and the entry to send. */
function produce(send: QueueSend, entry: unknown, plan: AttributePlan | null): unknown {
  if (send.nodes.out === null || plan === null) return entry
  try {
    return sendWithContext(send.dsm, send.nodes.out, entry, plan, send.parent)
  } catch (err) {
    fail('sqs produce', err)
    return entry
  }
}

/**
 * ReceiveMessage: `_datadog` asked for unless the names select it for every service that speaks
 * SQS (itself, `All`, `.*`), then removed from what the caller gets unless the names select it
 * as SQS reads them (a prefix `p.*` selects the names that start with `p`: `_dat.*` does; some
 * emulators read it as `p.`, which no name without a dot starts with, so it is asked for by name).
 */
function receive(dsm: DataStreams, nodes: QueueNodes, input: unknown): Interception {
  const names = items(read(input, 'MessageAttributeNames'))
  // A copy that asks for `_datadog` too; none if the input cannot be copied.
  const asking =
    names !== undefined && names.some(selectsDatadogEverywhere)
      ? undefined
      : copyWith(input, 'MessageAttributeNames', names === undefined ? [DATADOG_KEY] : [...names, DATADOG_KEY])
  const trimming = asking !== undefined && !(names ?? []).some(selectsDatadog)
  const handOff = beginReceive(dsm)
  return {
    input: asking ?? input,
    after(output: unknown) {
      const messages = read(output, 'Messages')
      const list = items(messages)
      if (list === undefined) return
      const ctxs: PathwayContext[] = []
      for (const message of list) {
        if (message === null || typeof message !== 'object') continue
        const ctx = consume(dsm, nodes, message)
        if (ctx !== null) ctxs.push(ctx)
        if (trimming) trim(message as ReceivedMessage)
      }
      if (ctxs.length === 0) return
      handOff(ctxs)
      followWalks(dsm, messages)
    },
  }
}

/** Whether a name of MessageAttributeNames selects `_datadog` as SQS reads it: itself, `All`, `*`, `.*` or a prefix of it such as `_dat.*`. */
function selectsDatadog(name: unknown): boolean {
  if (typeof name !== 'string') return false
  if (name === DATADOG_KEY || name === 'All' || name === '*') return true
  return name.endsWith('.*') && DATADOG_KEY.startsWith(name.slice(0, -2))
}

/** Whether a name selects `_datadog` however a service reads prefixes: itself, `All` or `.*`. */
function selectsDatadogEverywhere(name: unknown): boolean {
  return name === DATADOG_KEY || name === 'All' || name === '.*'
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
