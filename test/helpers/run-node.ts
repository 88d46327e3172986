/** Runs a Node child process from the repository root and collects its output (killed after `timeoutMs`). */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface NodeRun {
  code: number | null
  stdout: string
  stderr: string
}

/** `execPath`: another Node's binary (Node 24 for what Node 20 lacks). */
export function runNode(args: string[], env: Record<string, string>, timeoutMs = 40_000, execPath = process.execPath): Promise<NodeRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}
