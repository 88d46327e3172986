/**
 * `npm start`: the pathwise agent and a demo pipeline on this machine.
 *
 *   orders-api ──kafka:orders──▶ enricher ──sqs:enriched-orders──▶ notifier ──kinesis:notifications──▶ archiver ──bullmq:reports──▶ reporter
 *                      │              └──http──▶ pricing ──nats:quotes.priced──▶ auditor (JetStream, its pending grows)
 *                      │                                        notifier ──rabbitmq:emails──▶ mailer (its queue's depth grows)
 *                      └────────▶ billing (confluent client, too slow: its lag grows)
 *
 * The peers are the ones the tests use (librdkafka's mock cluster, fauxqs, kinesis-local, nats-server
 * with JetStream, RabbitMQ 3.10, Debian's redis-server); each service is plain kafkajs / confluent /
 * AWS SDK / nats.js / amqplib / BullMQ code in its own process, instrumented by `node --import pathwise/register`. RabbitMQ takes
 * a few seconds more to start than the others: the services learn its URL on stdin once it is up,
 * and the notifier's emails start then. Ctrl-C stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs'
import { KinesisClient } from '@aws-sdk/client-kinesis'
import { startAgent, type RunningAgent } from '@pathwise/agent/server'
import { startKafka } from '../test/peers/kafka.js'
import { startSqs, sqsClientConfig } from '../test/peers/sqs.js'
import { createActiveStream, kinesisClientConfig, startKinesis } from '../test/peers/kinesis.js'
import { startNats } from '../test/peers/nats.js'
import { startRabbitMq } from '../test/peers/rabbitmq.js'
import { startRedis } from '../test/peers/redis.js'
import { freePort } from '../test/peers/ports.js'
import { AckPolicy, connect } from 'nats'

// This machine's Node 20 is supported today; the SDK's notice about 2027 would only clutter the demo.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'

const SERVICES = ['orders-api', 'enricher', 'billing', 'notifier', 'archiver', 'pricing', 'auditor', 'mailer', 'reporter']
const root = fileURLToPath(new URL('..', import.meta.url))

const stops: (() => Promise<void>)[] = []
const children: ChildProcess[] = []
let stopping = false

async function stopAll(code: number): Promise<never> {
  if (stopping) process.exit(code)
  stopping = true
  process.stdout.write('\nstopping the demo…\n')
  await Promise.all(children.map((child) => stopChild(child)))
  for (const stop of stops.reverse()) await stop().catch(() => {})
  process.exit(code)
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const killer = setTimeout(() => child.kill('SIGKILL'), 3000)
  await once(child, 'exit')
  clearTimeout(killer)
}

process.once('SIGINT', () => void stopAll(0))
process.once('SIGTERM', () => void stopAll(0))

async function listen(): Promise<RunningAgent> {
  const port = process.env.PATHWISE_AGENT_PORT === undefined ? 8126 : Number(process.env.PATHWISE_AGENT_PORT)
  try {
    return await startAgent({ port })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
    process.stdout.write(`port ${port} is taken (a Datadog Agent?): the pathwise agent takes a free port\n`)
    return startAgent({ port: 0 })
  }
}

async function main(): Promise<void> {
  const agent = await listen()
  stops.push(() => agent.close())
  process.stdout.write(`pathwise agent listening on ${agent.url}\nstarting Kafka, SQS, Kinesis, NATS, Redis and RabbitMQ peers…\n`)

  const rabbitMq = startRabbitMq()
  rabbitMq.then((peer) => stops.push(peer.stop), () => {})
  const [kafka, sqs, kinesis, nats, redis] = await Promise.all([startKafka(), startSqs(), startKinesis(), startNats({ jetStream: true }), startRedis()])
  stops.push(kafka.stop, sqs.stop, kinesis.stop, nats.stop, redis.stop)
  const nc = await connect({ servers: nats.servers })
  const jsm = await nc.jetstreamManager()
  await jsm.streams.add({ name: 'QUOTES', subjects: ['quotes.>'] })
  await jsm.consumers.add('QUOTES', { durable_name: 'auditor', ack_policy: AckPolicy.Explicit })
  await nc.close()
  const pricingPort = await freePort()
  const sqsClient = new SQSClient(sqsClientConfig(sqs.endpoint))
  await sqsClient.send(new CreateQueueCommand({ QueueName: 'enriched-orders' }))
  const kinesisClient = new KinesisClient(kinesisClientConfig(kinesis.endpoint))
  await createActiveStream(kinesisClient, 'notifications', 2)
  sqsClient.destroy()
  kinesisClient.destroy()

  const env = {
    ...process.env,
    DD_DATA_STREAMS_ENABLED: 'true',
    DD_ENV: 'demo',
    DD_VERSION: '1.0.0',
    DD_TRACE_AGENT_URL: agent.url,
    PATHWISE_FLUSH_INTERVAL_MS: '2000',
    KAFKA_BROKERS: kafka.brokers.join(','),
    SQS_ENDPOINT: sqs.endpoint,
    KINESIS_ENDPOINT: kinesis.endpoint,
    NATS_SERVERS: nats.servers,
    PRICING_PORT: String(pricingPort),
    PRICING_URL: `http://127.0.0.1:${pricingPort}`,
    // The enricher's call to pricing carries the context: that host, and no other, is allowed.
    DD_DATA_STREAMS_HTTP_ENABLED: 'true',
    PATHWISE_HTTP_ALLOWED_HOSTS: `127.0.0.1:${pricingPort}`,
    REDIS_PORT: String(redis.port),
    AWS_ACCESS_KEY_ID: 'demo',
    AWS_SECRET_ACCESS_KEY: 'demo',
    AWS_REGION: 'us-east-1',
  }
  for (const service of SERVICES) launch(service, env)
  process.stdout.write(`\nThe demo pipeline is running. Open ${agent.url}/ to see it (data shows within ~20 s).\nCtrl-C stops everything.\n`)
  const { url: rabbitMqUrl } = await rabbitMq
  for (const child of children) child.stdin?.write(`rabbitmq ${rabbitMqUrl}\n`)
  process.stdout.write('RabbitMQ is up: the notifier publishes emails for the mailer.\n')
}

/** Starts a demo service in its own process under the automatic mode. */
function launch(service: string, env: NodeJS.ProcessEnv): void {
  if (stopping) return
  const child = spawn(process.execPath, ['--import', 'pathwise/register', `demo/services/${service}.mjs`], {
    cwd: root,
    // Stopped by this process in order (services, then peers), not by the terminal's Ctrl-C.
    detached: true,
    stdio: ['pipe', 'inherit', 'inherit'],
    env: { ...env, DD_SERVICE: service },
  })
  child.once('exit', (code, signal) => {
    if (!stopping) process.stderr.write(`demo service ${service} stopped (${signal ?? code})\n`)
  })
  children.push(child)
}

main().catch(async (err) => {
  process.stderr.write(`the demo could not start: ${(err as Error).stack ?? err}\n`)
  await stopAll(1)
})
