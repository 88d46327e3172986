/**
 * @confluentinc/kafka-javascript. Its KafkaJS-compatible API (`KafkaJS.Kafka`) has kafkajs's
 * surface, and its producers and consumers get the wrappers of kafkajs-api.ts; its
 * node-rdkafka-style API (Producer, HighLevelProducer, KafkaConsumer) is in rdkafka.ts.
 * What differs from kafkajs:
 * - A KafkaJS producer or consumer drives an internal node-rdkafka-style client that `connect()`
 *   creates: pathwise marks it, so that the node-rdkafka-level wrappers leave it alone.
 * - Commits: the KafkaJS consumer has no events, but its internal client reports every commit
 *   (automatic or not) as an 'offset.commit' event, which that API always turns on; the high
 *   watermarks of the committed partitions are read then (watermarks.ts).
 * - The group is the internal client's 'group.id' (the API maps `kafkaJS.groupId` to it).
 * - The binding does not expose the cluster id: no `kafka_cluster_id` tag.
 */
import type { DataStreams } from '../api/data-streams.js'
import { undoAll, withOffSwitch, wrapMethod, type Instrumentation } from '../instrument/instrumentation.js'
import { claim } from './claims.js'
import { injectionOption, setHeaderInjection, type KafkaInstrumentOptions } from './injection.js'
import { wrapProducer, wrapRun, type ConsumerHooks } from './kafkajs-api.js'
import { fail, log } from './log.js'
import { LIBRDKAFKA_MAX_MESSAGE_BYTES, maxMessageBytes } from './size-limits.js'
import { classPrototype, read } from '../common/input.js'
import { instrumentRdConsumer, instrumentRdProducer, markInternal, patchRdKafka, trackCommitted } from './rdkafka.js'
import { trackCommittedWatermarks } from './watermarks.js'

// Client objects are shapes of the binding: `any` at this boundary, checked where read.
type AnyFn = (...args: any[]) => any

/**
 * Instruments one client of @confluentinc/kafka-javascript: a `KafkaJS.Kafka` (the producers and
 * consumers it creates from now on), a `Producer` or `HighLevelProducer`, or a `KafkaConsumer`
 * (before `connect()`, for its commits to be seen). Returns the undo. With DSM disabled nothing
 * is changed.
 */
export function instrumentConfluent(client: object, dsm: DataStreams, options: KafkaInstrumentOptions = {}): () => void {
  return withOffSwitch(dsm, (dsm, active) => {
    const inject = injectionOption(options, dsm)
    const c = client as Record<string, any>
    const has = (method: string) => typeof read(c, method) === 'function'
    if (c === null || typeof c !== 'object') return notAClient()
    if (has('producer') && has('consumer')) return instrumentKafkaJsApi(c, dsm, active, inject)
    if (has('produce')) return claim(c) ? instrumentRdProducer(c, dsm, active, inject) : () => {}
    if (has('consume') && has('subscribe')) return claim(c) ? instrumentRdConsumer(c, dsm, active) : () => {}
    return notAClient()
  })
}

function notAClient(): () => void {
  log.warnOnce('kafka:not-a-client', 'instrumentConfluent: expected a KafkaJS.Kafka, Producer or KafkaConsumer; nothing instrumented')
  return () => {}
}

/** The automatic mode: `KafkaJS.Kafka.prototype.producer`/`consumer` and the Producer and KafkaConsumer prototypes. */
export const confluentInstrumentation: Instrumentation = {
  module: '@confluentinc/kafka-javascript',
  supportedVersions: '>=1.0.0 <2',
  patch: (exports, dsm) =>
    withOffSwitch(dsm, (dsm, active) => {
      const inject = injectionOption(undefined, dsm)
      const undos: (() => void)[] = []
      const kafka = classPrototype(read(exports, 'KafkaJS'), 'Kafka')
      if (kafka !== undefined) undos.push(instrumentKafkaJsApi(kafka, dsm, active, inject))
      undos.push(patchRdKafka(exports, dsm, active, inject))
      return undoAll(undos)
    }),
}

/** `producer()` and `consumer()` of a KafkaJS.Kafka (one, or its prototype). */
function instrumentKafkaJsApi(kafka: Record<string, any>, dsm: DataStreams, active: () => boolean, inject: boolean): () => void {
  return undoAll([
    wrapMethod(kafka, 'producer', (create: AnyFn) =>
      function (this: unknown, ...args: unknown[]) {
        const producer = create.apply(this, args)
        if (!active()) return producer
        try {
          if (producer !== null && typeof producer === 'object' && claim(producer)) {
            if (!inject) setHeaderInjection(producer, false)
            let rd: unknown
            // librdkafka enforces message.max.bytes itself: the header must fit within it.
            const maxBytes = () => maxMessageBytes(read(rd, 'globalConfig')) ?? LIBRDKAFKA_MAX_MESSAGE_BYTES
            wrapProducer(producer, { dsm, active, clusterId: () => undefined, maxMessageBytes: maxBytes })
            onConnect(producer, (internal) => {
              rd = internal
            })
          }
        } catch (err) {
          fail('instrument producer', err)
        }
        return producer
      },
    ),
    wrapMethod(kafka, 'consumer', (create: AnyFn) =>
      function (this: unknown, ...args: unknown[]) {
        const consumer = create.apply(this, args)
        if (!active()) return consumer
        try {
          if (consumer !== null && typeof consumer === 'object' && claim(consumer)) {
            let rd: any
            const configured = groupOf(args[0])
            const hooks: ConsumerHooks = {
              dsm,
              active,
              group: () => {
                const group = read(read(rd, 'globalConfig'), 'group.id')
                return typeof group === 'string' ? group : configured
              },
              clusterId: () => undefined,
            }
            wrapRun(consumer, hooks)
            onConnect(consumer, (internal) => {
              rd = internal
              internal.on('offset.commit', (err: unknown, offsets: unknown) => {
                if (err || !active()) return
                trackCommitted(dsm, hooks.group() ?? '', offsets)
                trackCommittedWatermarks(dsm, internal, offsets)
              })
            })
          }
        } catch (err) {
          fail('instrument consumer', err)
        }
        return consumer
      },
    ),
  ])
}

/** After `connect()` has created the internal client (synchronously, before its first await): marks it and hands it over. */
function onConnect(client: Record<string, any>, use: (internal: any) => void): void {
  let seen: unknown
  wrapMethod(client, 'connect', (connect: AnyFn) =>
    function (this: any) {
      const result = connect.apply(this, arguments as unknown as unknown[])
      try {
        const internal = typeof read(this, '_getInternalClient') === 'function' ? this._getInternalClient() : undefined
        if (internal !== null && typeof internal === 'object' && internal !== seen) {
          seen = internal
          markInternal(internal)
          use(internal)
        }
      } catch (err) {
        fail('internal client', err)
      }
      return result
    },
  )
}

function groupOf(config: unknown): string | undefined {
  const group = read(read(config, 'kafkaJS'), 'groupId') ?? read(config, 'group.id')
  return typeof group === 'string' ? group : undefined
}
