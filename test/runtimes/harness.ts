import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { fileURLToPath, pathToFileURL } from 'node:url'

const BIN_DIR = fileURLToPath(new URL('../../node_modules/.bin/', import.meta.url))
// util-linux (always on Debian): makes the kernel kill the runtime when the
// test process dies, even by SIGKILL, so no runtime outlives its test.
const SETPRIV = '/usr/bin/setpriv'
const HOST = '127.0.0.1'
const START_TIMEOUT_MS = 15_000
const STOP_GRACE_MS = 3_000
const OUTPUT_TAIL_CHARS = 16_384
// Printed by the Deno and Bun entry wrappers once they listen.
const LISTENING = '[pathwise-harness] listening on port '
// Not later than the installed workerd's own date (it refuses newer ones).
const DEFAULT_COMPATIBILITY_DATE = '2025-09-01'

export interface RuntimeOptions {
  /**
   * Path of an ES module in Workers style: its default export is
   * `{ fetch(request, env, ctx) }`. workerd runs it as is; for Deno and Bun
   * the harness serves it through a small entry module, with the same
   * `env` and a `ctx.waitUntil`.
   */
  program: string
  /**
   * String bindings, the `env` of `fetch` in every runtime: text bindings in
   * workerd, environment variables for Deno and Bun (read back into `env`).
   */
  bindings?: Record<string, string>
  /** `false` runs without WebAssembly: `typeof WebAssembly === 'undefined'`. */
  wasm?: boolean
  startTimeoutMs?: number
}

export type WorkerdModuleType = 'esModule' | 'wasm' | 'text' | 'data' | 'json'

export interface WorkerdModule {
  /** Name the program imports it by, relative to the program: "./<name>". */
  name: string
  /** From `.wasm` (imports as a `WebAssembly.Module`) and `.json`, else `esModule`. */
  type?: WorkerdModuleType
  /** Either a file, or the contents themselves. */
  path?: string
  contents?: string | Uint8Array
}

export interface WorkerdOptions extends RuntimeOptions {
  /** Further modules of the Worker beside the program (its main module). */
  modules?: WorkerdModule[]
  compatibilityDate?: string
  compatibilityFlags?: string[]
}

export interface RunningRuntime {
  /** "http://127.0.0.1:<port>" */
  url: string
  /** The last few KB of the runtime's stdout and stderr. */
  output(): string
  /** Stops the runtime and removes its temporary files; safe to call twice. */
  stop(): Promise<void>
}

/** Runs `program` as a Worker in workerd, the Cloudflare Workers runtime. */
export function startWorkerd(options: WorkerdOptions): Promise<RunningRuntime> {
  return inTempDir('workerd', async (dir) => {
    const modules: EmbeddedModule[] = [{ name: path.basename(options.program), type: 'esModule', file: path.resolve(options.program) }]
    for (const module of options.modules ?? []) {
      const type = module.type ?? moduleType(module.name)
      modules.push({ name: module.name, type, file: await moduleFile(dir, module) })
    }
    const config = path.join(dir, 'config.capnp')
    await writeFile(config, workerdConfig(dir, options, modules))
    return launch({
      name: 'workerd',
      command: path.join(BIN_DIR, 'workerd'),
      // workerd reports the port it bound (the config asks for port 0) as
      // JSON lines on the control descriptor, fd 3 here.
      args: ['serve', config, '--control-fd=3'],
      dir,
      env: {},
      timeoutMs: options.startTimeoutMs,
      portFrom: 'control-fd',
      parsePort: (line) => {
        const message = JSON.parse(line) as { event?: string; socket?: string; port?: number }
        return message.event === 'listen' && message.socket === 'http' ? message.port : undefined
      },
    })
  })
}

