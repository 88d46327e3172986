/**
 * Whether pathwise adds its header to a producer's messages. On by default; off per producer
 * (`setHeaderInjection(producer, false)`, or the instrument functions' `injectHeaders: false`),
 * for every producer of a DataStreams configured with DD_KAFKA_CLIENT_PROPAGATION_ENABLED=false
 * (dd-trace-java's name for it; api/config.ts reads it), and automatically for a producer whose broker refused a record because of its headers.
 * The switch is process-wide (a global symbol), so that the automatic mode's copy of pathwise
 * and the application's see the same one.
 */
import { read } from '../common/input.js'
import { settingsOf } from '../instrument/settings.js'
import { log } from './log.js'

const OFF = Symbol.for('pathwise.kafka.headerInjectionOff')
const off: WeakSet<object> = ((globalThis as Record<symbol, unknown>)[OFF] ??= new WeakSet<object>()) as WeakSet<object>

/** Turns header injection on or off for one producer (kafkajs, confluent KafkaJS or node-rdkafka-style). */
export function setHeaderInjection(producer: object, enabled: boolean): void {
  // Only an object can be a producer (and a WeakSet member).
  if (producer === null || (typeof producer !== 'object' && typeof producer !== 'function')) return
  if (enabled) off.delete(producer)
  else off.add(producer)
}

export function headerInjectionOn(producer: object): boolean {
  return !off.has(producer)
}

export interface KafkaInstrumentOptions {
  /**
   * Add the pathway header to produced messages. Default: true, unless the DataStreams was
   * created with DD_KAFKA_CLIENT_PROPAGATION_ENABLED=false. Checkpoints are recorded either way.
   */
  injectHeaders?: boolean
}

/** The instrument functions' `injectHeaders` option: a boolean, else the default of the DataStreams' configuration (the automatic mode's, given no options). */
export function injectionOption(options: unknown, dsm: unknown): boolean {
  const value = read(options, 'injectHeaders')
  return typeof value === 'boolean' ? value : settingsOf(dsm).kafkaHeaderInjection
}

/**
 * Kafka's UNSUPPORTED_FOR_MESSAGE_FORMAT (43): a broker whose topic keeps the message format of
 * Kafka < 0.11 (before record headers) refuses records that have headers. kafkajs raises it as a
 * KafkaJSProtocolError (type UNSUPPORTED_FOR_MESSAGE_FORMAT) wrapped as the `cause` of a
 * KafkaJSNonRetriableError; the confluent client as an error whose `code` is 43.
 * (Brokers older than 0.11 raise nothing: both clients then send without headers.)
 */
const UNSUPPORTED_FOR_MESSAGE_FORMAT = 43

/** After a broker refused the headers: injection off for this producer, and one warning per producer. */
export function headersRefused(producer: object): void {
  if (off.has(producer)) return
  off.add(producer)
  log.warn(
    'a Kafka broker refused record headers (a topic with a message format older than Kafka 0.11): the message was ' +
      'sent again without the pathway header, and this producer adds none from now on (no pathway links through it)',
  )
}

export function isHeaderRejection(err: unknown): boolean {
  let e = err
  for (let depth = 0; depth < 4 && e !== null && typeof e === 'object'; depth++) {
    if (read(e, 'code') === UNSUPPORTED_FOR_MESSAGE_FORMAT || read(e, 'type') === 'UNSUPPORTED_FOR_MESSAGE_FORMAT') return true
    e = read(e, 'cause')
  }
  return false
}
