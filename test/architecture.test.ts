/**
 * scripts/architecture.mjs: the repository's sources hold no import cycle between files (type-only
 * imports included), and the script itself on small trees written for the test: a cycle closed by
 * a type-only import is found, every import form is an edge, an acyclic tree passes, a cycle between
 * folders fails only `--check-folders`, and functions are counted and measured as its header says.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const script = path.join(root, 'scripts/architecture.mjs')
const temp = mkdtempSync(path.join(tmpdir(), 'pathwise-architecture-'))
after(() => rmSync(temp, { recursive: true, force: true }))

interface Edge {
  from: string
  to: string
  typeOnly: boolean
}
interface Result {
  functions: { count: number; p50: number; p90: number; max: number; longest: { name: string; file: string; line: number; lines: number }[] }
  files: { count: number }
  folders: { folder: string; files: number; lines: number }[]
  fileCycles: { files: string[]; edges: Edge[] }[]
  folderCycles: { folders: string[] }[]
  generated: string[]
}

function run(...args: string[]) {
  const done = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' })
  return { status: done.status, stdout: done.stdout, stderr: done.stderr }
}

/** Writes a tree of files (path → text) under a new folder of the temp dir, and returns the folder. */
function tree(name: string, files: Record<string, string>): string {
  const dir = path.join(temp, name)
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true })
    writeFileSync(path.join(dir, file), text)
  }
  return dir
}

function measure(dir: string): Result {
  const done = run('--json', '--root', dir, 'src')
  assert.equal(done.status, 0, done.stderr)
  return JSON.parse(done.stdout) as Result
}

test('the repository has no import cycle between files or between folders, type-only imports included', () => {
  const done = run('--check', '--check-folders')
  const cycles = done.stdout.slice(done.stdout.indexOf('Import cycles between files'))
  assert.equal(done.status, 0, `scripts/architecture.mjs --check --check-folders failed:\n${cycles}\n${done.stderr}`)
})

