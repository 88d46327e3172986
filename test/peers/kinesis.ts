import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { CreateStreamCommand, DescribeStreamSummaryCommand, type KinesisClient, type KinesisClientConfig } from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { spawnPeer, waitUntilAnswers } from './child.js'
import { freePorts } from './ports.js'

const KINESIS_LOCAL_DIR = dirname(createRequire(import.meta.url).resolve('kinesis-local/package.json'))
const GUARD = fileURLToPath(new URL('./peer-guard.cjs', import.meta.url))

export const KINESIS_REGION = 'us-east-1'

// kinesis-local waits 500 ms by default in each of these state changes
// (e.g. CREATING -> ACTIVE); tests have no use for the wait.
const SHORT_STATE_CHANGES = Object.fromEntries(
  [
    'CREATE_STREAM_DURATION',
    'DELETE_STREAM_DURATION',
    'REGISTER_STREAM_CONSUMER_DURATION',
    'DEREGISTER_STREAM_CONSUMER_DURATION',
    'START_STREAM_ENCRYPTION_DURATION',
    'STOP_STREAM_ENCRYPTION_DURATION',
    'MERGE_SHARDS_DURATION',
    'SPLIT_SHARD_DURATION',
    'UPDATE_SHARD_COUNT_DURATION',
    'UPDATE_STREAM_MODE_DURATION',
  ].map((name) => [name, '10ms']),
)

export interface KinesisPeer {
  /** "http://127.0.0.1:port", plain HTTP/1.1 */
  endpoint: string
  stop(): Promise<void>
}

/**
 * Starts kinesis-local (kinesis-mock compiled for Node) on a free loopback
 * port. A new stream is CREATING for a moment (shortened here) before it is
 * ACTIVE and accepts records: use `createActiveStream`. Records carry
 * `ApproximateArrivalTimestamp`. Streams live in memory only.
 */
export async function startKinesis(): Promise<KinesisPeer> {
  const [plainPort, tlsPort] = await freePorts(2)
  const peer = spawnPeer('kinesis-local', ['--require', GUARD, 'main.js'], {
    // It reads its TLS certificate (server.json) from the working directory.
    cwd: KINESIS_LOCAL_DIR,
    env: {
      ...SHORT_STATE_CHANGES,
      KINESIS_MOCK_PLAIN_PORT: String(plainPort),
      // The TLS listener can't be turned off; keep it off the default 4567.
      KINESIS_MOCK_TLS_PORT: String(tlsPort),
      AWS_REGION: KINESIS_REGION,
      // INFO logs every request.
      LOG_LEVEL: 'WARN',
    },
  })
  const endpoint = `http://127.0.0.1:${plainPort}`
  try {
    await waitUntilAnswers(peer, 'kinesis-local', `${endpoint}/healthcheck`)
  } catch (error) {
    await peer.stop()
    throw error
  }
  return { endpoint, stop: () => peer.stop() }
}

/** `new KinesisClient(kinesisClientConfig(endpoint))` talks to kinesis-local. */
export function kinesisClientConfig(endpoint: string): KinesisClientConfig {
  return {
    region: KINESIS_REGION,
    endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    // The client speaks HTTP/2 by default; the plain port serves HTTP/1.1.
    requestHandler: new NodeHttpHandler(),
  }
}

/**
 * CreateStream, then polls until it is ACTIVE (the SDK's
 * `waitUntilStreamExists` polls every 10 s by default).
 */
export async function createActiveStream(client: KinesisClient, streamName: string, shardCount = 1): Promise<void> {
  await client.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: shardCount }))
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const { StreamDescriptionSummary } = await client.send(new DescribeStreamSummaryCommand({ StreamName: streamName }))
    if (StreamDescriptionSummary?.StreamStatus === 'ACTIVE') return
    await sleep(20)
  }
  throw new Error(`kinesis stream ${streamName} not ACTIVE after 10 s`)
}
