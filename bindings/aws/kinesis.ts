/**
 * The journey of a Kinesis record (`@aws-sdk/client-kinesis`). Records have no attributes, so by
 * default no context travels: PutRecord and PutRecords record a produce checkpoint per record, and
 * GetRecords a consume checkpoint per record that starts a new segment at the record's
 * ApproximateArrivalTimestamp. Its edge latency is then the time the record spent in the stream,
 * end-to-end latency is the sum of the segments' latencies, and throughput counts per segment.
 *
 * Opt-in (`jsonContext`), because it changes the user's data: the context goes under `_datadog`
 * into records whose data is a JSON object, as dd-trace does, and is read back on GetRecords,
 * which gives exact end-to-end pathways.
 *
 * The topic is the stream name when the request gives one, else its ARN. GetRecords names no
 * stream: it is the one GetShardIterator was asked about for that iterator (followed along
 * NextShardIterator), else the request's StreamARN.
 */
import { encodePathwayContext, type PathwayContext } from '../pathway/context.js'
import type { CheckpointNode, CheckpointTiming, DataStreams } from '../api/data-streams.js'
import { TransportNodes, isLive } from '../instrument/transport-nodes.js'
import type { Instrumentation } from '../instrument/instrumentation.js'
import { planJsonInjection, readJsonContext, type JsonInjection } from './json-record.js'
import { fail, instrumentClientClass, interceptPlugin, type AwsPlugin, type Interception } from './middleware.js'
import { beginReceive, parentForSend, rememberMessageContext } from '../instrument/received-messages.js'
import { contextsLeftOut, sendsFailed } from '../instrument/send-outcomes.js'
import { followWalks } from '../instrument/message-iteration.js'
import { bytesOf } from './size.js'
import { copyWith, items, nonEmptyText, read } from '../common/input.js'
import { enabledDataStreams, settingsOf } from '../instrument/settings.js'

export interface PathwiseKinesisOptions {
  /**
   * Writes the pathway context under `_datadog` into records whose data is a JSON object, and reads
   * it back on GetRecords (where it stays in the data handed back). Changes the records' data (by
   * about 70 bytes); other data is untouched.
   * Default false; in the automatic mode, true when its DataStreams was created with PATHWISE_KINESIS_JSON_CONTEXT=true.
   */
  jsonContext?: boolean
}

/** `kinesisClient.middlewareStack.use(pathwiseKinesis(dsm))`: Data Streams Monitoring for this client. */
export function pathwiseKinesis(dsm: DataStreams, options: PathwiseKinesisOptions = {}): AwsPlugin {
  return kinesisPlugin(dsm, 'pathwiseKinesis', { jsonContext: read(options, 'jsonContext') === true })
}

/** The automatic mode: every KinesisClient, created before or after, on its first call. */
export const kinesisInstrumentation: Instrumentation = {
  module: '@aws-sdk/client-kinesis',
  supportedVersions: '>=3.0.0 <4',
  patch: (exports, dsm) =>
    instrumentClientClass(exports, 'KinesisClient', dsm, (dsm, active) =>
      kinesisPlugin(dsm, 'pathwiseKinesisAuto', { jsonContext: settingsOf(dsm).kinesisJsonContext }, active),
    ),
}

/** The largest record Kinesis takes (data and partition key): a context that would push a record past it is not written. */
const MAX_RECORD_BYTES = 1_048_576
/** The most a PutRecords request's records (data and partition keys) may weigh together: contexts go in order while it stays within. */
const MAX_REQUEST_BYTES = 5_242_880
/** Iterators whose stream is remembered; abandoned ones (they expire after 5 minutes) make way for new ones. */
const MAX_ITERATORS = 1000

/** One record to put: bytes of its data and partition key as sent and as written, of its explicit hash key, and where its context goes. */
interface RecordPlan {
  bare: number
  size: number
  hashKey: number
  injection: JsonInjection | null
}

interface StreamNodes {
  out: CheckpointNode | null
  in: CheckpointNode | null
}

