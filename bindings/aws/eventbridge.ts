/**
 * The journey of an EventBridge event (`@aws-sdk/client-eventbridge`) up to an SQS target.
 * PutEvents records a produce checkpoint per entry (edge tags `exchange:<bus>`, `topic:<detail
 * type>`, `type:eventbridge`, as dd-trace-js writes them) and writes its context under
 * `_datadog` into the entry's Detail when that is a JSON object (the entry's TraceHeader is X-Ray's).
 * The Detail's text is spliced, never re-serialized; any other Detail goes as it came.
 * A rule's SQS target receives the event as the message body, `detail` holding `_datadog`: the
 * SQS receive (bindings/aws/sqs.ts) reads it here, directly or inside an SNS notification.
 */
import type { PathwayContext } from '../pathway/context.js'
import { encodePathwayContext } from '../pathway/context.js'
import type { CheckpointNode, DataStreams } from '../api/data-streams.js'
import { TransportNodes, isLive } from '../instrument/transport-nodes.js'
import type { Instrumentation } from '../instrument/instrumentation.js'
import { DATADOG_KEY, isPlainObject, readCarrierValue } from './carrier.js'
import { planJsonInjection, type JsonInjection } from './json-record.js'
import { fail, instrumentClientClass, interceptPlugin, type AwsPlugin, type Interception } from './middleware.js'
import { parentForSend } from '../instrument/received-messages.js'
import { bytesOf } from './size.js'
import { copyWith, items, nonEmptyText, read } from '../common/input.js'
import { enabledDataStreams } from '../instrument/settings.js'
import { contextsLeftOut, sendsFailed } from '../instrument/send-outcomes.js'

/**
 * The most a PutEvents request's entries may weigh together, as EventBridge counts them (its
 * documented limit, 256 KB): contexts go into the entries in order while the request stays within
 * it; the entries past that point go as written.
 */
const MAX_REQUEST_BYTES = 262_144
/** What EventBridge counts for an entry's Time, when it is given. */
const TIME_BYTES = 14

/** `eventBridgeClient.middlewareStack.use(pathwiseEventBridge(dsm))`: Data Streams Monitoring for this client. */
export function pathwiseEventBridge(dsm: DataStreams): AwsPlugin {
  return eventBridgePlugin(dsm, 'pathwiseEventBridge')
}

/** The automatic mode: every EventBridgeClient, created before or after, on its first call. */
export const eventBridgeInstrumentation: Instrumentation = {
  module: '@aws-sdk/client-eventbridge',
  supportedVersions: '>=3.0.0 <4',
  patch: (exports, dsm) =>
    instrumentClientClass(exports, 'EventBridgeClient', dsm, (dsm, active) => eventBridgePlugin(dsm, 'pathwiseEventBridgeAuto', active)),
}

/** One entry to put: its bus, its node, its size as sent, and where its context goes (null: nowhere). */
interface Entry {
  bus: string
  node: CheckpointNode | null
  /** Bytes of the entry's payload as sent: Source, DetailType, Detail and Resources. */
  size: number
  /** Bytes of the entry without the context. */
  bare: number
  time: number
  injection: JsonInjection | null
}

function eventBridgePlugin(dsm: DataStreams, name: string, active?: () => boolean): AwsPlugin {
  if (enabledDataStreams(dsm) === null) return { applyToStack() {} }
  // Keyed by bus and detail type, which a NUL cannot be part of in either.
  const nodes = new TransportNodes<CheckpointNode | null>((key) => {
    const [bus, detailType] = key.split('\0')
    return dsm.node(['direction:out', `exchange:${bus}`, `topic:${detailType}`, 'type:eventbridge'])
  }, isLive)

  const plan = (entry: unknown): Entry | null => {
    if (entry === null || typeof entry !== 'object') return null
    try {
      const bus = nonEmptyText(read(entry, 'EventBusName')) ?? 'default'
      const detailType = read(entry, 'DetailType')
      const node = nodes.get(`${bus}\0${typeof detailType === 'string' ? detailType : 'unknown'}`)
      const detail = read(entry, 'Detail')
      let others = bytesOf(read(entry, 'Source')) + bytesOf(detailType)
      for (const resource of items(read(entry, 'Resources')) ?? []) others += bytesOf(resource)
      const injection = node === null || typeof detail !== 'string' ? null : planJsonInjection(detail)
      const bare = others + bytesOf(detail)
      const time = read(entry, 'Time') === undefined ? 0 : TIME_BYTES
      return { bus, node, bare, time, injection, size: injection === null ? bare : others + injection.size }
    } catch (err) {
      fail('eventbridge produce', err)
      return null
    }
  }

  const put = (entry: unknown, planned: Entry | null, parent: PathwayContext | null): unknown => {
    if (planned === null || planned.node === null) return entry
    try {
      const ctx = dsm.setCheckpoint(planned.node, parent, planned.size)
      if (ctx === null || planned.injection === null) return entry
      // A copy: the caller's command keeps its input as written.
      return copyWith(entry, 'Detail', planned.injection.write(encodePathwayContext(ctx))) ?? entry
    } catch (err) {
      fail('eventbridge produce', err)
      return entry
    }
  }

  /** Contexts for the entries in order while the request stays within 256 KB; the rest go as written, counted and said once per bus. */
  const fitRequest = (plans: (Entry | null)[]): void => {
    let total = 0
    for (const planned of plans) if (planned !== null) total += planned.bare + planned.time
    let leftOut = 0
    let bus = ''
    for (const planned of plans) {
      if (planned === null || planned.injection === null) continue
      if (leftOut === 0 && total + planned.size - planned.bare < MAX_REQUEST_BYTES) {
        total += planned.size - planned.bare
        continue
      }
      planned.injection = null
      planned.size = planned.bare
      bus ||= planned.bus
      leftOut++
    }
    if (leftOut > 0) contextsLeftOut(dsm, leftOut, `EventBridge bus ${bus}`, `the contexts would have pushed a PutEvents past EventBridge's ${MAX_REQUEST_BYTES} bytes in all`)
  }

  /** The failed sends of the entries `failed(i)` says were refused, counted at each one's node. */
  const failedEntries = (plans: (Entry | null)[], failed: (i: number) => boolean): void => {
    plans.forEach((planned, i) => {
      if (planned !== null && failed(i)) sendsFailed(dsm, planned.node, 1)
    })
  }

  return interceptPlugin(
    name,
    (command, input): Interception | undefined => {
      if (command !== 'PutEventsCommand') return undefined
      const entries = items(read(input, 'Entries'))
      if (entries === undefined) return { input }
      const parent = parentForSend(dsm)
      const plans = entries.map(plan)
      fitRequest(plans)
      const sent = entries.map((entry, i) => put(entry, plans[i], parent))
      return {
        input: copyWith(input, 'Entries', sent) ?? input,
        failed: () => failedEntries(plans, () => true),
        // The answer's entries are in the request's order; a refused one carries an ErrorCode.
        after: (output) => {
          const results = items(read(output, 'Entries')) ?? []
          failedEntries(plans, (i) => read(results[i], 'ErrorCode') !== undefined)
        },
      }
    },
    active,
  )
}

/**
 * The context in an EventBridge event (parsed JSON, as a rule's SQS target receives it): under
 * `detail._datadog`. Null when the value is no event or carries none.
 */
export function eventContext(event: Record<string, unknown> | null): PathwayContext | null {
  if (event === null || event['detail-type'] === undefined || !isPlainObject(event.detail)) return null
  return readCarrierValue(event.detail[DATADOG_KEY])
}
