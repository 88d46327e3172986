// Takes the emails the notifier publishes to the RabbitMQ exchange `emails`, from its queue
// `mailer`, one `get` at a time (amqplib) and a little slower than they come: the queue's depth,
// which each get reports, shows on the map as the mailer's lag. It starts once RabbitMQ is up.
import amqplib from 'amqplib'
import { jitter, rabbitMqUrl, running, sleep } from './env.mjs'

// stdin does not keep a service alive: this does, until RabbitMQ's URL arrives there.
const waiting = setInterval(() => {}, 1000)
const connection = await amqplib.connect(await rabbitMqUrl)
clearInterval(waiting)
const channel = await connection.createChannel()
await channel.assertExchange('emails', 'direct', { durable: false })
await channel.assertQueue('mailer', { durable: false })
await channel.bindQueue('mailer', 'emails', 'order.confirmed')
while (running.on) {
  const message = await channel.get('mailer')
  if (message === false) {
    await sleep(100)
    continue
  }
  await sleep(jitter(30))
  channel.ack(message)
}
await connection.close()
