import { mkdtempSync, writeFileSync } from 'node:fs'
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

/** Server settings written to a configuration file, e.g. `{ no_header_support: true, max_payload: 2048 }`. */
export type NatsConfig = Record<string, string | number | boolean>

/**
 * Starts a nats-server of its own on a free loopback port, up in well under a
 * second. `jetStream: true` enables JetStream (`-js`) with its store in a
 * fresh temporary directory; without it, `jetstreamManager()` fails with a
 * 503. Headers are supported (server ≥ 2.2) unless `config` says
 * `no_header_support: true` (the server then tells clients it has none).
 * `config` goes into a configuration file in a temporary directory. Nothing
 * survives `stop()`.
 */
export async function startNats(options: { jetStream?: boolean; config?: NatsConfig } = {}): Promise<NatsPeer> {
  const port = await freePort()
  const dir = options.jetStream === true || options.config !== undefined ? mkdtempSync(join(tmpdir(), 'pathwise-nats-')) : undefined
  const jetStream = options.jetStream === true ? ['-js', '-sd', join(dir!, 'store')] : []
  const config: string[] = []
  if (options.config !== undefined) {
    const file = join(dir!, 'nats.conf')
    writeFileSync(file, Object.entries(options.config).map(([key, value]) => `${key}: ${value}\n`).join(''))
    config.push('-c', file)
  }
  const peer = spawnGuarded('nats-server', NATS_SERVER, [...config, '-a', '127.0.0.1', '-p', String(port), ...jetStream], { removeDir: dir })
  try {
    await waitForOutput(peer, 'nats-server', /Server is ready/)
  } catch (error) {
    await peer.stop()
    throw error
  }
  return { servers: `127.0.0.1:${port}`, port, storeDir: options.jetStream === true ? join(dir!, 'store') : undefined, stop: () => peer.stop() }
}
