/** Debian's Prometheus (/usr/bin/prometheus) on a free loopback port, configured from the README's "Many hosts" prometheus.yml. */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from './agent-process.js'

export async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** The README's prometheus.yml, as written there. */
export function readmePrometheusConfig(): string {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
  const config = /```yaml\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('### Many hosts')))?.[1]
  if (!config || !/targets: \[.*\]/.test(config)) throw new Error('no prometheus.yml with targets in README "Many hosts"')
  return config
}

/** The README's configuration with these targets (host:port). */
export const withTargets = (config: string, targets: string[]): string => config.replace(/targets: \[.*\]/, `targets: [${targets.map((t) => `'${t}'`).join(', ')}]`)

export interface RunningPrometheus {
  url: string
  process: ChildProcess
  /** The last lines it logged. */
  log(): string
  stop(): Promise<void>
}

/** Prometheus with this configuration, once it says it is ready. */
export async function startPrometheus(config: string): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'pathwise-prometheus-'))
  writeFileSync(join(dir, 'prometheus.yml'), config)
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  let log = ''
  const child = spawn(
    '/usr/bin/prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  child.stderr!.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)))
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
    rmSync(dir, { recursive: true, force: true })
  }
  await waitFor(
    'Prometheus to be ready',
    () => fetch(`${url}/-/ready`).then((r) => r.status, () => 0),
    (s) => s === 200,
    30_000,
  ).catch(async (err: Error) => {
    await stop()
    throw new Error(`${err.message}\n${log}`)
  })
  return { url, process: child, log: () => log, stop }
}