/** Runs `program` in Deno, offline, allowed only loopback network, env and reading its own files. */
export function startDeno(options: RuntimeOptions): Promise<RunningRuntime> {
  return inTempDir('deno', async (dir) => {
    const entry = path.join(dir, 'entry.mjs')
    await writeFile(
      entry,
      `${entryPrelude(options)}
const env = Object.fromEntries(BINDINGS.map((name) => [name, Deno.env.get(name)]));
Deno.serve(
  { hostname: '${HOST}', port: 0, onListen: ({ port }) => console.log(LISTENING + port) },
  (request) => program.fetch(request, env, ctx),
);
`,
    )
    const args = [
      'run',
      // Nothing to resolve beyond local files, and no config or lock file to find.
      '--no-config',
      '--no-lock',
      '--no-remote',
      '--no-npm',
      '--no-prompt',
      `--allow-net=${HOST}`,
      '--allow-env',
      `--allow-read=${dir},${path.dirname(path.resolve(options.program))}`,
    ]
    // Deno's V8 no longer has --noexpose-wasm; jitless V8 leaves WebAssembly out.
    if (options.wasm === false) args.push('--v8-flags=--jitless')
    args.push(entry)
    return launch({
      name: 'deno',
      command: path.join(BIN_DIR, 'deno'),
      args,
      dir,
      env: { ...options.bindings, DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1', NO_COLOR: '1' },
      timeoutMs: options.startTimeoutMs,
      portFrom: 'stdout',
      parsePort: listeningPort,
    })
  })
}

/** Runs `program` in Bun, with auto-install and .env loading off. */
export function startBun(options: RuntimeOptions): Promise<RunningRuntime> {
  return inTempDir('bun', async (dir) => {
    const entry = path.join(dir, 'entry.mjs')
    await writeFile(
      entry,
      `${entryPrelude(options)}
const env = Object.fromEntries(BINDINGS.map((name) => [name, process.env[name]]));
const server = Bun.serve({ hostname: '${HOST}', port: 0, fetch: (request) => program.fetch(request, env, ctx) });
console.log(LISTENING + server.port);
`,
    )
    // DO_NOT_TRACK: no crash reports or telemetry sent to bun.sh.
    const env: NodeJS.ProcessEnv = { ...options.bindings, DO_NOT_TRACK: '1', NO_COLOR: '1' }
    // JavaScriptCore's option that exposes the WebAssembly global.
    if (options.wasm === false) env.BUN_JSC_useWasm = '0'
    return launch({
      name: 'bun',
      command: path.join(BIN_DIR, 'bun'),
      args: ['--no-install', '--no-env-file', entry],
      dir,
      env,
      timeoutMs: options.startTimeoutMs,
      portFrom: 'stdout',
      parsePort: listeningPort,
    })
  })
}

/** Gives `start` a fresh temporary directory, removed if it fails (else by `stop()`). */
async function inTempDir(runtime: string, start: (dir: string) => Promise<RunningRuntime>): Promise<RunningRuntime> {
  const dir = await mkdtemp(path.join(tmpdir(), `pathwise-${runtime}-`))
  try {
    return await start(dir)
  } catch (error) {
    await rm(dir, { recursive: true, force: true })
    throw error
  }
}

function moduleType(name: string): WorkerdModuleType {
  if (name.endsWith('.wasm')) return 'wasm'
  if (name.endsWith('.json')) return 'json'
  return 'esModule'
}

async function moduleFile(dir: string, module: WorkerdModule): Promise<string> {
  if (module.path !== undefined) return path.resolve(module.path)
  if (module.contents === undefined) throw new Error(`workerd module ${module.name}: give a path or contents`)
  const file = path.join(dir, 'modules', module.name)
  await mkdir(path.dirname(file), { recursive: true })
  await writeFile(file, module.contents)
  return file
}

interface EmbeddedModule {
  name: string
  type: WorkerdModuleType
  file: string
}

function workerdConfig(dir: string, options: WorkerdOptions, modules: EmbeddedModule[]): string {
  // JSON strings are valid Cap'n Proto text literals for the names, paths
  // and URLs used here; `embed` paths are relative to the config file.
  const text = (value: string): string => JSON.stringify(value)
  const list = (items: string[]): string => `[${items.join(', ')}]`
  const moduleLines = modules.map((m) => `(name = ${text(m.name)}, ${m.type} = embed ${text(path.relative(dir, m.file))})`)
  const bindingLines = Object.entries(options.bindings ?? {}).map(([name, value]) => `(name = ${text(name)}, text = ${text(value)})`)
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    # The default "internet" service refuses private addresses; the test
    # peers (e.g. the Agent) listen on loopback.
    (name = "loopback", network = (allow = ["local"])),
  ],
  sockets = [(name = "http", address = "${HOST}:0", http = (), service = "main")],
  v8Flags = ${list(options.wasm === false ? [text('--jitless')] : [])},
);

