/**
 * A user's application in a temporary directory, where `import ... from 'pathwise'` and
 * `require('pathwise')` resolve to this checkout's built package (node_modules/pathwise links to it).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

/** Bun as installed by `npm ci` (the `bun` package). */
export const BUN = path.join(root, 'node_modules/.bin/bun')

export interface AppDir {
  dir: string
  remove(): Promise<void>
}

/** Writes `files` (name → source) into a new directory that has pathwise installed. */
export async function appDir(files: Record<string, string>): Promise<AppDir> {
  if (!existsSync(path.join(root, 'dist/index.js'))) throw new Error('dist/ is missing: npm run build')
  const dir = await mkdtemp(path.join(tmpdir(), 'pathwise-app-'))
  await mkdir(path.join(dir, 'node_modules'))
  await symlink(root, path.join(dir, 'node_modules/pathwise'), 'dir')
  for (const [name, source] of Object.entries(files)) await writeFile(path.join(dir, name), source)
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) }
}

export interface Run {
  /** null if it had to be killed after the limit. */
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs `command` in `dir` and resolves once it exits by itself, or kills it after `limitMs`
 * (a bound for a stuck process, not a speed). `onStart` gets the child, e.g. to talk over IPC.
 */
export function run(
  command: string,
  args: string[],
  options: { dir: string; env?: Record<string, string>; limitMs?: number; ipc?: boolean; onStart?: (child: ChildProcess) => void },
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.dir,
      env: { ...process.env, DO_NOT_TRACK: '1', NO_COLOR: '1', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe', ...(options.ipc === true ? ['ipc' as const] : [])],
    })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk))
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.limitMs ?? 30_000)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    options.onStart?.(child)
  })
}
