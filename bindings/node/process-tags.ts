import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'

/**
 * The process tags a Node process can state, as dd-trace-js 6.21 computes them (process-tags/index.js)
 * and sends them as `ProcessTags` (dd-trace-go sends its own under the same keys): the entrypoint
 * script's directory base name and name without extension, `entrypoint.type:script`, the working
 * directory's base name and the application's package.json name, and the service's origin, sorted
 * by key. Computed once a process: none of them changes.
 */

/** Longest value kept: the Datadog Agent normalizes tags to 200 characters. */
const MAX_VALUE = 200

let cached: readonly string[] | undefined

/**
 * The process's tags, then `svc.user:true` where the service was given (option or DD_SERVICE) or
 * `svc.auto:<service>` where it is the default. Never throws.
 */
export function processTags(service: string, serviceGiven: boolean): string[] {
  if (cached === undefined) {
    try {
      cached = collect()
    } catch {
      cached = []
    }
  }
  return [...cached, serviceGiven ? 'svc.user:true' : `svc.auto:${sanitize(service)}`]
}

function collect(): string[] {
  const entry = entrypoint()
  const workdir = path.basename(process.cwd())
  const pairs: Array<[string, string | undefined]> = [
    ['entrypoint.basedir', entry === undefined ? undefined : path.basename(path.dirname(entry))],
    ['entrypoint.name', entry === undefined ? undefined : path.basename(entry, path.extname(entry))],
    ['entrypoint.type', 'script'],
    ['entrypoint.workdir', workdir],
    ['package.json.name', packageName(entry === undefined ? process.cwd() : path.dirname(entry))],
  ]
  return pairs.flatMap(([key, value]) => (value ? [`${key}:${sanitize(value)}`] : []))
}

/** The script node was started with (require.main's file in CommonJS, argv[1] under ESM too). */
function entrypoint(): string | undefined {
  const script = process.argv[1]
  return typeof script === 'string' && script !== '' ? path.resolve(script) : undefined
}

/** The name in the nearest package.json at or above `dir`, as dd-trace-js finds the application's. */
function packageName(dir: string): string | undefined {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const file = path.join(current, 'package.json')
    if (existsSync(file)) {
      try {
        const name: unknown = JSON.parse(readFileSync(file, 'utf8')).name
        return typeof name === 'string' ? name : undefined
      } catch {
        return undefined
      }
    }
    if (path.dirname(current) === current) return undefined
  }
}

/** dd-trace-js's sanitizing: lower case, each run of other characters than letters, digits, `/_.-` made one `_`. */
function sanitize(value: string): string {
  return value.toLowerCase().replace(/[^a-z0-9/_.-]+/g, '_').slice(0, MAX_VALUE)
}
