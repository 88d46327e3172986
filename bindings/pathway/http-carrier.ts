/**
 * HTTP as a carrier: the pathway context in the headers of a fetch `Request` or `Response`.
 * Runtime-neutral: it only needs the `get` and `set` of a `Headers`, which every runtime has.
 * Only `dd-pathway-ctx-base64` is read: the legacy raw `dd-pathway-ctx` cannot travel in HTTP,
 * whose header values forbid the NUL and line-break bytes a context may hold.
 */
import { PATHWAY_KEY, decodePathwayContext, encodePathwayContext, type PathwayContext } from './context.js'
import { createLogger } from '../common/logger.js'
import { errorText, read } from '../common/input.js'

const log = createLogger(false)

/** The part of `Headers` the helpers use, so that any runtime's (or a polyfill's) fits. */
export interface HeadersLike {
  get(name: string): string | null
  set(name: string, value: string): void
}

/**
 * The context the headers carry, or null (then a checkpoint starts a new pathway). Never throws.
 * A repeated header reads as `a, b` in `Headers`: its last value is the one written last, as
 * for any other carrier. Base64 has no comma, so the split is safe.
 */
export function extractFromHeaders(headers: Pick<HeadersLike, 'get'>): PathwayContext | null {
  const get = read(headers, 'get')
  if (typeof get !== 'function') return null
  let value: unknown
  try {
    value = get.call(headers, PATHWAY_KEY)
  } catch {
    return null // headers that cannot be read carry no context
  }
  if (typeof value !== 'string') return null
  return decodePathwayContext(value.slice(value.lastIndexOf(',') + 1).trim())
}

/**
 * Writes the context into the headers, replacing any the message already had. A null context
 * (a checkpoint that failed, or DSM disabled) leaves the headers as they are. Never throws.
 */
export function injectIntoHeaders(headers: Pick<HeadersLike, 'set'>, ctx: PathwayContext | null): void {
  if (ctx === null) return
  const set = read(headers, 'set')
  if (typeof set !== 'function') return
  try {
    const value = encodePathwayContext(ctx)
    if (value !== '') set.call(headers, PATHWAY_KEY, value)
  } catch (err) {
    // immutable headers (those of a fetched Response) throw: monitoring never breaks the request
    log.warnOnce('inject-headers', `could not write the pathway context into headers: ${errorText(err)}`)
  }
}
