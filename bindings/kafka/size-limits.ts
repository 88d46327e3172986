/**
 * The sizes a Kafka producer's messages must keep to, so that the pathway header never costs a
 * message:
 *
 * - Known in advance: a confluent producer's `message.max.bytes` (default 1,000,000), which
 *   librdkafka checks itself before sending (ERR_MSG_SIZE_TOO_LARGE). It counts a record as 36
 *   bytes of overhead, the key, the value, and each header's name and value with their lengths
 *   (zigzag varints): the header pathwise adds is 51 of those. A message the header would push
 *   past the limit goes without it.
 * - Known only once refused: a broker's `message.max.bytes`, a topic's `max.message.bytes`. A
 *   send the broker refused for its size (MESSAGE_TOO_LARGE 10, RECORD_LIST_TOO_LARGE 18) while
 *   pathwise had added headers is sent once more as the caller wrote it, and the producer
 *   remembers, per topic, the size that was refused: a later send to that topic that would weigh
 *   as much with its headers goes without them.
 */
import { Buffer } from 'node:buffer'
import { PATHWAY_HEADER_BYTES, bytesOf } from './edges.js'
import { TransportNodes } from '../instrument/transport-nodes.js'
import { isRecord, items, read } from '../common/input.js'

/** librdkafka's most a record adds to its key, value and headers (RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD). */
export const RECORD_OVERHEAD = 36
/** The pathway header as librdkafka counts it: name, value, and a one-byte varint for each length. */
export const PATHWAY_HEADER_WIRE = PATHWAY_HEADER_BYTES + 2

/** librdkafka's `message.max.bytes` when the configuration states none. */
export const LIBRDKAFKA_MAX_MESSAGE_BYTES = 1_000_000

/** Kafka's MESSAGE_TOO_LARGE, also librdkafka's ERR_MSG_SIZE_TOO_LARGE (a local refusal uses the broker's code). */
const MESSAGE_TOO_LARGE = 10
const RECORD_LIST_TOO_LARGE = 18
const SIZE_TYPES = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'MSG_SIZE_TOO_LARGE', 'ERR_MSG_SIZE_TOO_LARGE'])

/** Whether an error (or one it wraps, as kafkajs's KafkaJSNonRetriableError does) is a refusal for size. */
export function isSizeRejection(err: unknown): boolean {
  let e = err
  for (let depth = 0; depth < 4 && e !== null && typeof e === 'object'; depth++) {
    const code = read(e, 'code')
    const type = read(e, 'type')
    if (code === MESSAGE_TOO_LARGE || code === RECORD_LIST_TOO_LARGE || (typeof type === 'string' && SIZE_TYPES.has(type))) return true
    e = read(e, 'cause')
  }
  return false
}

/** A client configuration's `message.max.bytes` (a number or its text), if it states a usable one. */
export function maxMessageBytes(config: unknown): number | undefined {
  const value = read(config, 'message.max.bytes')
  const n = typeof value === 'string' && /^\d{1,10}$/.test(value) ? Number(value) : value
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : undefined
}

/** Bytes of the zigzag varint librdkafka writes a length in. */
export function varintBytes(length: number): number {
  let v = length * 2
  let n = 1
  while (v >= 128) {
    v = Math.floor(v / 128)
    n++
  }
  return n
}

/** Per topic, the smallest send (bytes, headers included) a broker refused for its size; bounded like the topic caches. */
export class RefusedSizes {
  private readonly sizes = new TransportNodes<{ bytes: number }>(
    () => ({ bytes: Infinity }),
    () => true,
  )
  private any = false

  /** The size from which a send to `topic` goes without headers; Infinity when none was refused. */
  at(topic: string): number {
    return this.any ? this.sizes.get(topic).bytes : Infinity
  }

  refused(topic: string, bytes: number): void {
    const entry = this.sizes.get(topic)
    entry.bytes = Math.min(entry.bytes, bytes)
    this.any = true
  }
}

/**
 * Bytes librdkafka counts for a message beyond key, value and header names and values (what
 * `messageSize` and `headerListSize` measure): the record overhead and the headers' length varints.
 * Headers as an object (a repeated header: an array of values) or as a list of one-key objects.
 */
export function recordExtraBytes(headers: unknown): number {
  let n = RECORD_OVERHEAD
  if (headers === null || typeof headers !== 'object' || ArrayBuffer.isView(headers)) return n
  try {
    // Lists walked by index and only as far as items() allows: a sparse array of 2^32 - 1 holes (as the list or a value) is not walked.
    const pairs = Array.isArray(headers) ? (items(headers) ?? []) : [headers]
    for (let i = 0; i < pairs.length; i++) {
      const pair = pairs[i]
      // Binary data or an array is no header (as headerListSize).
      if (!isRecord(pair)) continue
      for (const key of Object.keys(pair)) {
        const value = (pair as Record<string, unknown>)[key]
        if (value === undefined || value === null) continue
        const keyBytes = varintBytes(Buffer.byteLength(key))
        const values = Array.isArray(value) ? (items(value) ?? []) : [value]
        for (let j = 0; j < values.length; j++) n += keyBytes + varintBytes(bytesOf(values[j]))
      }
    }
  } catch {
    // headers that cannot be read count as none (the client will refuse them itself)
  }
  return n
}