describe('the script on small trees', () => {
  test('finds a two-file cycle closed by a type-only import, and --check fails on it', () => {
    const dir = tree('two-file-cycle', {
      'src/a.ts': "import type { B } from './b.js'\nexport const a = (b: B) => b + 1\n",
      'src/b.ts': "import { a } from './a.js'\nexport type B = number\nexport const b: B = a(1)\n",
    })
    assert.deepEqual(measure(dir).fileCycles, [
      {
        files: ['src/a.ts', 'src/b.ts'],
        edges: [
          { from: 'src/a.ts', to: 'src/b.ts', typeOnly: true },
          { from: 'src/b.ts', to: 'src/a.ts', typeOnly: false },
        ],
      },
    ])
    const checked = run('--check', '--root', dir, 'src')
    assert.equal(checked.status, 1)
    assert.match(checked.stdout, /1\. 2 files: src\/a\.ts, src\/b\.ts/)
    assert.match(checked.stdout, /src\/a\.ts → src\/b\.ts \(type only\)/)
  })

  test('every import form is an edge: a ring through each of them is one cycle', () => {
    const dir = tree('every-form', {
      'src/a.ts': "import { type B } from './b.js'\nexport type A = B\n",
      'src/b.ts': "export { c as B } from './c'\n",
      'src/c.ts': "export const c = async () => (await import('./d.js')).d\n",
      'src/d.ts': "export type D = import('./e.cjs').E\nexport const d = 1\n",
      'src/e.cts': "import f = require('./sub')\nexport type E = typeof f\n",
      'src/sub/index.ts': "export * from '../g.mjs'\n",
      'src/g.mts': "export type { A } from './a.js'\n",
    })
    const { fileCycles, folderCycles } = measure(dir)
    assert.deepEqual(
      fileCycles.map((c) => c.files),
      [['src/a.ts', 'src/b.ts', 'src/c.ts', 'src/d.ts', 'src/e.cts', 'src/g.mts', 'src/sub/index.ts']],
    )
    assert.deepEqual(
      fileCycles[0].edges.filter((e) => e.typeOnly).map((e) => e.from),
      ['src/a.ts', 'src/d.ts', 'src/g.mts'],
    )
    assert.deepEqual(
      folderCycles.map((c) => c.folders),
      [['src', 'src/sub']],
    )
  })

  test('an acyclic tree passes both checks; functions are counted as the header says; tests and generated files are left out', () => {
    const dir = tree('acyclic', {
      'src/index.ts': "import { five } from './lib/five.js'\nimport type { Six } from './lib/six.js'\nexport const run = (s: Six) => five() + s.six()\n",
      'src/lib/five.ts': [
        "import { one } from './one.js'",
        '/** Five lines from its first token to its closing brace; the comment above is not counted. */',
        'export function five() {',
        '  const x = one()',
        '  return [x].map((y) => y + 1)[0]',
        '  // fourth line',
        '}',
        '',
      ].join('\n'),
      'src/lib/one.ts': 'export const one = () => 1\n',
      'src/lib/six.ts': 'export class Six {\n  six(): number {\n    return 6\n  }\n}\n',
      'src/lib/five.test.ts': "import { five } from './five.js'\nimport { run } from '../index.js'\nfunction longTest() {\n\n\n\n\n\n\n\n}\n",
      'src/lib/made.ts': '// Generated by hand for this test: do not edit.\nfunction longGenerated() {\n\n\n\n\n\n\n\n}\n',
    })
    const result = measure(dir)
    assert.deepEqual(result.fileCycles, [])
    assert.deepEqual(result.folderCycles, [])
    assert.deepEqual(result.generated, ['src/lib/made.ts'])
    assert.equal(result.files.count, 4)
    assert.deepEqual(result.folders, [
      { folder: 'src', files: 1, lines: 3 },
      { folder: 'src/lib', files: 3, lines: 13 },
    ])
    assert.deepEqual(
      result.functions.longest.map((f) => [f.name, f.file, f.line, f.lines]),
      [
        ['five', 'src/lib/five.ts', 3, 5],
        ['Six.six', 'src/lib/six.ts', 2, 3],
        ['run', 'src/index.ts', 3, 1],
        ['<arrow passed to [x].map in five>', 'src/lib/five.ts', 5, 1],
        ['one', 'src/lib/one.ts', 1, 1],
      ],
    )
    assert.deepEqual([result.functions.count, result.functions.p50, result.functions.p90, result.functions.max], [5, 1, 5, 5])

    const checked = run('--check', '--check-folders', '--top', '2', '--root', dir, 'src')
    assert.equal(checked.status, 0, checked.stdout + checked.stderr)
    const longest = checked.stdout.split('The 2 longest:\n')[1].split('\n\n')[0].split('\n')
    assert.deepEqual(longest, ['     5  five  src/lib/five.ts:3', '     3  Six.six  src/lib/six.ts:2'])
    assert.match(checked.stdout, /Import cycles between files \(type-only imports included\): none/)
  })

  test('a cycle between folders with none between files fails --check-folders only', () => {
    const dir = tree('folder-cycle', {
      'src/x/a.ts': "import { b } from '../y/b.js'\nexport const a = b\n",
      'src/x/d.ts': 'export const d = 1\n',
      'src/y/b.ts': 'export const b = 2\n',
      'src/y/c.ts': "import { d } from '../x/d.js'\nexport const c = d\n",
    })
    assert.equal(run('--check', '--root', dir, 'src').status, 0)
    const checked = run('--check-folders', '--root', dir, 'src')
    assert.equal(checked.status, 1)
    assert.match(checked.stdout, /1\. 2 folders: src\/x, src\/y/)
    assert.match(checked.stdout, /src\/y → src\/x by 1 import: src\/y\/c\.ts → src\/x\/d\.ts/)
  })
})
