/**
 * A service of a multi-process test in a child process run from the repository root: waits for
 * lines it prints (`ready`, its port) and for its exit, with what it wrote. Killed after `limitMs`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface ServiceProcess {
  /** The process itself, to signal it. */
  child: ChildProcess
  /** The first match of `re` in what it printed so far or prints next; rejects if it exits first. */
  line(re: RegExp): Promise<RegExpExecArray>
  exit: Promise<{ code: number | null; out: string; err: string }>
}

export function startServiceProcess(args: string[], env: Record<string, string>, limitMs = 60_000): ServiceProcess {
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  const waiting: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = []
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk
    for (const w of [...waiting]) {
      const m = w.re.exec(out)
      if (m !== null) {
        waiting.splice(waiting.indexOf(w), 1)
        w.resolve(m)
      }
    }
  })
  child.stderr.on('data', (chunk: Buffer) => (err += chunk))
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs)
  const exit = new Promise<{ code: number | null; out: string; err: string }>((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, out, err })
    }),
  )
  const line = (re: RegExp) => {
    const now = re.exec(out)
    if (now !== null) return Promise.resolve(now)
    return Promise.race([
      new Promise<RegExpExecArray>((resolve) => waiting.push({ re, resolve })),
      exit.then(({ code }) => Promise.reject(new Error(`${args.join(' ')} exited ${code} before printing ${re}:\n${err}${out}`))),
    ])
  }
  return { child, line, exit }
}