const worker :Workerd.Worker = (
  modules = ${list(moduleLines)},
  compatibilityDate = ${text(options.compatibilityDate ?? DEFAULT_COMPATIBILITY_DATE)},
  compatibilityFlags = ${list((options.compatibilityFlags ?? []).map(text))},
  bindings = ${list(bindingLines)},
  globalOutbound = "loopback",
);
`
}

/**
 * Start of the Deno and Bun entry modules, which serve the Workers-style
 * program: `program`, `BINDINGS` (names of the environment variables that
 * make up `env`), `LISTENING` and `ctx`.
 */
function entryPrelude(options: RuntimeOptions): string {
  return [
    `import program from ${JSON.stringify(pathToFileURL(path.resolve(options.program)).href)};`,
    `const BINDINGS = ${JSON.stringify(Object.keys(options.bindings ?? {}))};`,
    `const LISTENING = ${JSON.stringify(LISTENING)};`,
    // Deno and Bun keep running after a response, so waitUntil only has to report failures.
    'const ctx = { waitUntil(promise) { Promise.resolve(promise).catch((error) => console.error(error)); } };',
  ].join('\n')
}

function listeningPort(line: string): number | undefined {
  return line.startsWith(LISTENING) ? Number(line.slice(LISTENING.length)) : undefined
}

interface Launch {
  name: string
  command: string
  args: string[]
  /** Working directory, so no config (.env, bunfig.toml, deno.json) of the project is picked up; removed on stop. */
  dir: string
  env: NodeJS.ProcessEnv
  timeoutMs: number | undefined
  /** Where the runtime reports its port: stdout, or a pipe on fd 3. */
  portFrom: 'stdout' | 'control-fd'
  parsePort(line: string): number | undefined
}

async function launch(spec: Launch): Promise<RunningRuntime> {
  const [command, args] = existsSync(SETPRIV)
    ? [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', spec.command, ...spec.args]]
    : [spec.command, spec.args]
  const child = spawn(command, args, {
    cwd: spec.dir,
    env: { ...process.env, ...spec.env },
    stdio: spec.portFrom === 'control-fd' ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe'],
  })

  let tail = ''
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS)
  }
  // Always drained, so a chatty runtime never blocks on a full pipe.
  ;(child.stdout as Readable).on('data', keep)
  ;(child.stderr as Readable).on('data', keep)

  const closed = new Promise<void>((resolve) => {
    child.once('close', () => resolve())
    child.once('error', (error) => {
      keep(Buffer.from(`${spec.name}: ${error.message}\n`))
      resolve()
    })
  })
  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      let timer: NodeJS.Timeout | undefined
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS)
      }
      await closed
      clearTimeout(timer)
      await rm(spec.dir, { recursive: true, force: true })
    })()
    return stopping
  }

  const timeoutMs = spec.timeoutMs ?? START_TIMEOUT_MS
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${spec.name} did not listen within ${timeoutMs} ms:\n${tail}`)), timeoutMs)
      let pending = ''
      const reports = (spec.portFrom === 'control-fd' ? child.stdio[3] : child.stdout) as Readable
      const onData = (chunk: Buffer): void => {
        pending += chunk.toString('utf8')
        let newline: number
        while ((newline = pending.indexOf('\n')) !== -1) {
          const port = spec.parsePort(pending.slice(0, newline))
          pending = pending.slice(newline + 1)
          if (port !== undefined) {
            clearTimeout(timer)
            reports.off('data', onData)
            resolve(port)
            return
          }
        }
      }
      reports.on('data', onData)
      void closed.then(() => {
        clearTimeout(timer)
        reject(new Error(`${spec.name} exited (${child.exitCode ?? child.signalCode}) before listening:\n${tail}`))
      })
    })
    return { url: `http://${HOST}:${port}`, output: () => tail, stop }
  } catch (error) {
    await stop()
    throw error
  }
}
