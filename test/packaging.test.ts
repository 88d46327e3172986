/**
 * The library as a user gets it: `npm pack` of this checkout, installed with npm into a new project
 * outside the repository, then used from an ES module, from CommonJS, through both register
 * entries, from TypeScript under four module settings and through the `pathwise` bin; the
 * manifest it ships (no development fields) and an install that prints no warning; and what
 * `npm publish` would upload.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { startAgent, type TestAgent } from './helpers/agent-server.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const fixtures = path.join(root, 'test/fixtures/packaging')
const manifestText = readFileSync(path.join(root, 'package.json'), 'utf8')
const manifest = JSON.parse(manifestText) as {
  version: string
  main: string
  module: string
  types: string
  exports: unknown
  bin: Record<string, string>
}
/** The repository's own TypeScript. */
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const MAX_PACKAGES = 12
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall']
/** What only this repository's development uses (scripts/pack-manifest.mjs leaves them out of the tarball). */
const DEVELOPMENT_ONLY = ['workspaces', 'scripts', 'devDependencies']
/** The fields a user's npm, Node, TypeScript or bundler reads of an installed package. */
const CONSUMER_FIELDS =
  'name version description license type engines main module types exports files sideEffects dependencies bin peerDependencies peerDependenciesMeta'.split(' ')

interface Run {
  command: string
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Runs `command` in `cwd`. One still running after `limitMs` (a bound for a stuck process, not a
 * speed) is killed with its process group, so that npm's own children go too, and the run fails.
 */
function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}, limitMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    const timer = setTimeout(() => {
      stderr += `\n[killed: still running after ${limitMs} ms]`
      process.kill(-child.pid!, 'SIGKILL')
    }, limitMs)
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ command: [command, ...args].join(' '), code, stdout, stderr })
    })
  })
}

function show(r: Run): string {
  return `$ ${r.command}\nexit code ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`
}

async function succeed(command: string, args: string[], cwd: string, env?: Record<string, string>): Promise<Run> {
  const r = await run(command, args, cwd, env)
  assert.equal(r.code, 0, show(r))
  return r
}

