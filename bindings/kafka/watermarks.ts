/**
 * Kafka high watermarks as `kafka_high_watermark` backlogs, as dd-trace-go reports them
 * (TrackKafkaHighWatermarkOffset): per topic and partition, the offset the partition's next
 * message will get (its last offset + 1), as the consumer last learned it from a fetch. Beside
 * the consumer's commits it gives the lag when no producer reports produce offsets (producers
 * in another language, or with no tracer).
 *
 * Read from what the clients already know, never per message:
 * - kafkajs: its START_BATCH_PROCESS instrumentation event, emitted once per fetched batch before
 *   the batch goes to eachMessage or eachBatch, carries the fetch's `highWatermark`.
 * - librdkafka (the confluent client, both APIs): at each commit, as dd-trace-go does, the high
 *   watermark librdkafka keeps of each committed partition (`getWatermarkOffsets`: updated by
 *   every fetch, read locally with no broker request). It is what the KafkaJS API's eachBatch
 *   shows as `batch.highWatermark`; its eachMessage has no batch.
 */
import type { DataStreams } from '../api/data-streams.js'
import { items, read } from '../common/input.js'
import type { ConsumerHooks } from './kafkajs-api.js'
import { fail } from './log.js'

/** kafkajs: a listener of the consumer's START_BATCH_PROCESS event (one per fetched batch). */
export function trackFetchedWatermarks(consumer: object, hooks: ConsumerHooks): void {
  const event = read(read(consumer, 'events'), 'START_BATCH_PROCESS')
  const on = read(consumer, 'on')
  if (typeof event !== 'string' || typeof on !== 'function') return
  on.call(consumer, event, (e: unknown) => {
    if (!hooks.active()) return
    try {
      const batch = read(e, 'payload')
      const topic = read(batch, 'topic') as string
      const partition = read(batch, 'partition') as number
      // What is not a topic, a partition and an offset is refused and counted by the DataStreams.
      hooks.dsm.trackKafkaHighWatermark(topic, partition, read(batch, 'highWatermark') as string, hooks.clusterId())
    } catch (err) {
      fail('high watermark', err)
    }
  })
}

/**
 * librdkafka: after a commit report (`offsets`: the committed topic partitions), the high
 * watermark `client` (a KafkaConsumer, or the KafkaJS API's internal one) keeps of each.
 */
export function trackCommittedWatermarks(dsm: DataStreams, client: unknown, offsets: unknown): void {
  try {
    const watermarks = read(client, 'getWatermarkOffsets')
    if (typeof watermarks !== 'function') return
    for (const tp of items(offsets) ?? []) {
      const topic = read(tp, 'topic')
      const partition = read(tp, 'partition')
      if (typeof topic !== 'string' || read(tp, 'error')) continue
      const high = highOffset(watermarks, client, topic, partition)
      // librdkafka's OFFSET_INVALID (-1001) while it has fetched nothing there: no watermark yet, not bad input.
      if (high === undefined || (typeof high === 'number' && high < 0)) continue
      dsm.trackKafkaHighWatermark(topic, partition as number, high as number)
    }
  } catch (err) {
    fail('high watermark', err)
  }
}

/** `client.getWatermarkOffsets(topic, partition).highOffset`; undefined when it throws (a disconnected client, a partition it does not know). */
function highOffset(watermarks: Function, client: unknown, topic: string, partition: unknown): unknown {
  try {
    return read(watermarks.call(client, topic, partition), 'highOffset')
  } catch {
    return undefined
  }
}