function kinesisPlugin(dsm: DataStreams, name: string, options: PathwiseKinesisOptions, active?: () => boolean): AwsPlugin {
  if (enabledDataStreams(dsm) === null) return { applyToStack() {} }
  const jsonContext = options.jsonContext === true
  const streams = new TransportNodes<StreamNodes>(
    (stream) => {
      // A GetRecords whose stream is unknown (key '') still counts, without a topic.
      const topic = stream === '' ? [] : [`topic:${stream}`]
      return { out: dsm.node(['direction:out', ...topic, 'type:kinesis']), in: dsm.node(['direction:in', ...topic, 'type:kinesis']) }
    },
    (nodes) => isLive(nodes.out) && isLive(nodes.in),
  )
  const nodesOf = (stream: string | undefined): StreamNodes => streams.get(stream ?? '')
  const iterators = new Map<string, string>()
  const rememberIterator = (iterator: unknown, stream: string | undefined) => {
    if (typeof iterator !== 'string' || stream === undefined) return
    if (iterators.size >= MAX_ITERATORS) iterators.delete(iterators.keys().next().value!)
    iterators.set(iterator, stream)
  }

  /** How one record goes: its size with and without the context, and the injection (null: none). */
  const plan = (stream: string | undefined, entry: unknown): RecordPlan | null => {
    if (entry === null || typeof entry !== 'object') return null
    try {
      const data = read(entry, 'Data')
      const partitionKey = bytesOf(read(entry, 'PartitionKey'))
      const bare = bytesOf(data) + partitionKey
      let injection = jsonContext ? planJsonInjection(data) : null
      if (injection !== null && injection.size + partitionKey > MAX_RECORD_BYTES) {
        contextsLeftOut(dsm, 1, `Kinesis stream ${stream ?? ''}`, `the context would have pushed a record past Kinesis's ${MAX_RECORD_BYTES} bytes`)
        injection = null
      }
      return { bare, size: injection === null ? bare : injection.size + partitionKey, hashKey: bytesOf(read(entry, 'ExplicitHashKey')), injection }
    } catch (err) {
      fail('kinesis produce', err)
      return null
    }
  }

  const put = (nodes: StreamNodes, entry: unknown, planned: RecordPlan | null, parent: PathwayContext | null): unknown => {
    if (nodes.out === null || planned === null) return entry
    try {
      const ctx = dsm.setCheckpoint(nodes.out, parent, planned.size + planned.hashKey)
      if (ctx === null || planned.injection === null) return entry
      // A copy: the caller's command keeps its input as written.
      return copyWith(entry, 'Data', planned.injection.write(encodePathwayContext(ctx))) ?? entry
    } catch (err) {
      fail('kinesis produce', err)
      return entry
    }
  }

  /** Contexts for a PutRecords' records in order while the request stays within 5 MiB; the rest go as written. */
  const fitRequest = (stream: string | undefined, plans: (RecordPlan | null)[]): void => {
    let total = 0
    for (const p of plans) total += p?.bare ?? 0
    let leftOut = 0
    for (const p of plans) {
      if (p === null || p.injection === null) continue
      if (leftOut === 0 && total + p.size - p.bare <= MAX_REQUEST_BYTES) {
        total += p.size - p.bare
        continue
      }
      p.injection = null
      p.size = p.bare
      leftOut++
    }
    if (leftOut > 0) contextsLeftOut(dsm, leftOut, `Kinesis stream ${stream ?? ''}`, `the contexts would have pushed a PutRecords past Kinesis's ${MAX_REQUEST_BYTES} bytes in all`)
  }

  const get = (nodes: StreamNodes, record: unknown): PathwayContext | null => {
    if (nodes.in === null || record === null || typeof record !== 'object') return null
    try {
      const data = read(record, 'Data')
      const parent = jsonContext ? readJsonContext(data) : null
      const arrivalMs = timeOf(read(record, 'ApproximateArrivalTimestamp'))
      // No context came along: a new segment, from the time the record entered the stream.
      const timing: CheckpointTiming | undefined =
        parent === null && Number.isFinite(arrivalMs) ? { pathwayStartMs: arrivalMs, edgeStartMs: arrivalMs } : undefined
      const ctx = dsm.setCheckpoint(nodes.in, parent, bytesOf(data) + bytesOf(read(record, 'PartitionKey')), timing)
      if (ctx !== null) rememberMessageContext(record, ctx)
      return ctx
    } catch (err) {
      fail('kinesis consume', err)
      return null
    }
  }

  return interceptPlugin(
    name,
    (command, input): Interception | undefined => {
      switch (command) {
        case 'PutRecordCommand': {
          const stream = streamOf(input)
          const nodes = nodesOf(stream)
          const planned = plan(stream, input)
          return { input: put(nodes, input, planned, parentForSend(dsm)), failed: () => sendsFailed(dsm, planned === null ? null : nodes.out, 1) }
        }
        case 'PutRecordsCommand': {
          const entries = items(read(input, 'Records'))
          if (entries === undefined) return { input }
          const stream = streamOf(input)
          const nodes = nodesOf(stream)
          const parent = parentForSend(dsm)
          const plans = entries.map((entry) => plan(stream, entry))
          fitRequest(stream, plans)
          const checkpointed = plans.filter((p) => p !== null).length
          return {
            input: copyWith(input, 'Records', entries.map((entry, i) => put(nodes, entry, plans[i], parent))) ?? input,
            failed: () => sendsFailed(dsm, nodes.out, checkpointed),
            // A record Kinesis refused (throttled, an internal failure) carries an ErrorCode in the answer.
            after: (output) => sendsFailed(dsm, nodes.out, (items(read(output, 'Records')) ?? []).filter((r) => read(r, 'ErrorCode') !== undefined).length),
          }
        }
        case 'GetShardIteratorCommand': {
          const stream = streamOf(input)
          return { input, after: (output) => rememberIterator(read(output, 'ShardIterator'), stream) }
        }
        case 'GetRecordsCommand': {
          const iterator = read(input, 'ShardIterator')
          const stream = (typeof iterator === 'string' ? iterators.get(iterator) : undefined) ?? nonEmptyText(read(input, 'StreamARN'))
          const handOff = beginReceive(dsm)
          return {
            input,
            after(output: unknown) {
              if (typeof iterator === 'string') iterators.delete(iterator)
              rememberIterator(read(output, 'NextShardIterator'), stream)
              const records = items(read(output, 'Records'))
              if (records === undefined || records.length === 0) return
              const nodes = nodesOf(stream)
              const ctxs: PathwayContext[] = []
              for (const record of records) {
                const ctx = get(nodes, record)
                if (ctx !== null) ctxs.push(ctx)
              }
              if (ctxs.length === 0) return
              handOff(ctxs)
              followWalks(dsm, read(output, 'Records'))
            },
          }
        }
        default:
          return undefined
      }
    },
    active,
  )
}

function streamOf(input: unknown): string | undefined {
  return nonEmptyText(read(input, 'StreamName')) ?? nonEmptyText(read(input, 'StreamARN'))
}

/** The time of a Date, or NaN for anything else (the check reads the internal slot: no user code runs). */
function timeOf(value: unknown): number {
  try {
    return Date.prototype.getTime.call(value)
  } catch {
    return NaN
  }
}
