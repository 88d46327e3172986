/**
 * The built agent (`node agent/dist/bin.js agent --port 0`, or another checkout's to compare with)
 * in a process of its own, as users run it, with its resident memory and CPU time read from /proc: the load generator shares the
 * machine, so only the agent's own process (its decode worker is a thread of it) is counted.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const BIN = fileURLToPath(new URL('../../agent/dist/bin.js', import.meta.url))
const START_TIMEOUT_MS = 20_000
const STOP_GRACE_MS = 5_000

/** Clock ticks per second of /proc/<pid>/stat's times (100 on Linux, almost always). */
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

export interface AgentProcess {
  url: string
  pid: number
  /** VmRSS in MiB. */
  rssMiB(): number
  /** User + system CPU time of every thread, in seconds. */
  cpuSeconds(): number
  /** What the agent logged so far. */
  stderr(): string
  stop(): Promise<void>
}

/** Starts the agent at `bin` (this checkout's by default; another's, built, to compare with). */
export async function startAgentProcess(args: string[] = [], bin = BIN): Promise<AgentProcess> {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build first (npm run build)`)
  // BENCH_AGENT_CPU_PROF=DIR: a CPU profile of each of the agent's threads into DIR, written when it stops.
  const profile = process.env.BENCH_AGENT_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_AGENT_CPU_PROF}`] : []
  const child: ChildProcess = spawn(process.execPath, [...profile, bin, 'agent', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  // A bench that fails or is interrupted leaves no agent behind (children outlive their parent otherwise).
  const orphan = (): void => void child.kill('SIGKILL')
  process.once('exit', orphan)
  void exited.then(() => process.off('exit', orphan))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the agent did not start within ${START_TIMEOUT_MS} ms: ${stdout}${stderr}`))
    }, START_TIMEOUT_MS)
    // Its first stdout line: "pathwise agent X listening on http://127.0.0.1:PORT: the pipeline at …".
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString()
      const m = /listening on (http:\/\/[^\s:]+:\d+)/.exec(stdout)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    })
    void exited.then(() => {
      clearTimeout(timer)
      reject(new Error(`the agent exited before listening: ${stdout}${stderr}`))
    })
  })
  const pid = child.pid!
  return {
    url,
    pid,
    rssMiB() {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      return m ? Number(m[1]) / 1024 : NaN
    },
    cpuSeconds() {
      // Fields after the command (which may hold spaces, so split after its closing parenthesis): utime is the 14th field, stime the 15th.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return (Number(fields[11]) + Number(fields[12])) / TICKS
    },
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS)
      await exited
      clearTimeout(timer)
    },
  }
}

/** CPU seconds every process of the machine has used since boot (all cores, idle and iowait left out). */
export function machineBusySeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const total = fields.reduce((a, b) => a + b, 0)
  return (total - fields[3] - (fields[4] ?? 0)) / TICKS
}
