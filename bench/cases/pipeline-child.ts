/**
 * One configuration of case 7 in a process of its own (see pipeline.ts for why): a producer and a
 * consumer of one client on the mock cluster, joined once, then running rounds on request.
 * argv: the client, the consume mode, the configuration, the brokers (comma-separated), the
 * topic and group suffix, the consumer settings of the tests' peers (JSON). It runs as plain
 * JavaScript (pipeline.ts strips its types), as an application does: under tsx, every `require`
 * that kafkajs makes while fetching would go through tsx's resolver once the automatic mode's
 * require hook is in place, and dominate pathwise's figures. BENCH_CONFLUENT, when set, is the folder whose node_modules holds the
 * confluent package to load (a copy built for the Node this runs on).
 *
 * What each configuration adds: `wasm`, `ts` and `wasm-no-header` are set up here as the README's
 * manual mode does it (createDataStreams({ core }) and instrumentKafkaJs / instrumentConfluent,
 * `injectHeaders: false` for the last); `header` (no DSM) has the application add a 28-character
 * dd-pathway-ctx-base64 header itself, what the client spends on carrying one. The others are set
 * up by pipeline.ts, as a user does it: `wasm-auto` runs under `-r pathwise/register` (the
 * automatic mode), `dd-trace` and `dd-trace-dsm` under `-r dd-trace/init`.
 */
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

export type PipelineClient = 'kafkajs' | 'confluent'
export type PipelineMode = 'eachMessage' | 'eachBatch'
export type PipelineConfig = 'off' | 'wasm' | 'ts' | 'wasm-auto' | 'dd-trace' | 'dd-trace-dsm' | 'header' | 'wasm-no-header'

/** Parent to child: run a round of `messages`, or stop. Child to parent: ready, or a round's figures. */
export type ToChild = { type: 'run'; messages: number } | { type: 'stop' }
export type FromChild = { type: 'ready'; node: string } | ({ type: 'round' } & RoundFigures) | { type: 'error'; message: string }

/** One round: produce, then consume; wall-clock seconds and CPU microseconds of this whole process. */
export interface RoundFigures {
  seconds: number
  cpuMicros: number
  /** The header names of the round's first consumed message, sorted. */
  headers: string[]
  /** dd-trace only: whether a span was active in the handler of the round's first message. */
  span?: boolean
}

const require = createRequire(import.meta.url)

const MESSAGE_BYTES = 100
const PER_SEND = 500
// a header value as pathwise writes one: 28 base64 characters
const HEADER = { 'dd-pathway-ctx-base64': 'EjXKdO8OqMfmjty4wWjmjty4wWg=' }

interface Clients {
  producer: { connect(): Promise<void>; send(r: { topic: string; messages: object[] }): Promise<unknown>; disconnect(): Promise<void> }
  consumer: {
    connect(): Promise<void>
    subscribe(s: object): Promise<void>
    run(r: object): Promise<void>
    pause(t: { topic: string }[]): void
    resume(t: { topic: string }[]): void
    disconnect(): Promise<void>
  }
}

type Seen = Pick<RoundFigures, 'headers' | 'span'>
type Kafka = { producer(o: object): Clients['producer']; consumer(o: object): Clients['consumer'] }

/** The manual mode: a DataStreams with the configuration's core, instrumenting this client's Kafka object. */
async function instrument(client: PipelineClient, config: PipelineConfig, kafka: Kafka): Promise<void> {
  if (config !== 'wasm' && config !== 'ts' && config !== 'wasm-no-header') return
  const { createDataStreams, instrumentKafkaJs, instrumentConfluent } = await import('pathwise')
  const dsm = createDataStreams({ core: config === 'ts' ? 'ts' : 'wasm' })
  const options = { injectHeaders: config !== 'wasm-no-header' }
  if (client === 'kafkajs') instrumentKafkaJs(kafka, dsm, options)
  else instrumentConfluent(kafka, dsm, options)
}

async function clients(client: PipelineClient, config: PipelineConfig, brokers: string[], group: string, fast: object): Promise<Clients> {
  if (client === 'kafkajs') {
    const { Kafka, Partitioners, logLevel } = require('kafkajs')
    const kafka: Kafka = new Kafka({ clientId: group, brokers, logLevel: logLevel.NOTHING })
    await instrument(client, config, kafka)
    return {
      producer: kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner }),
      consumer: kafka.consumer({ groupId: group, ...fast }),
    }
  }
  const from = process.env.BENCH_CONFLUENT === undefined ? require : createRequire(join(process.env.BENCH_CONFLUENT, 'bench.js'))
  const { KafkaJS } = from('@confluentinc/kafka-javascript')
  const kafka: Kafka = new KafkaJS.Kafka({ kafkaJS: { brokers, logLevel: KafkaJS.logLevel.NOTHING } })
  await instrument(client, config, kafka)
  return {
    producer: kafka.producer({}),
    consumer: kafka.consumer({ kafkaJS: { groupId: group, fromBeginning: true, ...fast }, 'topic.metadata.refresh.interval.ms': 1000 }),
  }
}

