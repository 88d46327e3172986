import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnGuarded, waitForOutput } from './child.js'
import { freePort } from './ports.js'

// Debian's nats-server (2.9).
const NATS_SERVER = '/usr/sbin/nats-server'

export interface NatsPeer {
  /** "127.0.0.1:port", for nats.js `connect({ servers })` */
  servers: string
  port: number
  /** JetStream's store directory (removed by `stop()`), when started with `jetStream: true` */
  storeDir: string | undefined
  stop(): Promise<void>
}

/**
 * Starts a nats-server of its own on a free loopback port, up in well under a
 * second. `jetStream: true` enables JetStream (`-js`) with its store in a
 * fresh temporary directory; without it, `jetstreamManager()` fails with a
 * 503. Headers are supported (server ≥ 2.2). Nothing survives `stop()`.
 */
export async function startNats(options: { jetStream?: boolean } = {}): Promise<NatsPeer> {
  const port = await freePort()
  const storeDir = options.jetStream === true ? mkdtempSync(join(tmpdir(), 'pathwise-nats-')) : undefined
  const jetStream = storeDir === undefined ? [] : ['-js', '-sd', storeDir]
  const peer = spawnGuarded('nats-server', NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), ...jetStream], { removeDir: storeDir })
  try {
    await waitForOutput(peer, 'nats-server', /Server is ready/)
  } catch (error) {
    await peer.stop()
    throw error
  }
  return { servers: `127.0.0.1:${port}`, port, storeDir, stop: () => peer.stop() }
}
