import { spawnGuarded, waitForOutput } from './child.js'
import { freePort } from './ports.js'

// Debian's redis-server (7.0).
const REDIS_SERVER = '/usr/bin/redis-server'

export interface RedisPeer {
  host: '127.0.0.1'
  port: number
  /** "redis://127.0.0.1:port" */
  url: string
  stop(): Promise<void>
}

/**
 * Starts a redis-server of its own on a free loopback port, in memory only
 * (no RDB snapshots, no append-only file), up in well under a second.
 * BullMQ: `connection: { host, port }` (it loads the ioredis package), and
 * a Worker's connection needs `maxRetriesPerRequest: null` if it is an ioredis
 * instance of the test's own. Nothing survives `stop()`.
 */
export async function startRedis(): Promise<RedisPeer> {
  const port = await freePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  const peer = spawnGuarded('redis-server', REDIS_SERVER, args)
  try {
    await waitForOutput(peer, 'redis-server', /Ready to accept connections/)
  } catch (error) {
    await peer.stop()
    throw error
  }
  return { host: '127.0.0.1', port, url: `redis://127.0.0.1:${port}`, stop: () => peer.stop() }
}
