// The layout's vital signs, measured the way issue 20 found them: the longest functions and the
// spread of function length, files per folder and the longest files, and every import cycle between
// files and between folders. `node scripts/architecture.mjs [--top N] [--files N] [--check]
// [--check-folders] [--json] [--root DIR] [tree...]`; the trees default to bindings/, assembly/ and
// agent/src/ under the repository. `--check` exits 1 on any cycle between files, `--check-folders`
// on any cycle between folders.
//
// What it reads: every .ts/.mts/.cts/.js/.mjs/.cjs file under the trees except declaration files,
// tests (*.test.*, *.bench.*, test/ and bench/ folders) and generated files (those whose opening
// says "Generated ... do not edit").
//
// How it counts a function: every function declaration, method, constructor, getter, setter, arrow
// function and function expression that has a body, one-liners and callbacks included, each on its
// own (an outer function's lines include those nested in it). Its length is the lines from its first
// token (after any comment above it) to its closing token, both included. Percentiles are
// nearest-rank.
//
// How it finds cycles: an import is an edge from the importing file to the file a relative
// specifier names (`./x.js` is ./x.ts when that is the source; a folder means its index file);
// package and absolute specifiers are not edges. Every form counts, type-only included: `import`,
// `import type`, `import { type X }`, `export ... from`, `import x = require()`, `require()`,
// dynamic `import()` and `import('./x').T` in a type. A file cycle is a strongly connected
// component of that graph with more than one file (or a file importing itself). The folder graph
// has an edge from folder A to folder B for each file directly in A importing a file directly in B,
// whatever A and B are to each other (siblings, parent and child, cousins): a folder importing its
// subfolders is an edge like any other, and becomes a cycle only when something under it imports
// back up. A folder cycle is a strongly connected component of that graph with more than one folder.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import ts from 'typescript'

const SOURCE = /\.(ts|mts|cts|js|mjs|cjs)$/
const NOT_SOURCE = /\.d\.[mc]?ts$|\.(test|bench)\.[mc]?[tj]s$/
const SKIPPED_FOLDERS = new Set(['node_modules', 'dist', 'test', 'tests', '__tests__', 'bench'])
const GENERATED = /\bgenerated\b[^\n]*\bdo not edit\b/i
/** What a specifier written for the emitted code may stand for in the sources. */
const SOURCE_OF = { '.js': ['.ts', '.tsx', '.js'], '.mjs': ['.mts', '.mjs'], '.cjs': ['.cts', '.cjs'], '.jsx': ['.tsx', '.jsx'] }
const EXTENSIONS = ['.ts', '.tsx', '.mts', '.cts', '.js', '.mjs', '.cjs']
const FUNCTION_KINDS = new Set([
  ts.SyntaxKind.FunctionDeclaration,
  ts.SyntaxKind.MethodDeclaration,
  ts.SyntaxKind.Constructor,
  ts.SyntaxKind.GetAccessor,
  ts.SyntaxKind.SetAccessor,
  ts.SyntaxKind.ArrowFunction,
  ts.SyntaxKind.FunctionExpression,
])

