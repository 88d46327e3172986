// Builds what changed since the last build, one line per step: the Wasm core (asc, then embedded
// into bindings/) when its sources changed, then dist/ (tsup) when the library's sources or the
// Wasm changed, then the agent package's dist/ when its sources or the library changed (not with
// `--library`). A tool's own output is shown only when it fails. `--force` rebuilds everything.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const force = process.argv.includes('--force')
// `prepack` (npm pack) builds the library alone: its package holds no agent.
const libraryOnly = process.argv.includes('--library')

/** The newest modification time under these paths (files and folders, recursively); 0 if none exists. */
function newest(paths) {
  let time = 0
  for (const p of paths) {
    const full = join(root, p)
    if (!existsSync(full)) continue
    const stat = statSync(full)
    if (stat.isDirectory()) time = Math.max(time, newest(readdirSync(full).map((e) => join(p, e))))
    else time = Math.max(time, stat.mtimeMs)
  }
  return time
}

function age(path) {
  const full = join(root, path)
  return existsSync(full) ? statSync(full).mtimeMs : -1
}

function step(name, inputs, output, command, args) {
  if (!force && age(output) >= newest(inputs)) {
    console.log(`${name}: up to date`)
    return
  }
  const started = Date.now()
  const run = spawnSync(command, args, { cwd: root, encoding: 'utf8', shell: process.platform === 'win32' })
  if (run.status !== 0) {
    process.stdout.write(run.stdout ?? '')
    process.stderr.write(run.stderr ?? '')
    console.error(`${name}: failed`)
    process.exit(run.status ?? 1)
  }
  writeFileSync(join(root, output), `${new Date().toISOString()}\n`)
  console.log(`${name}: built in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
step('wasm core', ['assembly', 'asconfig.json', 'scripts', 'bindings/core', 'package.json'], 'build/.stamp', npm, ['run', '--silent', 'build:wasm'])
step(
  'library (dist/)',
  ['bindings', 'build/pathwise.wasm', 'tsup.config.ts', 'tsconfig.json', 'package.json'],
  'dist/.stamp',
  npm,
  ['run', '--silent', 'build:dist'],
)
if (!libraryOnly) step('agent (agent/dist/)', ['agent/src', 'agent/tsup.config.ts', 'agent/package.json', 'dist/.stamp'], 'agent/dist/.stamp', npm, ['run', '--silent', 'build', '-w', '@pathwise/agent'])
