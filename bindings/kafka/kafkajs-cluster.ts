/**
 * kafkajs keeps its cluster (and so the cluster id, and the brokers' API versions) private:
 * pathwise catches it as `Kafka#producer` and `Kafka#consumer` create it, and reads the id from
 * its metadata, so that kafkajs checkpoints and backlogs carry `kafka_cluster_id`.
 */
import type { DataStreams } from '../api/data-streams.js'
import type { ProducerHooks } from './kafkajs-api.js'
import { setHeaderInjection } from './injection.js'
import { fail } from './log.js'

// kafkajs's private objects: `any` at this boundary, checked where read.
type AnyFn = (...args: any[]) => any

/**
 * Calls `Kafka#producer`/`consumer` with a `this` whose private createCluster hands pathwise the
 * cluster it creates. Without that private member (another kafkajs), a plain call.
 */
export function createCatchingCluster(kafka: object, create: AnyFn, args: unknown[]): { client: any; cluster: any } {
  let key: symbol | undefined
  let createCluster: unknown
  try {
    key = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster')
    createCluster = key === undefined ? undefined : (kafka as Record<symbol, unknown>)[key]
  } catch {
    // Called on something that is no kafkajs client: the client's own call tells the caller so.
  }
  if (key === undefined || typeof createCluster !== 'function') return { client: create.apply(kafka, args), cluster: undefined }
  let cluster: unknown
  const catching = Object.create(kafka, {
    [key]: { value: (...a: unknown[]) => (cluster = createCluster.apply(kafka, a)) },
  }) as object
  return { client: create.apply(catching, args), cluster }
}

export function clusterIdOf(cluster: any): string | undefined {
  const id = cluster?.brokerPool?.metadata?.clusterId
  return typeof id === 'string' && id !== '' ? id : undefined
}

/**
 * A fresh producer has no metadata yet: before its first checkpoints pathwise has the cluster
 * fetch it (kafkajs would, right after), so that every checkpoint carries the cluster id. Not for
 * a producer that is not connected: it fails on its own, and pathwise opens no connection.
 */
export function producerHooks(producer: object, cluster: any, dsm: DataStreams, active: () => boolean): ProducerHooks {
  let known = cluster === undefined || cluster === null
  let clusterId: string | undefined
  const learn = (): void => {
    const pool = cluster.brokerPool
    if (!pool?.metadata) return
    known = true
    clusterId = clusterIdOf(cluster)
    // Brokers older than Kafka 0.11 (Produce < v3) take no headers: kafkajs would drop them.
    const produce = pool.versions?.[0]
    if (typeof produce?.maxVersion === 'number' && produce.maxVersion < 3) setHeaderInjection(producer, false)
  }
  return {
    dsm,
    active,
    clusterId: () => clusterId,
    ready() {
      if (known) return undefined
      try {
        learn()
        if (known || !cluster.isConnected()) return undefined
        return cluster.refreshMetadataIfNecessary().then(learn, () => {})
      } catch (err) {
        known = true
        fail('cluster id', err)
        return undefined
      }
    },
  }
}
