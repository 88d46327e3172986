// What every demo service shares: where the peers are, and a pause with jitter.
export const brokers = (process.env.KAFKA_BROKERS ?? '').split(',')
export const sqsEndpoint = process.env.SQS_ENDPOINT
export const kinesisEndpoint = process.env.KINESIS_ENDPOINT
export const natsServers = process.env.NATS_SERVERS
export const aws = { region: 'us-east-1', credentials: { accessKeyId: 'demo', secretAccessKey: 'demo' } }
export const redis = { host: '127.0.0.1', port: Number(process.env.REDIS_PORT) }

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
/** A latency with a long tail: mostly around `typical` ms, sometimes several times more. */
export const jitter = (typical) => typical * (0.5 + Math.random()) * (Math.random() < 0.05 ? 4 : 1)

/** Stops the loop on SIGTERM, or when the demo that started this service is gone (its stdin pipe closes). */
export const running = { on: true }
const stop = () => {
  running.on = false
  setTimeout(() => process.exit(0), 3000).unref()
}
process.once('SIGTERM', stop)
process.stdin.once('end', stop)
process.stdin.resume()
process.stdin.unref?.()

/** RabbitMQ's URL, which the demo writes on stdin (`rabbitmq <url>`) once RabbitMQ is up: it takes longer to start than the other peers. */
export const rabbitMqUrl = new Promise((resolve) => {
  let text = ''
  process.stdin.on('data', (chunk) => {
    text += chunk
    const m = /^rabbitmq (\S+)$/m.exec(text)
    if (m) resolve(m[1])
  })
})
