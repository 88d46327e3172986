/**
 * One configuration of case 7 in a process of its own (see pipeline.ts for why): a kafkajs
 * producer and consumer on the mock cluster, joined once, then running rounds on request.
 * argv: the configuration, the brokers (comma-separated), the topic and group suffix.
 *
 * Configurations: `off` (no DSM), `wasm` and `ts` (instrumentKafkaJs with that core), and three
 * that take the overhead apart: `header-only` (no DSM, the application adds a header of the
 * pathway header's size: what kafkajs itself spends on one), `wasm-no-header` (checkpoints and
 * context, no header) and `context-only` (no DSM, each handler run in an AsyncLocalStorage
 * context, as pathwise's instrumentation does).
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { createRequire } from 'node:module'
import { instrumentKafkaJs } from '../../bindings/kafka/index.js'
import { FAST_CONSUMER } from '../../test/peers/kafka.js'
import { pathwise } from '../subjects.js'

export type PipelineConfig = 'off' | 'wasm' | 'ts' | 'header-only' | 'wasm-no-header' | 'context-only'

/** Parent to child: run a round of `messages`, or stop. Child to parent: ready, or a round's figures. */
export type ToChild = { type: 'run'; messages: number } | { type: 'stop' }
export type FromChild = { type: 'ready'; node: string } | ({ type: 'round' } & RoundFigures) | { type: 'error'; message: string }

/** One round: the produce phase, then the consume phase; wall-clock seconds and CPU microseconds of this process. */
export interface RoundFigures {
  produceSeconds: number
  produceCpuMicros: number
  consumeSeconds: number
  consumeCpuMicros: number
}

const require = createRequire(import.meta.url)
const { Kafka, Partitioners, logLevel } = require('kafkajs')

const MESSAGE_BYTES = 100
const PER_SEND = 1000
const WARM_UP = 3000

const send = (m: FromChild) => process.send!(m)

async function main(): Promise<void> {
  const [config, brokers, suffix] = process.argv.slice(2) as [PipelineConfig, string, string]
  const kafka = new Kafka({ clientId: `bench-${config}`, brokers: brokers.split(','), logLevel: logLevel.NOTHING })
  if (config === 'wasm' || config === 'ts' || config === 'wasm-no-header') {
    // the default flush interval: flushes (drain, msgpack, gzip) are part of the cost
    const dsm = pathwise(config === 'ts' ? 'ts' : 'wasm', 10_000)
    instrumentKafkaJs(kafka, dsm, { injectHeaders: config !== 'wasm-no-header' })
  }
  const topic = `bench-pipeline-${config}-${suffix}`
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  await producer.send({ topic, messages: [] }) // creates the topic (the mock cluster has no createTopics)

  let received = 0
  let target = Infinity
  let reached: (() => void) | undefined
  const count = async () => {
    if (++received >= target) reached?.()
  }
  const storage = new AsyncLocalStorage<object>()
  const store = {}
  const consumer = kafka.consumer({ groupId: `bench-pipeline-${config}-${suffix}`, ...FAST_CONSUMER })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ eachMessage: config === 'context-only' ? () => storage.run(store, count) : count })

  const value = Buffer.alloc(MESSAGE_BYTES, 'x')
  // a header value as pathwise writes one: 28 base64 characters
  const header = { 'dd-pathway-ctx-base64': 'EjXKdO8OqMfmjty4wWjmjty4wWg=' }
  const message = config === 'header-only' ? () => ({ value, headers: header }) : () => ({ value })
  const timed = async (phase: () => Promise<void>) => {
    const cpu = process.cpuUsage()
    const start = process.hrtime.bigint()
    await phase()
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    const used = process.cpuUsage(cpu)
    return { seconds, cpuMicros: used.user + used.system }
  }
  // The consumer is paused while the producer sends, then reads everything: each phase keeps
  // this process busy on its own, rather than both trading the two cores with the broker.
  const round = async (messages: number): Promise<RoundFigures> => {
    consumer.pause([{ topic }])
    const produced = await timed(async () => {
      for (let sent = 0; sent < messages; sent += PER_SEND) {
        const batch = Array.from({ length: Math.min(PER_SEND, messages - sent) }, message)
        await producer.send({ topic, messages: batch })
      }
    })
    const consumed = await timed(() => {
      const done = new Promise<void>((resolve) => {
        target = received + messages
        reached = resolve
      })
      consumer.resume([{ topic }])
      return done
    })
    return {
      produceSeconds: produced.seconds,
      produceCpuMicros: produced.cpuMicros,
      consumeSeconds: consumed.seconds,
      consumeCpuMicros: consumed.cpuMicros,
    }
  }

  await round(WARM_UP)
  process.on('message', (m: ToChild) => {
    if (m.type === 'run') {
      round(m.messages).then(
        (r) => send({ type: 'round', ...r }),
        (err: Error) => send({ type: 'error', message: err.stack ?? String(err) }),
      )
    } else {
      void Promise.allSettled([consumer.disconnect(), producer.disconnect()]).then(() => process.exit(0))
    }
  })
  send({ type: 'ready', node: process.version })
}

// the parent gone, nothing is left to do
process.on('disconnect', () => process.exit(0))
main().catch((err: Error) => {
  send({ type: 'error', message: err.stack ?? String(err) })
  process.exit(1)
})