function options() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '15' },
      files: { type: 'string', default: '10' },
      check: { type: 'boolean', default: false },
      'check-folders': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      root: { type: 'string', default: fileURLToPath(new URL('..', import.meta.url)) },
    },
  })
  const count = (name) => {
    const n = Number(values[name])
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} takes a whole number, not ${values[name]}`)
    return n
  }
  const root = resolve(values.root)
  const trees = positionals.length > 0 ? positionals : ['bindings', 'assembly', 'agent/src']
  return { ...values, root, trees, top: count('top'), files: count('files') }
}

/** Source files under the trees (paths relative to root, with '/'), and the generated ones left out. */
function sourceFiles(root, trees) {
  const files = []
  const generated = []
  const walk = (dir) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = dir === '' ? entry.name : `${dir}/${entry.name}`
      if (entry.isDirectory()) {
        if (!SKIPPED_FOLDERS.has(entry.name)) walk(path)
      } else if (entry.isFile() && SOURCE.test(entry.name) && !NOT_SOURCE.test(entry.name)) {
        const text = readFileSync(join(root, path), 'utf8')
        if (GENERATED.test(text.slice(0, 400))) generated.push(path)
        else files.push({ path, text })
      }
    }
  }
  for (const tree of trees) {
    const dir = relative(root, resolve(root, tree)).split(sep).join('/')
    if (statSync(join(root, dir), { throwIfNoEntry: false })?.isDirectory()) walk(dir)
  }
  return { files: files.sort((a, b) => a.path.localeCompare(b.path)), generated: generated.sort() }
}

function parse(file) {
  const kind = /\.[mc]?js$/.test(file.path) ? ts.ScriptKind.JS : ts.ScriptKind.TS
  return ts.createSourceFile(file.path, file.text, ts.ScriptTarget.Latest, true, kind)
}

function lineOf(source, position) {
  return source.getLineAndCharacterOfPosition(position).line + 1
}

function lineCount(text) {
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
}

function nameText(name) {
  return name && (ts.isIdentifier(name) || ts.isPrivateIdentifier(name) || ts.isStringLiteral(name) || ts.isNumericLiteral(name))
    ? name.text
    : name
      ? `[${name.getText()}]`
      : undefined
}

/** What holds a class or object member: the class's name, or what the object literal is given to. */
function ownerOf(member) {
  const holder = member.parent
  if (ts.isClassLike(holder)) return holder.name?.text ?? '<class>'
  if (ts.isObjectLiteralExpression(holder)) return assignedName(holder)
  return undefined
}

/** The name a value is given where it is written: a variable, a property, an assignment's target. */
function assignedName(node) {
  const parent = node.parent
  if (ts.isVariableDeclaration(parent) && parent.initializer === node) return nameText(parent.name)
  if ((ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) && parent.initializer === node) {
    const owner = ownerOf(parent)
    return owner ? `${owner}.${nameText(parent.name)}` : nameText(parent.name)
  }
  if (ts.isBinaryExpression(parent) && parent.right === node && parent.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
    return parent.left.getText()
  }
  if (ts.isExportAssignment(parent)) return 'default'
  if (ts.isParenthesizedExpression(parent) || ts.isAsExpression(parent) || ts.isSatisfiesExpression(parent)) return assignedName(parent)
  return undefined
}

function enclosingFunctionName(node) {
  for (let at = node.parent; at; at = at.parent) {
    if (FUNCTION_KINDS.has(at.kind) && at.body) return functionName(at)
  }
  return undefined
}

function functionName(node) {
  if (ts.isFunctionDeclaration(node)) return node.name?.text ?? 'default'
  if (ts.isConstructorDeclaration(node)) return `${ownerOf(node)}.constructor`
  if (ts.isMethodDeclaration(node) || ts.isAccessor(node)) {
    const prefix = ts.isGetAccessor(node) ? 'get ' : ts.isSetAccessor(node) ? 'set ' : ''
    const owner = ownerOf(node)
    return `${prefix}${owner ? `${owner}.` : ''}${nameText(node.name)}`
  }
  const own = (ts.isFunctionExpression(node) && node.name?.text) || assignedName(node)
  if (own) return own
  const what = ts.isArrowFunction(node) ? 'arrow' : 'function'
  const call = node.parent
  const callee = ts.isCallExpression(call) || ts.isNewExpression(call) ? call.expression.getText().split('\n')[0] : undefined
  const outer = enclosingFunctionName(node)
  return `<${what}${callee ? ` passed to ${callee}` : ''}${outer ? ` in ${outer}` : ''}>`
}

function functionsOf(source, path) {
  const found = []
  const visit = (node) => {
    if (FUNCTION_KINDS.has(node.kind) && node.body) {
      const line = lineOf(source, node.getStart(source))
      found.push({ name: functionName(node), file: path, line, lines: lineOf(source, node.end) - line + 1 })
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

/** Every module specifier the file names, with how it names it. */
function importsOf(source) {
  const found = []
  const add = (specifier, kind) => {
    if (specifier && ts.isStringLiteralLike(specifier)) found.push({ specifier: specifier.text, kind })
  }
  const allTypes = (elements) => elements.length > 0 && elements.every((e) => e.isTypeOnly)
  const visit = (node) => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause
      const bindings = clause?.namedBindings
      const typeOnly =
        clause !== undefined && (clause.isTypeOnly || (!clause.name && bindings !== undefined && ts.isNamedImports(bindings) && allTypes(bindings.elements)))
      add(node.moduleSpecifier, typeOnly ? 'type' : 'static')
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      const clause = node.exportClause
      const typeOnly = node.isTypeOnly || (clause !== undefined && ts.isNamedExports(clause) && allTypes(clause.elements))
      add(node.moduleSpecifier, typeOnly ? 'type' : 'static')
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly ? 'type' : 'static')
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal, 'type')
    } else if (ts.isCallExpression(node) && node.arguments.length >= 1) {
      if (node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0], 'dynamic')
      else if (ts.isIdentifier(node.expression) && node.expression.text === 'require') add(node.arguments[0], 'require')
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

/** The analysed file a relative specifier names, or undefined (a package, or a file not analysed). */
function resolveSpecifier(from, specifier, known) {
  if (!specifier.startsWith('./') && !specifier.startsWith('../') && specifier !== '.' && specifier !== '..') return undefined
  const base = join(dirname(from), specifier).split(sep).join('/')
  const candidates = [base]
  const extension = Object.keys(SOURCE_OF).find((e) => base.endsWith(e))
  if (extension) candidates.push(...SOURCE_OF[extension].map((e) => base.slice(0, -extension.length) + e))
  candidates.push(...EXTENSIONS.map((e) => base + e), ...EXTENSIONS.map((e) => `${base}/index${e}`))
  return candidates.find((c) => known.has(c))
}

/** Tarjan's strongly connected components of a graph given as Map<node, Set<node>>, iteratively. */
function stronglyConnected(graph) {
  const index = new Map()
  const low = new Map()
  const onStack = new Set()
  const stack = []
  const components = []
  let next = 0
  for (const start of graph.keys()) {
    if (index.has(start)) continue
    const work = [{ node: start, edges: [...graph.get(start)], at: 0 }]
    index.set(start, next)
    low.set(start, next++)
    stack.push(start)
    onStack.add(start)
    while (work.length > 0) {
      const frame = work[work.length - 1]
      if (frame.at < frame.edges.length) {
        const to = frame.edges[frame.at++]
        if (!index.has(to)) {
          index.set(to, next)
          low.set(to, next++)
          stack.push(to)
          onStack.add(to)
          work.push({ node: to, edges: [...(graph.get(to) ?? [])], at: 0 })
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node), index.get(to)))
        }
        continue
      }
      work.pop()
      if (work.length > 0) {
        const parent = work[work.length - 1].node
        low.set(parent, Math.min(low.get(parent), low.get(frame.node)))
      }
      if (low.get(frame.node) === index.get(frame.node)) {
        const component = []
        let member
        do {
          member = stack.pop()
          onStack.delete(member)
          component.push(member)
        } while (member !== frame.node)
        components.push(component.sort())
      }
    }
  }
  return components
}

function cyclesOf(graph) {
  return stronglyConnected(graph)
    .filter((c) => c.length > 1 || graph.get(c[0])?.has(c[0]))
    .sort((a, b) => b.length - a.length || a[0].localeCompare(b[0]))
}

function folderOf(path) {
  const at = path.lastIndexOf('/')
  return at < 0 ? '.' : path.slice(0, at)
}

function percentile(sorted, p) {
  return sorted.length === 0 ? 0 : sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]
}

function measure({ root, trees }) {
  const { files, generated } = sourceFiles(root, trees)
  const known = new Set(files.map((f) => f.path))
  const functions = []
  /** from → to → the kinds of import between them */
  const imports = new Map()
  const fileLines = []
  for (const file of files) {
    const source = parse(file)
    functions.push(...functionsOf(source, file.path))
    fileLines.push({ file: file.path, lines: lineCount(file.text) })
    const edges = new Map()
    for (const { specifier, kind } of importsOf(source)) {
      const to = resolveSpecifier(file.path, specifier, known)
      if (to === undefined) continue
      if (!edges.has(to)) edges.set(to, new Set())
      edges.get(to).add(kind)
    }
    imports.set(file.path, edges)
  }

  const fileGraph = new Map([...imports].map(([from, edges]) => [from, new Set(edges.keys())]))
  const edgeOf = (from, to) => ({ from, to, typeOnly: [...imports.get(from).get(to)].every((k) => k === 'type') })
  const fileCycles = cyclesOf(fileGraph).map((members) => {
    const inside = new Set(members)
    const edges = members.flatMap((from) => [...fileGraph.get(from)].filter((to) => inside.has(to)).map((to) => edgeOf(from, to)))
    return { files: members, edges }
  })

  const folderGraph = new Map()
  /** "A\0B" → the file imports that make the folder edge A → B */
  const folderEdges = new Map()
  for (const [from, edges] of fileGraph) {
    const a = folderOf(from)
    if (!folderGraph.has(a)) folderGraph.set(a, new Set())
    for (const to of edges) {
      const b = folderOf(to)
      if (a === b) continue
      folderGraph.get(a).add(b)
      const key = `${a}\0${b}`
      if (!folderEdges.has(key)) folderEdges.set(key, [])
      folderEdges.get(key).push(edgeOf(from, to))
    }
  }
  const folderCycles = cyclesOf(folderGraph).map((members) => {
    const inside = new Set(members)
    const edges = members.flatMap((a) =>
      [...folderGraph.get(a)].filter((b) => inside.has(b)).map((b) => ({ from: a, to: b, imports: folderEdges.get(`${a}\0${b}`) })),
    )
    return { folders: members, edges }
  })

  const perFolder = new Map()
  for (const { file, lines } of fileLines) {
    const folder = folderOf(file)
    const entry = perFolder.get(folder) ?? { folder, files: 0, lines: 0 }
    entry.files++
    entry.lines += lines
    perFolder.set(folder, entry)
  }
  const lengths = functions.map((f) => f.lines).sort((a, b) => a - b)
  const byLength = (a, b) => b.lines - a.lines || a.file.localeCompare(b.file) || (a.line ?? 0) - (b.line ?? 0)
  return {
    root,
    trees,
    generated,
    functions: {
      count: functions.length,
      p50: percentile(lengths, 0.5),
      p90: percentile(lengths, 0.9),
      max: lengths.at(-1) ?? 0,
      longest: functions.sort(byLength),
    },
    files: { count: files.length, longest: fileLines.sort(byLength) },
    folders: [...perFolder.values()].sort((a, b) => a.folder.localeCompare(b.folder)),
    fileCycles,
    folderCycles,
  }
}

function report(result, { top, files: topFiles }) {
  const out = []
  const { functions, files, folders, fileCycles, folderCycles } = result
  const arrow = (e) => `${e.from} → ${e.to}${e.typeOnly ? ' (type only)' : ''}`
  out.push(`Trees: ${result.trees.join(', ')}; ${files.count} source files in ${folders.length} folder${folders.length === 1 ? '' : 's'}`)
  if (result.generated.length > 0) out.push(`Left out as generated: ${result.generated.join(', ')}`)
  out.push('', `Functions: ${functions.count}; lines p50 ${functions.p50}, p90 ${functions.p90}, max ${functions.max}`)
  out.push(`The ${Math.min(top, functions.count)} longest:`)
  for (const f of functions.longest.slice(0, top)) out.push(`  ${String(f.lines).padStart(4)}  ${f.name}  ${f.file}:${f.line}`)
  out.push('', 'Files per folder (files, lines):')
  const width = Math.max(0, ...folders.map((f) => f.folder.length))
  for (const f of folders) out.push(`  ${f.folder.padEnd(width)}  ${String(f.files).padStart(3)}  ${String(f.lines).padStart(6)}`)
  out.push(`The ${Math.min(topFiles, files.count)} longest files:`)
  for (const f of files.longest.slice(0, topFiles)) out.push(`  ${String(f.lines).padStart(4)}  ${f.file}`)
  out.push('', `Import cycles between files (type-only imports included): ${fileCycles.length === 0 ? 'none' : fileCycles.length}`)
  fileCycles.forEach((c, i) => {
    out.push(`  ${i + 1}. ${c.files.length} files: ${c.files.join(', ')}`)
    for (const e of c.edges) out.push(`       ${arrow(e)}`)
  })
  out.push('', `Import cycles between folders: ${folderCycles.length === 0 ? 'none' : folderCycles.length}`)
  folderCycles.forEach((c, i) => {
    out.push(`  ${i + 1}. ${c.folders.length} folders: ${c.folders.join(', ')}`)
    for (const e of c.edges) {
      const shown = e.imports.slice(0, 3).map(arrow).join('; ')
      const more = e.imports.length > 3 ? `; and ${e.imports.length - 3} more` : ''
      out.push(`       ${e.from} → ${e.to} by ${e.imports.length} import${e.imports.length === 1 ? '' : 's'}: ${shown}${more}`)
    }
  })
  return out.join('\n')
}

const opts = options()
const result = measure(opts)
console.log(opts.json ? JSON.stringify(result, null, 2) : report(result, opts))
const failed = (opts.check && result.fileCycles.length > 0) || (opts['check-folders'] && result.folderCycles.length > 0)
if (opts.check || opts['check-folders']) {
  const what = [opts.check && 'files', opts['check-folders'] && 'folders'].filter(Boolean).join(' or ')
  console.error(failed ? `Check failed: an import cycle between ${what}.` : `Check passed: no import cycle between ${what}.`)
}
process.exitCode = failed ? 1 : 0
