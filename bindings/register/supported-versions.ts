/**
 * Which versions of a module the automatic mode patches. Each instrumentation declares the range
 * it supports (`supportedVersions`, as OpenTelemetry's module definitions do; the optional peer
 * dependencies' ranges), and a module whose package.json gives a version outside it is left as it
 * came: another major version may have moved or changed what pathwise wraps.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * The version of the module loaded from `baseDir` when `range` excludes it ('unknown' when its
 * package.json gives none); undefined when the module may be patched: its version is inside the
 * range, or it was loaded from no package directory (nothing to check, as OpenTelemetry treats
 * built-in modules).
 */
export function excludedVersion(baseDir: unknown, range: string): string | undefined {
  if (typeof baseDir !== 'string') return undefined
  const version = installedVersion(baseDir)
  if (version === undefined) return 'unknown'
  return inRange(version, range) ? undefined : version
}

/** The version in `${baseDir}/package.json`; undefined when there is none to read. */
function installedVersion(baseDir: string): string | undefined {
  try {
    const version: unknown = JSON.parse(readFileSync(join(baseDir, 'package.json'), 'utf8'))?.version
    return typeof version === 'string' ? version : undefined
  } catch {
    return undefined
  }
}

/**
 * Whether `version` is inside `range`: comparators separated by spaces, each `>=x.y.z` or
 * `<x.y.z` (missing parts count as 0), the form of the peer dependencies. A prerelease or build
 * suffix is ignored (3.0.0-rc.1 counts as 3.0.0). False for anything that does not parse.
 */
export function inRange(version: string, range: string): boolean {
  const v = parseVersion(version)
  if (v === undefined) return false
  return range
    .trim()
    .split(/\s+/)
    .every((comparator) => {
      const m = /^(>=|<)(.+)$/.exec(comparator)
      const bound = m === null ? undefined : parseVersion(m[2])
      if (m === null || bound === undefined) return false
      const order = compare(v, bound)
      return m[1] === '>=' ? order >= 0 : order < 0
    })
}

function parseVersion(text: string): number[] | undefined {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+].*)?$/.exec(text.trim())
  return m === null ? undefined : [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)]
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return 0
}
