/**
 * Which hosts an outgoing HTTP request may carry the pathway context to. The header tells its
 * receiver which pathway a request belongs to and when it started: it must not reach a third party
 * (a payment provider, a public API) unless the user said so, host by host.
 *
 * An entry is `name` (any port), `name:port`, `*.domain` (any name under the domain, not the
 * domain itself) or `*.domain:port`; an IPv6 address may be written in brackets. Names compare
 * without regard to case.
 */

interface Entry {
  /** The name, or the `.domain` suffix of a wildcard. */
  name: string
  wildcard: boolean
  /** Undefined: any port. */
  port: number | undefined
}

export class AllowedHosts {
  private readonly entries: Entry[]

  constructor(hosts: readonly string[]) {
    this.entries = hosts.flatMap((host) => {
      const entry = parseEntry(host)
      return entry === undefined ? [] : [entry]
    })
  }

  get empty(): boolean {
    return this.entries.length === 0
  }

  /** Whether a request to `hostname` on `port` may carry the context. */
  allows(hostname: string, port: number): boolean {
    const name = bare(hostname.toLowerCase())
    for (const e of this.entries) {
      if (e.port !== undefined && e.port !== port) continue
      if (e.wildcard ? name.endsWith(e.name) && name.length > e.name.length : name === e.name) return true
    }
    return false
  }
}

function parseEntry(host: string): Entry | undefined {
  let text = host.trim().toLowerCase()
  let port: number | undefined
  const colon = text.lastIndexOf(':')
  // A port follows the last colon, unless the colon is inside an IPv6 address without brackets.
  if (colon > 0 && (text.startsWith('[') ? text.charAt(colon - 1) === ']' : text.indexOf(':') === colon)) {
    const digits = text.slice(colon + 1)
    if (!/^\d{1,5}$/.test(digits)) return undefined
    port = Number(digits)
    text = text.slice(0, colon)
  }
  const wildcard = text.startsWith('*.')
  const name = bare(wildcard ? text.slice(1) : text)
  return name === '' || name === '.' || name.includes('*') ? undefined : { name, wildcard, port }
}

/** An IPv6 address without its brackets. */
function bare(name: string): string {
  return name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name
}
