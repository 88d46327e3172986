import { fileURLToPath } from 'node:url'
import type { SQSClientConfig } from '@aws-sdk/client-sqs'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { spawnPeer, waitUntilAnswers } from './child.js'
import { freePort } from './ports.js'

const FAUXQS_CLI = fileURLToPath(new URL('../../node_modules/.bin/fauxqs', import.meta.url))
const GUARD = fileURLToPath(new URL('./peer-guard.cjs', import.meta.url))

export const SQS_REGION = 'us-east-1'

export interface SqsPeer {
  /** "http://127.0.0.1:port" */
  endpoint: string
  stop(): Promise<void>
}

/**
 * Starts fauxqs (an SQS/SNS/S3 emulator) on a free loopback port.
 * Queue URLs look like AWS's ("http://sqs.us-east-1.localhost:port/000000000000/name"),
 * a host that is not dialable: clients need `endpoint` set (as
 * `sqsClientConfig` does), which the SDK then prefers over the queue URL's
 * host. Message attributes, `_datadog` included, round-trip like on AWS.
 * ReceiveMessage returns at once when a message is ready, so
 * `WaitTimeSeconds` only costs time on an empty queue.
 */
export async function startSqs(): Promise<SqsPeer> {
  const port = await freePort()
  const peer = spawnPeer('fauxqs', ['--require', GUARD, FAUXQS_CLI], {
    env: {
      FAUXQS_PORT: String(port),
      FAUXQS_DEFAULT_REGION: SQS_REGION,
    },
  })
  const endpoint = `http://127.0.0.1:${port}`
  try {
    await waitUntilAnswers(peer, 'fauxqs', `${endpoint}/health`)
  } catch (error) {
    await peer.stop()
    throw error
  }
  return { endpoint, stop: () => peer.stop() }
}

/** `new SQSClient(sqsClientConfig(endpoint))` talks to the emulator. */
export function sqsClientConfig(endpoint: string): SQSClientConfig {
  return {
    region: SQS_REGION,
    endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    requestHandler: new NodeHttpHandler(),
  }
}
