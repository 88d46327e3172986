import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Readable, Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { accepts } from './ports.js'

const SERVER_GUARD = fileURLToPath(new URL('./server-guard.cjs', import.meta.url))
const OUTPUT_TAIL_CHARS = 8_192
const STOP_GRACE_MS = 3_000

export interface PeerProcess {
  readonly child: ChildProcessByStdio<Writable, Readable, Readable>
  /** Resolves once the process has exited (or failed to spawn). */
  readonly exited: Promise<void>
  hasExited(): boolean
  /** The last few KB of stdout and stderr, for error messages. */
  output(): string
  /** Closes its stdin and sends SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>
}

/**
 * Spawns a peer server. Its stdin stays an open pipe on purpose: every peer
 * exits when that pipe closes, so a test process that dies without cleanup
 * still takes its peers with it.
 */
export function spawnPeer(name: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): PeerProcess {
  const child = spawn(process.execPath, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group: a Ctrl-C in the terminal reaches the harness, which stops the
    // peers after their clients, rather than killing peers under clients still talking to them.
    detached: true,
  })
  let tail = ''
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS)
  }
  // Always drained, so a chatty peer never blocks on a full pipe.
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)

  let done = false
  const exited = new Promise<void>((resolve) => {
    const finish = (): void => {
      done = true
      resolve()
    }
    child.once('exit', finish)
    child.once('error', (error) => {
      keep(Buffer.from(`${name}: ${error.message}\n`))
      finish()
    })
  })

  return {
    child,
    exited,
    hasExited: () => done,
    output: () => tail,
    async stop() {
      if (done) return
      // The closed stdin ends every peer at once; kinesis-local's own SIGTERM
      // shutdown alone takes seconds.
      child.stdin.end()
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS)
      await exited
      clearTimeout(timer)
    },
  }
}

/**
 * Spawns a native server (not Node) under server-guard.cjs, which gives it the
 * same fate as the peers above: it ends, with its whole process group, when
 * the test process stops it or goes away. `removeDir` (its data) is removed
 * once it has ended. `killEnv` ("NAME=VALUE", unique to this server) marks its
 * processes that leave the group: they are killed too.
 */
export function spawnGuarded(
  name: string,
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; removeDir?: string; killEnv?: string } = {},
): PeerProcess {
  const remove = options.removeDir === undefined ? [] : ['--remove', options.removeDir]
  const killEnv = options.killEnv === undefined ? [] : ['--kill-env', options.killEnv]
  return spawnPeer(name, [SERVER_GUARD, ...remove, ...killEnv, '--', command, ...args], { cwd: options.cwd, env: options.env })
}

/** Polls `url` until it answers 2xx; fails early if the peer dies. */
export async function waitUntilAnswers(peer: PeerProcess, name: string, url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (peer.hasExited()) throw new Error(`${name} exited before answering ${url}:\n${peer.output()}`)
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) })
      await response.arrayBuffer()
      if (response.ok) return
    } catch {
      // Not listening yet.
    }
    await sleep(50)
  }
  throw new Error(`${name} did not answer ${url} within ${timeoutMs} ms:\n${peer.output()}`)
}

/** Waits until the peer has printed (stdout or stderr) a line matching `pattern`; fails early if the peer dies. */
export function waitForOutput(peer: PeerProcess, name: string, pattern: RegExp, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!pattern.test(peer.output())) return
      settle()
      resolve()
    }
    const settle = (): void => {
      clearTimeout(timer)
      peer.child.stdout.off('data', check)
      peer.child.stderr.off('data', check)
    }
    const timer = setTimeout(() => {
      settle()
      reject(new Error(`${name} did not print ${pattern} within ${timeoutMs} ms:\n${peer.output()}`))
    }, timeoutMs)
    // spawnPeer's own listeners come first, so output() already holds each chunk.
    peer.child.stdout.on('data', check)
    peer.child.stderr.on('data', check)
    void peer.exited.then(() => {
      settle()
      reject(new Error(`${name} exited before printing ${pattern}:\n${peer.output()}`))
    })
    check()
  })
}

/** Polls 127.0.0.1:`port` until it accepts a connection while the peer still runs; fails early if the peer dies. */
export async function waitUntilListening(peer: PeerProcess, name: string, port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (peer.hasExited()) throw new Error(`${name} exited before listening on ${port}:\n${peer.output()}`)
    if (await accepts(port)) {
      // Something else could hold the port (taken between freePort() and the peer's start):
      // then the peer fails to listen and exits.
      await sleep(50)
      if (peer.hasExited()) throw new Error(`${name} exited: port ${port} was taken:\n${peer.output()}`)
      return
    }
    await sleep(20)
  }
  throw new Error(`${name} did not listen on ${port} within ${timeoutMs} ms:\n${peer.output()}`)
}
