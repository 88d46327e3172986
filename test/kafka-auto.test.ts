/**
 * The automatic mode, in child processes started as users start them: `--import pathwise/register`
 * (the clients imported) and `-r pathwise/register` (the clients required), with
 * DD_DATA_STREAMS_ENABLED=true: kafkajs producer → confluent KafkaJS consumer, producing in its
 * handler with the node-rdkafka-style Producer → kafkajs consumer, and the chain reaches the Agent.
 * With DSM off nothing is added; with DD_KAFKA_CLIENT_PROPAGATION_ENABLED=false no header is
 * added but checkpoints are recorded. In process: the undo restores the original methods, and
 * the explicit functions leave clients alone when DSM is disabled. A producer stopped as Kubernetes
 * stops a pod (SIGTERM, disconnect, process.exit) delivers what it produced.
 * Uses the built package: run `npm run build` first.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { PATHWAY_KEY, createDataStreams, decodePathwayContext } from '../bindings/index.js'
import type { DataStreams } from '../bindings/api/data-streams.js'
import { confluentInstrumentation, instrumentConfluent, instrumentKafkaJs, kafkajsInstrumentation } from '../bindings/kafka/index.js'
import { runNode } from './helpers/run-node.js'
import { startAgent, type TestAgent } from './helpers/agent-server.js'
import { decodeSketch } from './helpers/sketches.js'
import { startKafka, type KafkaPeer } from './peers/kafka.js'
import {
  ENV,
  clusterIdOf,
  confluent,
  consumeTags,
  createTopics,
  expectedHash,
  kafkajs,
  makeDataStreams,
  newKafka,
  newProducer,
  pointsOf,
  produceTags,
  startConsumer,
  until,
} from './fixtures/kafka/setup.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/kafka/${name}`, import.meta.url))


describe('Kafka automatic mode', () => {
  let peer: KafkaPeer
  let agent: TestAgent
  let clusterId: string

  before(async () => {
    ;[peer, agent] = await Promise.all([startKafka(), startAgent()])
    clusterId = await clusterIdOf(peer.brokers)
  })
  after(async () => {
    await agent.close()
    await peer.stop()
  })

  const modes = [
    ['esm', ['--import', 'pathwise/register', fixture('auto-app.mjs')], {}],
    ['cjs', ['-r', 'pathwise/register', fixture('auto-app.cjs')], {}],
    ['off', ['-r', 'pathwise/register', fixture('auto-app.cjs')], { DD_DATA_STREAMS_ENABLED: 'false' }],
    ['noheader', ['--import', 'pathwise/register', fixture('auto-app.mjs')], { DD_KAFKA_CLIENT_PROPAGATION_ENABLED: 'false' }],
  ] as const

  describe('child processes', { concurrency: true }, () => {
    for (const [mode, args, extraEnv] of modes) {
      test(`${mode}: node ${args.join(' ')}`, async () => {
        assert.ok(existsSync(`${root}/dist/register.js`) && existsSync(`${root}/dist/register.cjs`), 'dist/ is missing: npm run build')
        const [t1, t2, g1, g2, service] = [`auto-${mode}-1`, `auto-${mode}-2`, `auto-${mode}-g1`, `auto-${mode}-g2`, `auto-${mode}`]
        const result = await runNode([...args], {
          DD_DATA_STREAMS_ENABLED: 'true',
          DD_SERVICE: service,
          DD_ENV: ENV,
          DD_TRACE_AGENT_URL: agent.url,
          BROKERS: peer.brokers.join(','),
          TOPIC_1: t1,
          TOPIC_2: t2,
          GROUP_1: g1,
          GROUP_2: g2,
          ...extraEnv,
        })
        assert.equal(result.code, 0, result.stderr)
        const seen = JSON.parse(result.stdout) as { first: string | null; second: string | null }

        // kafkajs tags its checkpoints with the cluster id; the confluent client cannot.
        const out1 = expectedHash(service, produceTags(t1, clusterId), 0n)
        const in1 = (parent: bigint) => expectedHash(service, consumeTags(g1, t1), parent)
        const out2 = (parent: bigint) => expectedHash(service, produceTags(t2), parent)
        const in2 = (parent: bigint) => expectedHash(service, consumeTags(g2, t2, clusterId), parent)
        const points = () => new Map(pointsOf(agent, service).map((p) => [p.Hash, p.ParentHash]))
        if (mode === 'off') {
          assert.deepEqual(seen, { first: null, second: null })
          assert.equal(pointsOf(agent, service).length, 0)
          return
        }
        // The exiting child flushed on its way out.
        await agent.waitFor(() => points().has(out1))
        if (mode === 'noheader') {
          // No header: each consume starts a new pathway, but every checkpoint is there.
          assert.deepEqual(seen, { first: null, second: null })
          const expected = [[out1, 0n], [in1(0n), 0n], [out2(in1(0n)), in1(0n)], [in2(0n), 0n]] as const
          await agent.waitFor(() => expected.every(([hash]) => points().has(hash)))
          for (const [hash, parent] of expected) assert.equal(points().get(hash), parent)
          return
        }
        assert.equal(decodePathwayContext(seen.first)?.hash, out1)
        assert.equal(decodePathwayContext(seen.second)?.hash, out2(in1(out1)))
        const chain = [[out1, 0n], [in1(out1), out1], [out2(in1(out1)), in1(out1)], [in2(out2(in1(out1))), out2(in1(out1))]] as const
        await agent.waitFor(() => chain.every(([hash]) => points().has(hash)))
        for (const [hash, parent] of chain) assert.equal(points().get(hash), parent)
      })
    }
  })

  test('a producer stopped as Kubernetes stops a pod (SIGTERM, disconnect, process.exit(0)) delivers every produce', async () => {
    const [topic, service, count] = ['auto-sigterm', 'auto-sigterm', 100]
    await createTopics(peer.brokers, [topic])
    const child = spawn(process.execPath, ['--import', 'pathwise/register', fixture('shutdown-app.mjs')], {
      cwd: root,
      env: { ...process.env, DD_DATA_STREAMS_ENABLED: 'true', DD_SERVICE: service, DD_ENV: ENV, DD_TRACE_AGENT_URL: agent.url, BROKERS: peer.brokers.join(','), TOPIC: topic, COUNT: String(count) },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    child.stdout.once('data', () => child.kill('SIGTERM'))
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null]
    assert.deepEqual([code, signal], [0, null])
    const produced = pointsOf(agent, service).filter((p) => p.EdgeTags.includes(`topic:${topic}`) && p.EdgeTags.includes('direction:out'))
    assert.equal(produced.reduce((sum, p) => sum + decodeSketch(p.PathwayLatency).count, 0), count)
  })

  test('in process: the undo restores the original methods; a producer made while patched passes through', async () => {
    const dsm = makeDataStreams(agent, 'auto-undo')
    const Kafka = kafkajs.Kafka.prototype
    const original = { producer: Kafka.producer, consumer: Kafka.consumer }
    const ck = confluent.KafkaJS.Kafka.prototype
    const originalCk = { producer: ck.producer, consumer: ck.consumer }
    const originalRd = { produce: confluent.Producer.prototype.produce, consume: confluent.KafkaConsumer.prototype.consume }
    const undoKafkaJs = kafkajsInstrumentation.patch(kafkajs, dsm)
    const undoConfluent = confluentInstrumentation.patch(confluent, dsm)
    assert.notEqual(Kafka.producer, original.producer)
    assert.notEqual(ck.consumer, originalCk.consumer)
    assert.notEqual(confluent.Producer.prototype.produce, originalRd.produce)
    assert.ok(Object.hasOwn(confluent.KafkaConsumer.prototype, 'emit'))

    const topic = 'auto-undo'
    await createTopics(peer.brokers, [topic])
    const early = await newProducer('kafkajs', newKafka('kafkajs', peer.brokers))
    await early.send({ topic, messages: [{ key: 'k', value: 'patched' }] })
    undoKafkaJs()
    undoConfluent()
    assert.equal(Kafka.producer, original.producer)
    assert.equal(Kafka.consumer, original.consumer)
    assert.equal(ck.producer, originalCk.producer)
    assert.equal(ck.consumer, originalCk.consumer)
    assert.equal(confluent.Producer.prototype.produce, originalRd.produce)
    assert.equal(confluent.KafkaConsumer.prototype.consume, originalRd.consume)
    for (const proto of [confluent.Producer.prototype, confluent.KafkaConsumer.prototype]) {
      assert.ok(!Object.hasOwn(proto, 'emit') && !Object.hasOwn(proto, 'connect'))
    }

    await early.send({ topic, messages: [{ key: 'k', value: 'undone' }] })
    const late = await newProducer('kafkajs', newKafka('kafkajs', peer.brokers))
    await late.send({ topic, messages: [{ key: 'k', value: 'after' }] })
    const seen = new Map<string, boolean>()
    const consumer = await startConsumer('kafkajs', newKafka('kafkajs', peer.brokers), 'auto-undo', topic, {
      eachMessage: async ({ message }: any) => void seen.set(message.value.toString(), message.headers[PATHWAY_KEY] !== undefined),
    })
    await until(() => seen.size === 3, '3 messages')
    assert.deepEqual(Object.fromEntries(seen), { patched: true, undone: false, after: false })
    await Promise.all([consumer.disconnect(), early.disconnect(), late.disconnect()])
    await dsm.shutdown()
  })

  test('in process: with DSM disabled nothing is changed', () => {
    const disabled: DataStreams = createDataStreams({ enabled: false })
    const kafka = newKafka('kafkajs', peer.brokers)
    const ck = newKafka('confluent', peer.brokers)
    const rdProducer = new confluent.Producer({ 'bootstrap.servers': peer.brokers.join(',') })
    instrumentKafkaJs(kafka, disabled)
    instrumentConfluent(ck, disabled)
    instrumentConfluent(rdProducer, disabled)
    assert.ok(!Object.hasOwn(kafka, 'producer') && !Object.hasOwn(ck, 'producer') && !Object.hasOwn(rdProducer, 'produce'))
    const original = kafkajs.Kafka.prototype.producer
    kafkajsInstrumentation.patch(kafkajs, disabled)
    confluentInstrumentation.patch(confluent, disabled)
    assert.equal(kafkajs.Kafka.prototype.producer, original)
    assert.ok(!Object.hasOwn(confluent.Producer.prototype, 'emit'))
  })
})
