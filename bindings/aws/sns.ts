/**
 * The journey of an SNS message (`@aws-sdk/client-sns`) up to its SQS subscribers. Publish and
 * PublishBatch record a produce checkpoint per message (edge tags `topic:<topic ARN>`, `type:sns`,
 * as dd-trace-js writes them) and write its context into a `_datadog` Binary message attribute.
 * SNS hands that attribute to an SQS subscription: with raw delivery, as a message attribute
 * (read like any SQS `_datadog`); without, inside the notification the SQS body holds, as
 * `MessageAttributes._datadog` `{ Type: 'Binary', Value: <base64> }`, read here for the SQS receive
 * (bindings/aws/sqs.ts), whose consume checkpoint then follows the publish.
 * Publishes to a phone number or a mobile endpoint (no TopicArn) are left alone.
 */
import { Buffer } from 'node:buffer'
import type { PathwayContext } from '../pathway/context.js'
import type { CheckpointNode, DataStreams } from '../api/data-streams.js'
import { TransportNodes, isLive } from '../instrument/transport-nodes.js'
import type { Instrumentation } from '../instrument/instrumentation.js'
import { DATADOG_KEY, isPlainObject, readCarrier } from './carrier.js'
import { fail, instrumentClientClass, interceptPlugin, type AwsPlugin, type Interception } from './middleware.js'
import { fitBatch, planAttributeCarrier, sendWithContext, type AttributePlan, type AttributeService } from './message-attributes.js'
import { contextsLeftOut, sendsFailed } from '../instrument/send-outcomes.js'
import { parentForSend } from '../instrument/received-messages.js'
import { copyWith, items, nonEmptyText, read } from '../common/input.js'
import { enabledDataStreams } from '../instrument/settings.js'

/**
 * The largest SNS message (body and attributes), which is also the most a PublishBatch may carry
 * in all, 256 KiB, less dd-trace-go's margin of 256 bytes for SNS's own accounting: a context that
 * would push a message or a batch past it is not written.
 */
const MAX_MESSAGE_BYTES = 262_144 - 256
const SNS: AttributeService = { destination: 'SNS topic', bodyKey: 'Message', maxBytes: MAX_MESSAGE_BYTES, maxBatchBytes: MAX_MESSAGE_BYTES, binary: true }

/**
 * `snsClient.middlewareStack.use(pathwiseSns(dsm))`: Data Streams Monitoring for this client.
 * Each message published must leave one of its 10 attributes free for `_datadog`.
 */
export function pathwiseSns(dsm: DataStreams): AwsPlugin {
  return snsPlugin(dsm, 'pathwiseSns')
}

/** The automatic mode: every SNSClient, created before or after, on its first call. */
export const snsInstrumentation: Instrumentation = {
  module: '@aws-sdk/client-sns',
  supportedVersions: '>=3.0.0 <4',
  patch: (exports, dsm) => instrumentClientClass(exports, 'SNSClient', dsm, (dsm, active) => snsPlugin(dsm, 'pathwiseSnsAuto', active)),
}

interface TopicNode {
  topic: string
  out: CheckpointNode | null
}

function snsPlugin(dsm: DataStreams, name: string, active?: () => boolean): AwsPlugin {
  if (enabledDataStreams(dsm) === null) return { applyToStack() {} }
  const topics = new TransportNodes<TopicNode>(
    (topicArn) => ({ topic: topicArn, out: dsm.node(['direction:out', `topic:${topicArn}`, 'type:sns']) }),
    (nodes) => isLive(nodes.out),
  )

  return interceptPlugin(
    name,
    (command, input): Interception | undefined => {
      if (command !== 'PublishCommand' && command !== 'PublishBatchCommand') return undefined
      const topicArn = nonEmptyText(read(input, 'TopicArn'))
      if (topicArn === undefined) return { input }
      const nodes = topics.get(topicArn)
      const parent = parentForSend(dsm)
      const destination = `SNS topic ${topicArn}`
      if (command === 'PublishCommand') {
        const plan = planOf(nodes, input)
        if (plan?.overLimit) contextsLeftOut(dsm, 1, destination, TOO_LARGE)
        return { input: publish(dsm, nodes, input, plan, parent), failed: () => sendsFailed(dsm, plan === null ? null : nodes.out, 1) }
      }
      const entries = items(read(input, 'PublishBatchRequestEntries'))
      if (entries === undefined) return { input }
      const plans = entries.map((entry) => planOf(nodes, entry))
      const tooLarge = plans.filter((plan) => plan?.overLimit).length
      const overBatch = fitBatch(plans, MAX_MESSAGE_BYTES)
      if (tooLarge > 0) contextsLeftOut(dsm, tooLarge, destination, TOO_LARGE)
      if (overBatch > 0) contextsLeftOut(dsm, overBatch, destination, BATCH_TOO_LARGE)
      const sent = entries.map((entry, i) => publish(dsm, nodes, entry, plans[i], parent))
      const checkpointed = plans.filter((plan) => plan !== null).length
      return {
        input: copyWith(input, 'PublishBatchRequestEntries', sent) ?? input,
        failed: () => sendsFailed(dsm, nodes.out, checkpointed),
        after: (output) => sendsFailed(dsm, nodes.out, items(read(output, 'Failed'))?.length ?? 0),
      }
    },
    active,
  )
}

const TOO_LARGE = `the context would have pushed a message past SNS's limit (${MAX_MESSAGE_BYTES} bytes: 256 KiB less dd-trace-go's margin)`
const BATCH_TOO_LARGE = `the context would have pushed a PublishBatch past SNS's limit (${MAX_MESSAGE_BYTES} bytes in all)`

/** How a message to publish carries the context; null when it is no message (then it goes as it came, uncounted). */
function planOf(nodes: TopicNode, entry: unknown): AttributePlan | null {
  if (nodes.out === null || entry === null || typeof entry !== 'object') return null
  try {
    return planAttributeCarrier(entry, SNS, nodes.topic)
  } catch (err) {
    fail('sns produce', err)
    return null
  }
}

function publish(dsm: DataStreams, nodes: TopicNode, entry: unknown, plan: AttributePlan | null, parent: PathwayContext | null): unknown {
  if (nodes.out === null || plan === null) return entry
  try {
    return sendWithContext(dsm, nodes.out, entry, plan, parent)
  } catch (err) {
    fail('sns produce', err)
    return entry
  }
}

/**
 * The context in the attributes of an SNS notification (parsed JSON, as an SQS subscription
 * without raw delivery receives it): `_datadog` as `{ Type: 'Binary', Value: <base64 of the JSON> }`,
 * or a String one, as other tracers may write it. Null when there is none.
 */
export function notificationContext(notification: Record<string, unknown>): PathwayContext | null {
  const attributes = notification.MessageAttributes
  const attribute = isPlainObject(attributes) ? attributes[DATADOG_KEY] : undefined
  if (!isPlainObject(attribute) || typeof attribute.Value !== 'string') return null
  if (attribute.Type === 'Binary') return readCarrier(Buffer.from(attribute.Value, 'base64').toString('utf8'))
  return attribute.Type === 'String' ? readCarrier(attribute.Value) : null
}