const send = (m: FromChild) => process.send!(m)

/**
 * BENCH_PIPELINE_PROFILE=FILE: V8's CPU profiler (what `--cpu-prof` runs) from the end of the
 * warm-up to the stop, written to FILE: the rounds without the start-up, connecting and the join.
 */
async function profiler(): Promise<() => Promise<void>> {
  const file = process.env.BENCH_PIPELINE_PROFILE
  if (file === undefined) return async () => {}
  const { Session } = await import('node:inspector/promises')
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  // every 100 µs (the default is 1 ms): differences of a µs a message need many samples
  await session.post('Profiler.setSamplingInterval', { interval: 100 })
  await session.post('Profiler.start')
  return async () => {
    const { profile } = await session.post('Profiler.stop')
    writeFileSync(file, JSON.stringify(profile))
  }
}

async function main(): Promise<void> {
  const [client, mode, config, brokers, suffix, fast] = process.argv.slice(2) as [PipelineClient, PipelineMode, PipelineConfig, string, string, string]
  const warmUp = Number(process.env.BENCH_PIPELINE_WARM_UP ?? 2000)
  const name = `bench-pipeline-${client}-${mode}-${config}-${suffix}`
  const topic = name
  const { producer, consumer } = await clients(client, config, brokers.split(','), name, JSON.parse(fast) as object)
  const tracer = config.startsWith('dd-trace') ? (require('dd-trace') as { scope(): { active(): unknown } }) : undefined

  const value = Buffer.alloc(MESSAGE_BYTES, 'x')
  const message = config === 'header' ? () => ({ value, headers: HEADER }) : () => ({ value })
  const produce = async (messages: number) => {
    for (let sent = 0; sent < messages; sent += PER_SEND) {
      await producer.send({ topic, messages: Array.from({ length: Math.min(PER_SEND, messages - sent) }, message) })
    }
  }

  let received = 0
  let target = Infinity
  let reached: (() => void) | undefined
  let first: Seen | undefined
  // read through a function: TypeScript would keep `first` narrowed to the undefined set before the awaits
  const firstSeen = (): Seen | undefined => first
  const look = (m: { headers?: Record<string, unknown> }) => {
    first = { headers: Object.keys(m.headers ?? {}).sort(), ...(tracer !== undefined && { span: tracer.scope().active() != null }) }
  }
  const arrived = (n: number) => {
    received += n
    if (received >= target) reached?.()
  }
  const handlers =
    mode === 'eachMessage'
      ? {
          eachMessage: async ({ message: m }: { message: { headers?: Record<string, unknown> } }) => {
            if (first === undefined) look(m)
            arrived(1)
          },
        }
      : {
          eachBatch: async ({ batch }: { batch: { messages: { headers?: Record<string, unknown> }[] } }) => {
            if (first === undefined && batch.messages.length > 0) look(batch.messages[0])
            arrived(batch.messages.length)
          },
        }
  const allReceived = (total: number) =>
    new Promise<void>((resolve) => {
      target = total
      reached = resolve
      if (received >= total) resolve()
    })

  await producer.connect()
  await produce(warmUp) // creates the topic (the mock cluster creates topics on first produce), then warms up
  await consumer.connect()
  await consumer.subscribe(client === 'kafkajs' ? { topic, fromBeginning: true } : { topics: [topic] })
  await consumer.run(handlers)
  await allReceived(warmUp)
  const stopProfiler = await profiler()

  // The consumer is paused while the producer sends, then reads everything: each phase keeps
  // this process busy on its own, rather than both trading the two cores with the broker.
  const round = async (messages: number): Promise<RoundFigures> => {
    consumer.pause([{ topic }])
    first = undefined
    const cpu = process.cpuUsage()
    const start = process.hrtime.bigint()
    await produce(messages)
    const done = allReceived(received + messages)
    consumer.resume([{ topic }])
    await done
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    const used = process.cpuUsage(cpu)
    const seen = firstSeen()
    return { seconds, cpuMicros: used.user + used.system, headers: seen?.headers ?? [], ...(seen?.span !== undefined && { span: seen.span }) }
  }

  process.on('message', (m: ToChild) => {
    if (m.type === 'run') {
      round(m.messages).then(
        (r) => send({ type: 'round', ...r }),
        (err: Error) => send({ type: 'error', message: err.stack ?? String(err) }),
      )
    } else {
      void stopProfiler()
        .then(() => Promise.allSettled([consumer.disconnect(), producer.disconnect()]))
        .then(() => process.exit(0))
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
