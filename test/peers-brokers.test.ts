// The RabbitMQ, Redis and NATS test peers (test/peers/rabbitmq.ts, redis.ts, nats.ts) with the real
// clients the transports use: amqplib and rhea (AMQP 1.0, and which of its message sections RabbitMQ
// 3.10 lets through), bullmq, nats.js core and JetStream; and that peers of two processes run side by
// side and end with their process, data included, without touching each other.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import amqplib from 'amqplib'
import { Queue, Worker, type Job } from 'bullmq'
import { AckPolicy, connect as connectNats, headers as natsHeaders, type NatsConnection } from 'nats'
import rhea, { type Connection as RheaConnection, type EventContext, type Message as RheaMessage } from 'rhea'
import { startPeersInAnotherProcess } from './peers/another-process.js'
import { startNats, type NatsPeer } from './peers/nats.js'
import { accepts } from './peers/ports.js'
import { startRabbitMq, type RabbitMqPeer } from './peers/rabbitmq.js'
import { startRedis, type RedisPeer } from './peers/redis.js'

const unique = (prefix: string): string => `${prefix}-${randomUUID()}`
const CONTEXT = 'AAECAwQFBgc='

// Concurrent: most of the time goes to waiting for RabbitMQ to start, not CPU.
describe('broker peers', { concurrency: true }, () => {
  let rabbit: RabbitMqPeer
  let redis: RedisPeer
  let nats: NatsPeer
  let jetStream: NatsPeer
  before(async () => {
    // Every start is awaited, so that after() stops the ones that did start when another failed.
    await allStarted([
      startRabbitMq().then((peer) => (rabbit = peer)),
      startRedis().then((peer) => (redis = peer)),
      startNats().then((peer) => (nats = peer)),
      startNats({ jetStream: true }).then((peer) => (jetStream = peer)),
    ])
  })
  after(async () => {
    await Promise.all([rabbit?.stop(), redis?.stop(), nats?.stop(), jetStream?.stop()])
    // stop() resolves once nothing of the broker is left.
    if (rabbit === undefined) return
    assert.deepEqual(rabbitMqProcesses(rabbit.nodeName), [], 'no process of our broker is left')
    assert.equal(existsSync(rabbit.dataDir), false)
    for (const port of [rabbit.port, rabbit.distPort, rabbit.epmdPort]) assert.equal(await accepts(port), false, `port ${port} closed`)
  })

  test('every port is on 127.0.0.1 only', async () => {
    const ports = [rabbit.port, rabbit.distPort, rabbit.epmdPort, redis.port, nats.port, jetStream.port]
    assert.equal(new Set(ports).size, ports.length)
    for (const port of ports) {
      assert.equal(await accepts(port), true, `port ${port} open`)
      assert.equal(await accepts(port, '127.0.0.2'), false, `port ${port} on loopback only`)
    }
  })

  describe('rabbitmq', { concurrency: true }, () => {
    test('amqplib publishes with headers, to a queue and through an exchange, and consumes', async () => {
      const connection = await amqplib.connect(rabbit.url)
      try {
        const channel = await connection.createChannel()
        const queue = unique('amqplib')
        const exchange = unique('amqplib-exchange')
        await channel.assertQueue(queue, { exclusive: true })
        await channel.assertExchange(exchange, 'direct', { autoDelete: true })
        await channel.bindQueue(queue, exchange, 'key')
        const headers = { 'dd-pathway-ctx-base64': CONTEXT, 'x-number': 42, 'x-bytes': Buffer.from([0, 1, 2]) }
        channel.sendToQueue(queue, Buffer.from('direct'), { headers })
        channel.publish(exchange, 'key', Buffer.from('routed'), { headers: { 'x-text': 'one' } })

        const received = new Map<string, amqplib.ConsumeMessage>()
        const both = deferred()
        await channel.consume(queue, (message) => {
          if (message === null) return
          received.set(message.content.toString(), message)
          channel.ack(message)
          if (received.size === 2) both.resolve()
        })
        await both.promise

        const direct = received.get('direct')
        assert.equal(direct?.fields.routingKey, queue)
        assert.equal(direct?.fields.exchange, '')
        assert.equal(direct?.properties.headers?.['dd-pathway-ctx-base64'], CONTEXT)
        assert.equal(direct?.properties.headers?.['x-number'], 42)
        assert.deepEqual([...(direct?.properties.headers?.['x-bytes'] as Buffer)], [0, 1, 2])
        const routed = received.get('routed')
        assert.equal(routed?.fields.exchange, exchange)
        assert.equal(routed?.properties.headers?.['x-text'], 'one')
      } finally {
        await connection.close()
      }
    })

    test('rhea sends and receives over AMQP 1.0, and RabbitMQ 3.10 announces itself', async () => {
      const connection = rheaConnection(rabbit, 'rhea-plain')
      try {
        const opened = once<EventContext>(connection, 'connection_open')
        const address = `/queue/${unique('rhea')}`
        const message = receiveOne(connection, address)
        await sendOne(connection, address, { body: 'hello', subject: 'greeting', message_id: 'id-1' })
        const { connection: open } = await opened
        assert.equal(open.properties?.product, 'RabbitMQ')
        assert.match(String(open.properties?.version), /^3\.10\./)
        const { body, subject, message_id } = await message
        assert.deepEqual({ body, subject, message_id }, { body: 'hello', subject: 'greeting', message_id: 'id-1' })
      } finally {
        connection.close()
      }
    })

    test('AMQP 1.0 message annotations and application properties reach a 1.0 receiver unchanged', async () => {
      const connection = rheaConnection(rabbit, 'rhea-sections')
      try {
        const address = `/queue/${unique('rhea-sections')}`
        const message = receiveOne(connection, address)
        await sendOne(connection, address, {
          body: 'annotated',
          // An annotation key needs no x-opt- prefix here.
          message_annotations: { 'dd-pathway-ctx-base64': CONTEXT, 'x-opt-other': 'm' },
          application_properties: { 'dd-pathway-ctx-base64': CONTEXT, other: 7 },
        })
        const { body, message_annotations, application_properties } = await message
        assert.equal(body, 'annotated')
        assert.deepEqual(message_annotations, { 'dd-pathway-ctx-base64': CONTEXT, 'x-opt-other': 'm' })
        assert.deepEqual(application_properties, { 'dd-pathway-ctx-base64': CONTEXT, other: 7 })
      } finally {
        connection.close()
      }
    })

    test('AMQP 1.0 delivery annotations: RabbitMQ 3.10 drops the connection and the message (unexpected_trailing_sections)', async () => {
      const queue = unique('rhea-delivery-annotations')
      const connection = rheaConnection(rabbit, 'rhea-delivery-annotations')
      const outcomes: string[] = []
      for (const outcome of ['accepted', 'rejected', 'released', 'modified']) connection.on(outcome, () => outcomes.push(outcome))
      const disconnected = once<EventContext>(connection, 'disconnected')
      await sendOne(connection, `/queue/${queue}`, { body: 'lost', delivery_annotations: { 'dd-pathway-ctx-base64': CONTEXT } })
      const { error } = await disconnected
      connection.close()
      // The session dies at once; the broker resets the connection about 3 s later, without a close frame.
      assert.match(String(error), /ECONNRESET/)
      assert.deepEqual(outcomes, [])
      assert.match(readFileSync(rabbit.logFile, 'utf8'), /unexpected_trailing_sections/)
      const amqp = await amqplib.connect(rabbit.url)
      try {
        const channel = await amqp.createChannel()
        assert.equal((await channel.checkQueue(queue)).messageCount, 0, 'the message was not enqueued')
      } finally {
        await amqp.close()
      }
    })

    test('across protocols: 0-9-1 headers do not reach a 1.0 receiver; 1.0 sections reach a 0-9-1 consumer as encoded x-amqp-1.0-* headers', async () => {
      const amqp = await amqplib.connect(rabbit.url)
      const connection = rheaConnection(rabbit, 'rhea-cross')
      try {
        const channel = await amqp.createChannel()
        const toRhea = unique('to-rhea')
        const toAmqplib = unique('to-amqplib')
        await channel.assertQueue(toRhea, { exclusive: false, autoDelete: true })
        await channel.assertQueue(toAmqplib, { exclusive: true })

        const fromAmqplib = receiveOne(connection, `/amq/queue/${toRhea}`)
        channel.sendToQueue(toRhea, Buffer.from('from 0-9-1'), { headers: { 'dd-pathway-ctx-base64': CONTEXT }, messageId: 'm-1' })
        const overRhea = await fromAmqplib
        assert.equal(overRhea.message_id, 'm-1')
        assert.equal(Buffer.from(overRhea.body.content).toString(), 'from 0-9-1')
        assert.equal(overRhea.application_properties, undefined)
        assert.equal(overRhea.message_annotations, undefined)

        await sendOne(connection, `/amq/queue/${toAmqplib}`, {
          body: 'from 1.0',
          message_annotations: { 'x-opt-annotation': 'm' },
          application_properties: { 'dd-pathway-ctx-base64': CONTEXT },
        })
        const got = await getOne(channel, toAmqplib)
        assert.equal(got.properties.type, 'amqp-1.0')
        const headers = got.properties.headers ?? {}
        // Each 1.0 section arrives whole in a header, as its AMQP 1.0 encoding (0x00 0x53 <descriptor> ...: 0x74
        // application-properties, 0x72 message-annotations), sent as a long string that amqplib decodes as UTF-8: its
        // binary bytes (the map's type code 0xc1 and sizes) become U+FFFD, its ASCII (keys, base64 values) stays readable.
        const appProperties = String(headers['x-amqp-1.0-app-properties'])
        assert.ok(appProperties.startsWith('\u0000St'))
        assert.ok(appProperties.includes('\uFFFD'), 'decoded lossily')
        assert.ok(appProperties.includes('dd-pathway-ctx-base64') && appProperties.includes(CONTEXT))
        assert.ok(String(headers['x-amqp-1.0-message-annotations']).startsWith('\u0000Sr'))
        assert.equal(headers['dd-pathway-ctx-base64'], undefined)
        // The body is the 1.0 body section itself (0x77: amqp-value).
        assert.equal(got.content.subarray(0, 3).toString('hex'), '005377')
      } finally {
        connection.close()
        await amqp.close()
      }
    })
  })

  test('redis: bullmq adds a job and a Worker processes it', async () => {
    const name = unique('bullmq')
    const connection = { host: redis.host, port: redis.port }
    const queue = new Queue(name, { connection })
    const processed = deferred()
    let seen: Job | undefined
    const worker = new Worker(
      name,
      async (job) => {
        seen = job
        return { doubled: (job.data as { n: number }).n * 2 }
      },
      { connection },
    )
    worker.on('completed', () => processed.resolve())
    try {
      const added = await queue.add('double', { n: 21 }, { attempts: 2 })
      await processed.promise
      assert.equal(seen?.id, added.id)
      assert.deepEqual(seen?.data, { n: 21 })
      assert.equal(seen?.name, 'double')
      const done = await queue.getJob(added.id ?? '')
      assert.deepEqual(done?.returnvalue, { doubled: 42 })
      assert.deepEqual(await queue.getJobCounts('waiting', 'active', 'completed'), { waiting: 0, active: 0, completed: 1 })
    } finally {
      await worker.close()
      await queue.close()
    }
  })

  test('nats: publish and subscribe with headers, and the server announces header support', async () => {
    const connection = await connectNats({ servers: nats.servers })
    try {
      assert.equal(connection.info?.headers, true)
      assert.match(String(connection.info?.version), /^2\.9\./)
      const subject = unique('orders').replace(/-/g, '_')
      const subscription = connection.subscribe(`${subject}.*`, { max: 1 })
      const message = (async () => {
        for await (const received of subscription) return received
        throw new Error('subscription ended without a message')
      })()
      const sent = natsHeaders()
      sent.set('dd-pathway-ctx-base64', CONTEXT)
      connection.publish(`${subject}.created`, new TextEncoder().encode('order 42'), { headers: sent })
      const received = await message
      assert.equal(received.subject, `${subject}.created`)
      assert.equal(new TextDecoder().decode(received.data), 'order 42')
      assert.equal(received.headers?.get('dd-pathway-ctx-base64'), CONTEXT)
    } finally {
      await connection.close()
    }
  })

  test('nats JetStream: a stream and a durable pull consumer deliver a message with headers and its pending count', async () => {
    const connection = await connectNats({ servers: jetStream.servers })
    try {
      const stream = unique('STREAM').replace(/-/g, '_')
      const subject = `${stream}.events`
      const manager = await connection.jetstreamManager()
      await manager.streams.add({ name: stream, subjects: [`${stream}.>`] })
      const client = connection.jetstream()
      for (const body of ['first', 'second']) {
        const sent = natsHeaders()
        sent.set('dd-pathway-ctx-base64', CONTEXT)
        const ack = await client.publish(subject, new TextEncoder().encode(body), { headers: sent })
        assert.equal(ack.stream, stream)
      }
      await manager.consumers.add(stream, { durable_name: 'billing', ack_policy: AckPolicy.Explicit })
      const consumer = await client.consumers.get(stream, 'billing')
      const message = await consumer.next({ expires: 5_000 })
      assert.ok(message, 'a message within 5 s')
      assert.equal(new TextDecoder().decode(message.data), 'first')
      assert.equal(message.headers?.get('dd-pathway-ctx-base64'), CONTEXT)
      assert.equal(message.info.stream, stream)
      assert.equal(message.info.consumer, 'billing')
      assert.equal(message.info.pending, 1, 'one message behind it')
      message.ack()
      assert.ok(jetStream.storeDir !== undefined && existsSync(jetStream.storeDir))
    } finally {
      await connection.close()
    }
  })

  test('stop() ends a redis-server', async () => {
    const own = await startRedis()
    try {
      assert.ok(await accepts(own.port))
    } finally {
      await own.stop()
    }
    assert.equal(await accepts(own.port), false)
    assert.ok(await accepts(redis.port), 'ours still runs')
  })

  test('stop() ends a nats-server and removes its JetStream store', async () => {
    const own = await startNats({ jetStream: true })
    try {
      assert.ok(await accepts(own.port))
      assert.ok(own.storeDir !== undefined && existsSync(own.storeDir))
    } finally {
      await own.stop()
    }
    assert.equal(await accepts(own.port), false)
    assert.equal(existsSync(own.storeDir), false)
    assert.ok(await answersNats(jetStream), 'ours still runs')
  })

  test("another process's peers run beside ours, and end with it (broker, epmd, data), leaving ours alone", async () => {
    const harness = new URL('./peers/', import.meta.url).href
    const script = `
      const [{ startRabbitMq }, { startRedis }, { startNats }] = await Promise.all([
        import('${harness}rabbitmq.ts'), import('${harness}redis.ts'), import('${harness}nats.ts'),
      ]);
      const [rabbit, redis, nats] = await Promise.all([startRabbitMq(), startRedis(), startNats({ jetStream: true })]);
      console.log(JSON.stringify({
        nodeName: rabbit.nodeName,
        ports: [rabbit.port, rabbit.distPort, rabbit.epmdPort, redis.port, nats.port],
        dirs: [rabbit.dataDir, nats.storeDir],
      }));
    `
    const parent = startPeersInAnotherProcess(script)
    try {
      const theirs = JSON.parse(await parent.firstLine) as { nodeName: string; ports: number[]; dirs: string[] }
      const ours = [rabbit.port, rabbit.distPort, rabbit.epmdPort, redis.port, nats.port, jetStream.port]
      assert.equal(theirs.ports.filter((port) => ours.includes(port)).length, 0, 'no port shared')
      assert.notEqual(theirs.nodeName, rabbit.nodeName)
      assert.ok(rabbitMqProcesses(theirs.nodeName).length > 0, 'their broker runs')
      for (const dir of theirs.dirs) assert.ok(existsSync(dir), `${dir} exists`)
      for (const port of theirs.ports) assert.ok(await accepts(port), `their port ${port} is open`)

      parent.kill()
      const openPorts = async (): Promise<number[]> =>
        (await Promise.all(theirs.ports.map(async (port) => ((await accepts(port)) ? [port] : [])))).flat()
      const deadline = Date.now() + 10_000
      let open = theirs.ports
      // Their guards clean up once they see the parent gone: wait for the last trace, then look at each.
      while ((open.length > 0 || rabbitMqProcesses(theirs.nodeName).length > 0 || theirs.dirs.some(existsSync)) && Date.now() < deadline) {
        await sleep(50)
        open = await openPorts()
      }
      assert.deepEqual(open, [], 'none of their ports outlives them')
      assert.deepEqual(rabbitMqProcesses(theirs.nodeName), [], 'no process of their broker is left')
      for (const dir of theirs.dirs) assert.equal(existsSync(dir), false, `${dir} removed`)

      assert.ok(rabbitMqProcesses(rabbit.nodeName).length > 0, 'our broker runs')
      for (const port of ours) assert.ok(await accepts(port), `our port ${port} is still open`)
      const amqp = await amqplib.connect(rabbit.url)
      await amqp.close()
      assert.ok(await answersNats(jetStream))
    } finally {
      // Only matters when an assertion above failed before the kill.
      parent.kill()
    }
  })
})

