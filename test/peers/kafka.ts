import { fileURLToPath } from 'node:url'
import { spawnPeer } from './child.js'

const CLUSTER_SCRIPT = fileURLToPath(new URL('./kafka-mock-cluster.cjs', import.meta.url))
const START_TIMEOUT_MS = 15_000

export interface KafkaPeer {
  /** "127.0.0.1:port" of each of the 3 mock brokers. */
  brokers: string[]
  stop(): Promise<void>
}

/**
 * Consumer settings for both kafkajs (`kafka.consumer({ groupId, ...FAST_CONSUMER })`)
 * and the confluent KafkaJS API (`consumer({ kafkaJS: { groupId, ...FAST_CONSUMER } })`).
 * - maxWaitTimeInMs: kafkajs's `disconnect()` waits for the fetch in flight,
 *   which the broker holds this long on an empty topic (default 5 s).
 * - sessionTimeout: a member joining a group that already has members
 *   waits sessionTimeout - 1 s in the mock (default 30 s -> 29 s).
 *   heartbeatInterval must stay below it; existing members learn of the
 *   rebalance at their next heartbeat.
 * Nothing shortens the first join of a new group: the mock holds it for a
 * fixed 3 s "initial rebalance delay" (not settable from JS), so the first
 * message arrives about 3 s after `run()`. Members started together join in
 * that same first round.
 */
export const FAST_CONSUMER = {
  maxWaitTimeInMs: 100,
  sessionTimeout: 6_000,
  heartbeatInterval: 500,
} as const

/**
 * Starts librdkafka's mock Kafka cluster (3 brokers) in a child process.
 *
 * What tests need to know about it:
 * - Topics are auto-created on first produce or metadata request
 *   (4 partitions, replication 3); kafkajs `admin.createTopics` fails
 *   against it. kafkajs `admin.fetchOffsets` works (to check commits).
 * - A new group starts at the latest offset unless told otherwise, so
 *   messages produced before the partitions were assigned are missed: use
 *   `fromBeginning: true` (kafkajs: in `subscribe()`; confluent: in the
 *   consumer's `kafkaJS` block, `subscribe()` rejects it).
 * - kafkajs logs a harmless ERROR ('The value of "offset" is out of range')
 *   for the LeaveGroup reply on `consumer.disconnect()`, and a WARN about
 *   its default partitioner unless the producer gets `createPartitioner`.
 * - The confluent KafkaJS API wants KafkaJS options inside `kafkaJS: {...}`
 *   (`new Kafka({ kafkaJS: { brokers } })`, `kafka.consumer({ kafkaJS: { groupId } })`);
 *   librdkafka properties go beside that block. Its default logLevel (INFO)
 *   prints every connect and rebalance; use `logLevel.ERROR`.
 *   `autoCommit` is consumer config there, not a `run()` option.
 * - Header values arrive as Buffers in both clients; the confluent client
 *   gives `headers: undefined` for a record without headers.
 */
export async function startKafka(): Promise<KafkaPeer> {
  const peer = spawnPeer('kafka mock cluster', [CLUSTER_SCRIPT])
  try {
    const brokers = await new Promise<string[]>((resolve, reject) => {
      let stdout = ''
      const onData = (chunk: Buffer): void => {
        stdout += chunk.toString('utf8')
        const newline = stdout.indexOf('\n')
        if (newline === -1) return
        peer.child.stdout.off('data', onData)
        clearTimeout(timer)
        resolve((JSON.parse(stdout.slice(0, newline)) as { brokers: string[] }).brokers)
      }
      const timer = setTimeout(
        () => reject(new Error(`kafka mock cluster did not start within ${START_TIMEOUT_MS} ms:\n${peer.output()}`)),
        START_TIMEOUT_MS,
      )
      peer.child.stdout.on('data', onData)
      void peer.exited.then(() => {
        clearTimeout(timer)
        reject(new Error(`kafka mock cluster exited before listing its brokers:\n${peer.output()}`))
      })
    })
    return { brokers, stop: () => peer.stop() }
  } catch (error) {
    await peer.stop()
    throw error
  }
}
