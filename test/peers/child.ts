import { spawn, type ChildProcessByStdio } from 'node:child_process'
import type { Readable, Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'

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
