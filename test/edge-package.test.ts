/**
 * The built package as the runtimes see it: dist/edge.js is one self-contained ES module with
 * nothing from Node in it (workerd resolves no packages and has no Node built-ins), the Wasm
 * core it embeds is the one shipped as dist/pathwise.wasm, and the `exports` map resolves
 * `pathwise` to the edge build under workerd/browser/Deno conditions and to the Node build in
 * Node and Bun, checked with Node's resolver and in Deno and Bun themselves.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const bin = (name: string) => path.join(root, 'node_modules', '.bin', name)
const SPECIFIERS = ['pathwise', 'pathwise/edge', 'pathwise/pathwise.wasm']
/** Prints where each specifier resolves, one line each, in Node, Deno and Bun alike. */
const RESOLVE = `for (const s of ${JSON.stringify(SPECIFIERS)}) console.log(import.meta.resolve(s))`

/** The resolved files, relative to the package root. */
function relative(output: string): string[] {
  return output
    .trim()
    .split('\n')
    .map((url) => path.relative(root, fileURLToPath(url)))
}

describe('dist/edge.js', () => {
  let code: string
  before(() => {
    assert.ok(existsSync(path.join(root, 'dist/edge.js')), 'dist/ is missing: npm run build')
    code = readFileSync(path.join(root, 'dist/edge.js'), 'utf8')
  })

  test('is self-contained: it imports nothing, so workerd can load it as one module', () => {
    assert.doesNotMatch(code, /^\s*import[\s{*]/m, 'static import')
    assert.doesNotMatch(code, /\bimport\s*\(/, 'dynamic import')
    assert.doesNotMatch(code, /^\s*export\s[^;]*\bfrom\s*["']/m, 're-export of another module')
  })

  test('uses nothing of Node: no node: modules, require, process, Buffer or file paths', () => {
    assert.doesNotMatch(code, /["'`]node:/)
    assert.doesNotMatch(code, /\brequire\s*\(/)
    assert.doesNotMatch(code, /\bprocess\s*[.[]/)
    assert.doesNotMatch(code, /\bBuffer\b/)
    assert.doesNotMatch(code, /\b__(dirname|filename)\b|\bimport\.meta\b/)
  })

  test('embeds the Wasm core that is shipped as dist/pathwise.wasm', () => {
    const embedded = /MODULE_BASE64 =\s*["']([A-Za-z0-9+/=]+)["']/.exec(code)
    assert.ok(embedded, 'no embedded Wasm bytes')
    const shipped = readFileSync(path.join(root, 'dist/pathwise.wasm'))
    assert.deepEqual(shipped, readFileSync(path.join(root, 'build/pathwise.wasm')))
    assert.equal(embedded[1], shipped.toString('base64'))
    assert.ok(WebAssembly.validate(shipped))
  })
})

describe('package exports', () => {
  // A project that depends on pathwise, as Deno and Bun find it: node_modules/pathwise.
  let project: string
  before(async () => {
    project = await mkdtemp(path.join(tmpdir(), 'pathwise-exports-'))
    await mkdir(path.join(project, 'node_modules'))
    await symlink(root, path.join(project, 'node_modules', 'pathwise'), 'dir')
    await writeFile(path.join(project, 'package.json'), JSON.stringify({ type: 'module', dependencies: { pathwise: '*' } }))
    await writeFile(path.join(project, 'resolve.js'), RESOLVE)
  })
  after(() => rm(project, { recursive: true, force: true }))

  const node = (conditions: string[]) =>
    relative(
      execFileSync(process.execPath, [...conditions.map((c) => `--conditions=${c}`), 'resolve.js'], { cwd: project, encoding: 'utf8' }),
    )

  test('Node: the Node build for import and require; pathwise/edge and the .wasm are there', () => {
    assert.deepEqual(node([]), ['dist/index.js', 'dist/edge.js', 'dist/pathwise.wasm'])
    const required = execFileSync(process.execPath, ['-p', "require.resolve('pathwise')"], { cwd: project, encoding: 'utf8' })
    assert.equal(path.relative(root, required.trim()), 'dist/index.cjs')
  })

  // Node's resolver with a bundler's conditions: wrangler bundles Workers with workerd, worker, browser.
  for (const condition of ['workerd', 'worker', 'browser', 'edge-light', 'deno']) {
    test(`the "${condition}" condition gets the edge build`, () => {
      assert.deepEqual(node([condition]), ['dist/edge.js', 'dist/edge.js', 'dist/pathwise.wasm'])
    })
  }

  test('Deno resolves pathwise to the edge build', () => {
    const output = execFileSync(bin('deno'), ['run', '--no-lock', '--no-remote', '--no-prompt', `--allow-read=${project},${root}`, 'resolve.js'], {
      cwd: project,
      encoding: 'utf8',
      env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
    })
    assert.deepEqual(relative(output), ['dist/edge.js', 'dist/edge.js', 'dist/pathwise.wasm'])
  })

  test('Bun resolves pathwise to the Node build', () => {
    const output = execFileSync(bin('bun'), ['--no-install', '--no-env-file', 'resolve.js'], {
      cwd: project,
      encoding: 'utf8',
      env: { ...process.env, DO_NOT_TRACK: '1', NO_COLOR: '1' },
    })
    assert.deepEqual(relative(output), ['dist/index.js', 'dist/edge.js', 'dist/pathwise.wasm'])
  })
})
