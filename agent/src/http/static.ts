import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The page's files: `ui/` (src/ui/, copied to dist/ui/ by the build), and the browser builds of the
 * layout and chart libraries straight from their installed packages (no CDN: agents often run
 * offline; no bundler). Only the paths listed here are served, so no request can reach another file.
 */

const require = createRequire(import.meta.url)
// Built, this module is bundled into dist/, beside dist/ui/; from source it is src/http/static.ts.
const uiDir = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '../ui/' : './ui/', import.meta.url))
const dagreDist = dirname(require.resolve('@dagrejs/dagre'))
const uplotDist = dirname(require.resolve('uplot'))

const JS = 'text/javascript; charset=utf-8'
const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: join(uiDir, 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: join(uiDir, 'app.js'), type: JS },
  '/map.js': { file: join(uiDir, 'map.js'), type: JS },
  '/map-layout.js': { file: join(uiDir, 'map-layout.js'), type: JS },
  '/transactions.js': { file: join(uiDir, 'transactions.js'), type: JS },
  '/style.css': { file: join(uiDir, 'style.css'), type: 'text/css; charset=utf-8' },
  '/vendor/dagre.js': { file: join(dagreDist, 'dagre.esm.js'), type: JS },
  '/vendor/uplot.js': { file: join(uplotDist, 'uPlot.esm.js'), type: JS },
  '/vendor/uplot.css': { file: join(uplotDist, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
}

const cache = new Map<string, Buffer>()

/** The file served at `pathname`, or null when there is none. */
export async function staticFile(pathname: string): Promise<{ body: Buffer; type: string } | null> {
  const entry = FILES[pathname === '/index.html' ? '/' : pathname]
  if (!entry) return null
  let body = cache.get(entry.file)
  if (!body) {
    body = await readFile(entry.file)
    cache.set(entry.file, body)
  }
  return { body, type: entry.type }
}