/** The JSON `npm pack|publish --json` prints after `prepack`'s own output. */
const npmJson = (stdout: string) => stdout.slice(stdout.search(/^[[{]/m))

interface Installed {
  /** Relative to the project, e.g. `node_modules/@msgpack/msgpack`. */
  name: string
  dir: string
}

/** Every package folder under `nodeModules`, scoped and nested ones included. */
async function installedPackages(project: string, nodeModules = path.join(project, 'node_modules')): Promise<Installed[]> {
  const found: Installed[] = []
  for (const entry of await readdir(nodeModules, { withFileTypes: true })) {
    // .bin, .package-lock.json
    if (entry.name.startsWith('.')) continue
    const dirs = entry.name.startsWith('@')
      ? (await readdir(path.join(nodeModules, entry.name))).map((name) => path.join(nodeModules, entry.name, name))
      : [path.join(nodeModules, entry.name)]
    for (const dir of dirs) {
      found.push({ name: path.relative(project, dir), dir })
      if (existsSync(path.join(dir, 'node_modules'))) found.push(...(await installedPackages(project, path.join(dir, 'node_modules'))))
    }
  }
  return found
}

/** The file paths an `exports` map (or part of one) points to. */
function exportTargets(value: unknown): string[] {
  if (typeof value === 'string') return [value]
  return value !== null && typeof value === 'object' ? Object.values(value).flatMap(exportTargets) : []
}

/** A `./dist/x.js` target as npm lists the file: `dist/x.js`. */
const packedPath = (target: string) => path.posix.normalize(target)

describe('the packed library, installed from its tarball into a new project', () => {
  let tmp: string
  let project: string
  let agent: TestAgent
  /** The tarball's files, as `npm pack` listed them. */
  let packed: string[]
  let tarball: string
  /** What `npm install` of the tarball printed. */
  let install: Run
  /** package.json's modification time before `npm pack`. */
  let manifestTime: number

  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'pathwise-packaging-'))
    agent = await startAgent()
    manifestTime = statSync(path.join(root, 'package.json')).mtimeMs
    // runs `prepack` (the incremental build, then the published manifest) and `postpack`
    const pack = await succeed('npm', ['pack', '--json', '--pack-destination', tmp], root)
    const [result] = JSON.parse(npmJson(pack.stdout)) as { filename: string; files: { path: string }[] }[]
    packed = result.files.map((f) => f.path).sort()
    tarball = path.join(tmp, result.filename)
    project = path.join(tmp, 'project')
    await mkdir(project)
    await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'packaging-app', private: true }))
    // scripts allowed: the install must show that none exists to run
    install = await succeed('npm', ['install', tarball, '--no-audit', '--no-fund'], project)
    for (const file of ['app.mjs', 'app.cjs']) await copyFile(path.join(fixtures, file), path.join(project, file))
  })

  after(async () => {
    await agent?.close()
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true })
  })

  test(`installs at most ${MAX_PACKAGES} packages, none with an install script or native code`, async () => {
    const packages = await installedPackages(project)
    const names = packages.map((p) => p.name)
    assert.ok(names.includes('node_modules/pathwise'), names.join('\n'))
    assert.ok(packages.length <= MAX_PACKAGES, `${packages.length} packages installed:\n${names.join('\n')}`)
    const scripts: string[] = []
    const native: string[] = []
    for (const { name, dir } of packages) {
      const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> }
      for (const script of INSTALL_SCRIPTS) if (pkg.scripts?.[script] !== undefined) scripts.push(`${name}: ${script}: ${pkg.scripts[script]}`)
      if (existsSync(path.join(dir, 'binding.gyp'))) native.push(name)
    }
    assert.deepEqual(scripts, [], 'install scripts')
    assert.deepEqual(native, [], 'native addons (binding.gyp)')
  })

  test('the manifest shipped is package.json without its development fields, and npm pack leaves package.json as it was', async () => {
    const shipped = JSON.parse(await readFile(path.join(project, 'node_modules/pathwise/package.json'), 'utf8')) as Record<string, unknown>
    const development = Object.keys(shipped).filter((key) => DEVELOPMENT_ONLY.includes(key))
    assert.deepEqual(development, [], 'workspaces, scripts (prepack among them) and devDependencies ("pathwise": "file:.") stay home')
    const expected = Object.fromEntries(Object.entries(manifest).filter(([key]) => !DEVELOPMENT_ONLY.includes(key)))
    assert.deepEqual(shipped, expected, 'every other field as in package.json')
    assert.deepEqual(
      Object.keys(shipped).filter((key) => !CONSUMER_FIELDS.includes(key)),
      [],
      'fields no user of the package reads',
    )
    assert.equal(readFileSync(path.join(root, 'package.json'), 'utf8'), manifestText, 'package.json restored byte for byte')
    assert.equal(statSync(path.join(root, 'package.json')).mtimeMs, manifestTime, 'and with its time, which the build compares')
  })

  test('npm install of the tarball prints no warning (no lifecycle script for npm to hold back)', () => {
    const warnings = `${install.stdout}\n${install.stderr}`.split('\n').filter((line) => /^npm warn/i.test(line))
    assert.deepEqual(warnings, [], show(install))
  })

  // DSM on in every run: only the register entries may start the automatic instrumentation.
  const apps = [
    { args: ['app.mjs'], service: 'esm', auto: false },
    { args: ['app.cjs'], service: 'cjs', auto: false },
    { args: ['--import', 'pathwise/register', 'app.mjs'], service: 'esm-register', auto: true },
    { args: ['-r', 'pathwise/register', 'app.cjs'], service: 'cjs-register', auto: true },
  ]
  for (const app of apps) {
    test(`node ${app.args.join(' ')}: a checkpoint round trip, the Wasm core, stats delivered${app.auto ? ', the hook loaded' : ''}`, async () => {
      const r = await succeed(process.execPath, app.args, project, {
        DD_DATA_STREAMS_ENABLED: 'true',
        DD_SERVICE: app.service,
        DD_TRACE_AGENT_URL: agent.url,
      })
      const printed = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as unknown
      assert.deepEqual(
        printed,
        { version: manifest.version, context: true, header: true, decoded: true, edge: true, core: 'wasm', auto: app.auto ? app.service : null },
        show(r),
      )
      const services = agent.payloads.map((p) => p.Service)
      assert.ok(services.includes(app.service) && services.includes(`${app.service}-edge`), `payloads from: ${services.join(', ')}`)
    })
  }

  // The declaration files each setting must resolve, relative to node_modules/pathwise.
  const ESM_TYPES = ['dist/core.d.ts', 'dist/edge.d.ts', 'dist/index.d.ts']
  const typescript = [
    {
      label: 'a CommonJS package, module node16',
      type: 'commonjs',
      check: 'check-cjs.ts',
      options: { module: 'node16' },
      // require() gets the CommonJS types (ES module types there were TS1479); import() the ES module's
      types: ['dist/core.d.cts', 'dist/edge.d.ts', 'dist/index.d.cts'],
    },
    { label: 'an ES module package, module node16', type: 'module', check: 'check-esm.ts', options: { module: 'node16' }, types: ESM_TYPES },
    { label: 'an ES module package, module nodenext', type: 'module', check: 'check-esm.ts', options: { module: 'nodenext' }, types: ESM_TYPES },
    {
      label: 'moduleResolution bundler, module esnext',
      type: 'module',
      check: 'check-esm.ts',
      options: { module: 'esnext', moduleResolution: 'bundler' },
      types: ESM_TYPES,
    },
  ]
  for (const [i, ts] of typescript.entries()) {
    test(`tsc, strict, declarations checked: ${ts.label}`, async () => {
      const dir = path.join(project, `typescript-${i}`)
      await mkdir(dir)
      await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: `typescript-${i}`, private: true, type: ts.type }))
      await copyFile(path.join(fixtures, ts.check), path.join(dir, 'check.ts'))
      // target: the default (ES5) has no Promise.all; lib: the default, with the DOM's WebAssembly
      const compilerOptions = { ...ts.options, target: 'es2022', strict: true, noEmit: true, skipLibCheck: false, types: [], listFiles: true }
      await writeFile(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['check.ts'] }))
      const r = await succeed(process.execPath, [TSC, '-p', '.'], dir)
      const pathwise = path.join(project, 'node_modules/pathwise')
      const resolved = r.stdout
        .split('\n')
        .filter((file) => file.startsWith(pathwise))
        .map((file) => path.relative(pathwise, file))
        .sort()
      assert.deepEqual(resolved, ts.types, show(r))
    })
  }

  test('npx pathwise agent, the agent not installed: exits non-zero with the command that installs it', async () => {
    // --no: never fetch a `pathwise` from the registry, only run the installed bin
    const r = await run('npx', ['--no', '--', 'pathwise', 'agent'], project)
    assert.equal(r.code, 1, show(r))
    const commands = `${r.stdout}${r.stderr}`.split('\n').filter((line) => line.includes('npm install'))
    assert.deepEqual(
      commands.map((line) => line.trim()),
      ['npm install @pathwise/agent'],
      show(r),
    )
  })

  test('npx pathwise --version prints the version', async () => {
    const r = await succeed('npx', ['--no', '--', 'pathwise', '--version'], project)
    assert.equal(r.stdout, `${manifest.version}\n`, show(r))
  })

  test('npm publish --dry-run of the tarball uploads what it holds: package.json, the README and dist/, every entry point among them', async () => {
    // a dry run needs no login: npm only warns that publishing would
    const r = await succeed('npm', ['publish', '--dry-run', '--json', tarball], root)
    const files = ((JSON.parse(npmJson(r.stdout)) as Record<string, { files: { path: string }[] }>).pathwise?.files ?? []).map((f) => f.path).sort()
    assert.deepEqual(files, packed, 'publish and pack list the same files')
    const allowed = (file: string) => file === 'package.json' || file === 'README.md' || file.startsWith('LICENSE') || file.startsWith('dist/')
    assert.deepEqual(
      files.filter((file) => !allowed(file)),
      [],
      'only package.json, README.md, LICENSE* and dist/',
    )
    // neither compiled tests nor sources (nor their maps) inside dist/: only the bundles, their maps and declarations, the Wasm
    assert.deepEqual(
      files.filter((file) => /(^|\/)(agent|ui|bench|test|assembly|bindings|scripts)\/|\.test\.|(?<!\.d)\.[cm]?ts$/.test(file)),
      [],
      'tests, sources, the agent, benchmarks',
    )
    const targets = [manifest.main, manifest.module, manifest.types, ...exportTargets(manifest.exports), ...Object.values(manifest.bin)].map(packedPath)
    assert.deepEqual(
      targets.filter((target) => !files.includes(target)),
      [],
      'main, module, types, exports and bin targets missing from the package',
    )
  })

  test('npm publish of the directory is refused, saying to publish the tarball (npm would send the development manifest)', async () => {
    const r = await run('npm', ['publish', '--dry-run'], root)
    assert.notEqual(r.code, 0, show(r))
    assert.match(r.stderr, /publish the packed tarball/, show(r))
    assert.equal(readFileSync(path.join(root, 'package.json'), 'utf8'), manifestText, 'package.json untouched')
  })
})
