/** The agent's own bin run from source in a child process, as `pathwise-agent` would run it. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../..', import.meta.url))

export function runBin(...args: string[]): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', 'tsx', 'agent/src/bin.ts', ...args], { cwd: ROOT, stdio: 'pipe' })
}

export interface AgentProcess {
  child: ChildProcessWithoutNullStreams
  url: string
  /** Everything the agent wrote to stdout and to stderr so far. */
  stdout(): string
  stderr(): string
  /** Resolves when the process has ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const live = new Set<ChildProcessWithoutNullStreams>()

/** Kills the agents a failed test left running, which would keep the test process alive. */
export function killAgentProcesses(): void {
  for (const child of live) child.kill('SIGKILL')
}

/** `pathwise-agent agent --port 0 …args`, resolved once it listens. */
export async function startAgentProcess(...args: string[]): Promise<AgentProcess> {
  const child = runBin('agent', '--port', '0', ...args)
  live.add(child)
  child.on('close', () => live.delete(child))
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the agent did not start: ${stdout}${stderr}`)), 20_000)
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString()
      const m = /listening on (http:\/\/[^\s:]+:\d+)/.exec(stdout)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    })
    void exited.then(({ code }) => {
      clearTimeout(timer)
      reject(new Error(`the agent exited with ${code} before listening: ${stdout}${stderr}`))
    })
  })
  return { child, url, stdout: () => stdout, stderr: () => stderr, exited }
}

/** Polls `read` until `ok`, or throws with the last value. */
export async function waitFor<T>(what: string, read: () => T | Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (ok(value)) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value).slice(0, 500)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
