'use strict'
// A Kafka cluster for tests: librdkafka's built-in mock brokers, which speak
// the real protocol on 127.0.0.1. They live inside the librdkafka handle that
// creates them, so this process holds that handle open, prints the brokers as
// one JSON line ({"brokers":["127.0.0.1:port",...]}), and exits when its
// stdin closes (the test process is gone) or on SIGTERM/SIGINT.

const { Producer } = require('@confluentinc/kafka-javascript')

const producer = new Producer({
  // Three brokers, so partitions have leaders on different brokers and
  // clients must really route by metadata.
  'test.mock.num.brokers': 3,
})

process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
process.on('SIGTERM', () => process.exit(0))
process.on('SIGINT', () => process.exit(0))

producer.connect({}, (connectError) => {
  if (connectError) return fail(connectError)
  producer.getMetadata({ timeout: 10_000 }, (metadataError, metadata) => {
    if (metadataError) return fail(metadataError)
    const brokers = metadata.brokers
      .slice()
      .sort((a, b) => a.id - b.id)
      .map((broker) => `${broker.host}:${broker.port}`)
    process.stdout.write(`${JSON.stringify({ brokers })}\n`)
  })
})

function fail(error) {
  process.stderr.write(`kafka mock cluster: ${error && error.message ? error.message : String(error)}\n`)
  process.exit(1)
}