/** Waits for every start, then fails with the first that failed. */
async function allStarted(starts: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(starts)).find((result) => result.status === 'rejected')
  if (failed) throw failed.reason
}

/**
 * The live processes (the start script, beam.smp) of the RabbitMQ node of this
 * unique name: those whose environment names it. Zombies have no environment.
 */
function rabbitMqProcesses(nodeName: string): number[] {
  const marker = `\0RABBITMQ_NODENAME=${nodeName}\0`
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return `\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(marker)
      } catch {
        return false // Gone meanwhile.
      }
    })
    .map(Number)
}

function rheaConnection(peer: RabbitMqPeer, id: string): RheaConnection {
  const container = rhea.create_container({ id: unique(id) })
  return container.connect({ host: peer.host, port: peer.port, username: peer.username, password: peer.password, reconnect: false })
}

/** Opens a sender on `address`, sends one message once there is credit, and resolves once it is on the wire. */
function sendOne(connection: RheaConnection, address: string, message: RheaMessage): Promise<void> {
  return new Promise((resolve) => {
    const sender = connection.open_sender(address)
    sender.once('sendable', () => {
      sender.send(message)
      resolve()
    })
  })
}

/** Opens a receiver on `address` and resolves with its first message. */
function receiveOne(connection: RheaConnection, address: string): Promise<RheaMessage> {
  const arrived = deferred<RheaMessage>()
  connection.open_receiver(address).once('message', (context: EventContext) => arrived.resolve(context.message as RheaMessage))
  return arrived.promise
}

function once<T>(connection: RheaConnection, event: string): Promise<T> {
  const fired = deferred<T>()
  connection.once(event, (context: T) => fired.resolve(context))
  return fired.promise
}

/** basic.get until the message is there (a publish from another connection takes a moment to be routed). */
async function getOne(channel: amqplib.Channel, queue: string): Promise<amqplib.GetMessage> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const message = await channel.get(queue, { noAck: true })
    if (message !== false) return message
    await sleep(20)
  }
  throw new Error(`nothing in ${queue} within 10 s`)
}

async function answersNats(peer: NatsPeer): Promise<boolean> {
  let connection: NatsConnection | undefined
  try {
    connection = await connectNats({ servers: peer.servers, timeout: 2_000 })
    await connection.flush()
    return true
  } catch {
    return false
  } finally {
    await connection?.close()
  }
}

/**
 * A promise plus the function that settles it; it rejects after `timeoutMs`
 * so that a lost message fails the test instead of hanging it.
 */
function deferred<T = void>(timeoutMs = 20_000): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((settle, reject) => {
    const timer = setTimeout(() => reject(new Error(`nothing arrived within ${timeoutMs} ms`)), timeoutMs)
    resolve = (value) => {
      clearTimeout(timer)
      settle(value)
    }
  })
  return { promise, resolve }
}
