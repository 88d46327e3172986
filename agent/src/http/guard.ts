import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'

/**
 * Which requests the agent answers at all, checked before any handler runs. Tracers are not the
 * risk: browsers are, since any page a person opens can send requests to the agent.
 *
 * - Host: a page that rebinds its own name to the agent's address (DNS rebinding) reads the agent
 *   as if it were its own origin, and the only trace of it is the Host header naming it. So the
 *   agent answers only Host names it knows: localhost, the name it listens on, and those given in
 *   `allowedHosts`; and any IP address, which no page can rebind. The port is not
 *   checked, so that forwarded ports (docker -p, ssh -L) keep working.
 * - Writes (any method but GET and HEAD): a page of another origin can send a POST without a CORS
 *   preflight (`mode: 'no-cors'`, Content-Type text/plain, form-urlencoded or multipart, or no body
 *   type), and its body would be ingested. Tracers send no Origin and no Sec-Fetch-* header, and
 *   always application/msgpack (pipeline stats, traces, stats) or application/json (telemetry,
 *   remote configuration), neither of which a page can send cross-origin without a preflight,
 *   which the agent refuses too.
 */

export interface GuardOptions {
  /** The address the agent listens on: a name there is one the agent answers to. */
  host: string
  /** More host names the agent answers to, without port (`--allowed-hosts`). */
  allowedHosts?: readonly string[]
  log: (line: string) => void
}

/** What tracers send with a write: dd-trace for Node, Python, Go and Java, and pathwise. */
const TRACER_CONTENT_TYPES = new Set(['application/msgpack', 'application/json'])
/** Fetch metadata values a write may carry: the agent's own page, or a person typing the address. */
const SAME_ORIGIN_SITES = new Set(['same-origin', 'none'])
/** At most one refusal line per this many ms in the log, so that a hostile page cannot flood it. */
const REFUSAL_LOG_MS = 5000

export class RequestGuard {
  private readonly names: Set<string>
  private readonly log: (line: string) => void
  private lastLog = 0
  private unlogged = 0

  constructor(options: GuardOptions) {
    this.log = options.log
    this.names = new Set(hostNames(options.host, options.allowedHosts))
  }

  /** Why `req` is refused (a one-line reason, logged), or null when it may be answered. */
  check(req: IncomingMessage): string | null {
    const reason = this.reason(req)
    if (reason !== null) this.report(req, reason)
    return reason
  }

  private reason(req: IncomingMessage): string | null {
    const host = req.headers.host
    if (host === undefined) return 'no Host header'
    if (!this.allowsHost(host)) return `Host ${clip(host)} is not one this agent answers to (add the name with --allowed-hosts)`
    const method = req.method ?? 'GET'
    if (method === 'GET' || method === 'HEAD') return null
    const origin = req.headers.origin
    if (origin !== undefined && originHost(origin) !== host.toLowerCase()) return `a ${method} from another origin (${clip(origin)})`
    const site = req.headers['sec-fetch-site']
    if (site !== undefined && !SAME_ORIGIN_SITES.has(site)) return `a ${method} from a ${clip(site)} page`
    const type = req.headers['content-type']?.split(';')[0].trim().toLowerCase()
    if (type === undefined || !TRACER_CONTENT_TYPES.has(type)) {
      return `a ${method} with Content-Type ${clip(type ?? 'none')}, which no tracer sends`
    }
    return null
  }

  private allowsHost(header: string): boolean {
    const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/i.exec(header)
    if (!m) return false
    if (m[1] !== undefined) return isIP(m[1]) === 6
    const name = m[2].toLowerCase()
    return isIP(name) === 4 || this.names.has(name)
  }

  private report(req: IncomingMessage, reason: string): void {
    const now = Date.now()
    if (now - this.lastLog < REFUSAL_LOG_MS) {
      this.unlogged++
      return
    }
    const more = this.unlogged > 0 ? ` (and ${this.unlogged} more since the last line)` : ''
    this.log(`answered 403 to ${req.method} ${clip(req.url ?? '/')}: ${reason}${more}`)
    this.lastLog = now
    this.unlogged = 0
  }
}

/**
 * The names a request may give as Host, besides IP addresses: localhost, the listening address
 * when it is a name, and `allowedHosts` (trimmed, lowercased). Throws on an entry that is not a
 * host name.
 */
export function hostNames(host: string, allowedHosts: readonly string[] = []): string[] {
  const names = new Set(['localhost'])
  if (!isIP(host)) names.add(host.toLowerCase())
  for (const entry of allowedHosts) {
    const name = entry.trim().toLowerCase()
    if (name === '') continue
    if (!/^[a-z0-9_.-]+$/.test(name)) {
      throw new Error(`allowed hosts: not a host name (give names without scheme or port; IP addresses need no entry): ${entry}`)
    }
    names.add(name)
  }
  return [...names]
}

/** `host[:port]` of an Origin header as the Host header would give it, or null for "null" and anything unparsable. */
function originHost(origin: string): string | null {
  try {
    return new URL(origin).host
  } catch {
    return null
  }
}

/** Header values go into the answer and the log: bounded. */
function clip(text: string): string {
  return text.length > 100 ? `${text.slice(0, 100)}…` : text
}
