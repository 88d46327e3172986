/**
 * kafkajs 2.x: `Kafka#producer` and `Kafka#consumer` of one client (instrumentKafkaJs) or of
 * every client (the automatic mode) hand out producers and consumers with the wrappers of
 * kafkajs-api.ts, and with the cluster kafkajs-cluster.ts catches.
 */
import type { DataStreams } from '../api/data-streams.js'
import { undoAll, withOffSwitch, wrapMethod, type Instrumentation } from '../instrument/instrumentation.js'
import { claim } from './claims.js'
import { injectionOption, setHeaderInjection, type KafkaInstrumentOptions } from './injection.js'
import { trackCommits, wrapProducer, wrapRun, wrapTransactions, type ConsumerHooks } from './kafkajs-api.js'
import { clusterIdOf, createCatchingCluster, producerHooks } from './kafkajs-cluster.js'
import { fail } from './log.js'
import { trackFetchedWatermarks } from './watermarks.js'
import { classPrototype, read } from '../common/input.js'

// Client objects are kafkajs's shapes: `any` at this boundary, checked where read.
type AnyFn = (...args: any[]) => any

/**
 * Instruments one kafkajs client: producers and consumers it creates from now on.
 * Returns the undo: `kafka.producer`/`consumer` are restored, and the clients already made
 * pass everything through. With DSM disabled nothing is changed.
 */
export function instrumentKafkaJs(kafka: object, dsm: DataStreams, options: KafkaInstrumentOptions = {}): () => void {
  return withOffSwitch(dsm, (dsm, active) => {
    const inject = injectionOption(options, dsm)
    const target = kafka as Record<string, any>
    return undoAll([
      onCreate(target, 'producer', active, (producer, cluster) => {
        if (!inject) setHeaderInjection(producer, false)
        const hooks = producerHooks(producer, cluster, dsm, active)
        wrapProducer(producer, hooks)
        wrapTransactions(producer, hooks)
      }),
      onCreate(target, 'consumer', active, (consumer, cluster, args) => {
        const groupId = read(args[0], 'groupId')
        const group = typeof groupId === 'string' ? groupId : undefined
        let clusterId: string | undefined
        const hooks: ConsumerHooks = {
          dsm,
          active,
          group: () => group,
          clusterId: () => (clusterId ??= clusterIdOf(cluster)),
        }
        wrapRun(consumer, hooks)
        trackCommits(consumer, hooks)
        trackFetchedWatermarks(consumer, hooks)
      }),
    ])
  })
}

/** Wraps `Kafka#producer` or `consumer`: each client it creates is instrumented once, with the cluster caught for it. */
function onCreate(
  kafka: Record<string, any>,
  method: 'producer' | 'consumer',
  active: () => boolean,
  instrument: (client: Record<string, any>, cluster: unknown, args: unknown[]) => void,
): () => void {
  return wrapMethod(kafka, method, (create: AnyFn) =>
    function (this: object, ...args: unknown[]) {
      if (!active()) return create.apply(this, args)
      const { client, cluster } = createCatchingCluster(this, create, args)
      try {
        if (client !== null && typeof client === 'object' && claim(client)) instrument(client, cluster, args)
      } catch (err) {
        fail(`instrument ${method}`, err)
      }
      return client
    },
  )
}

/** The automatic mode: `Kafka.prototype.producer` and `consumer`, for every client of the module. */
export const kafkajsInstrumentation: Instrumentation = {
  module: 'kafkajs',
  supportedVersions: '>=2.0.0 <3',
  patch(exports, dsm) {
    const kafka = classPrototype(exports, 'Kafka')
    return kafka === undefined ? () => {} : instrumentKafkaJs(kafka, dsm)
  },
}
