/**
 * HTTP hops, through the diagnostics channels Node and undici publish (nothing is patched):
 *
 * - Out: `undici:request:create` (`fetch`, undici) and `http.client.request.created` (`node:http`
 *   and `https`, where Node publishes it: not Node 20, whose `http.client.request.start` comes
 *   after the headers are written). A request to an allowed host (allowed-hosts.ts) records a
 *   produce checkpoint and carries its context in a `dd-pathway-ctx-base64` header. Requests to
 *   other hosts, requests that carry the header already, and tracers' payloads to an Agent
 *   (`Datadog-Meta-Lang`, pathwise's own included) are left alone.
 * - In: `http.server.request.start` (`node:http`, `https`). A request that carries the header
 *   records a consume checkpoint, and its context is current for the handler, so what the handler
 *   sends continues the pathway. A request without it changes nothing.
 *
 * The edge tags are dd-trace-java's for HTTP: `direction:out, type:http` and `direction:in,
 * type:http`, no host, URL, path or method, so that no high-cardinality value enters a hash: the
 * hop's place in the pathway is its parent's hash.
 */
import { Buffer } from 'node:buffer'
import dc from 'node:diagnostics_channel'
import type { CheckpointNode, DataStreams } from '../api/data-streams.js'
import { PATHWAY_KEY, decodePathwayContext, encodePathwayContext, type PathwayContext } from '../pathway/context.js'
import { withOffSwitch } from '../instrument/instrumentation.js'
import { parentForSend } from '../instrument/received-messages.js'
import { settingsOf } from '../instrument/settings.js'
import { asyncLocalStore } from '../node/platform.js'
import { createLogger } from '../common/logger.js'
import { errorText, items, read, viewBytes } from '../common/input.js'
import { AllowedHosts } from './allowed-hosts.js'

export interface HttpHopsOptions {
  /** The hosts outgoing requests carry the context to (allowed-hosts.ts); default PATHWISE_HTTP_ALLOWED_HOSTS. */
  allowedHosts?: readonly string[]
}

const log = createLogger(false)

function fail(step: string, err: unknown): void {
  log.warnOnce(`http:${step}`, `http ${step} failed, continuing without it: ${errorText(err)}`)
}

/** One instrumentation records the process's HTTP hops: a second would record each twice. Process-wide, as the automatic mode's copy of pathwise and the application's meet here. */
const SLOT = Symbol.for('pathwise.http.hops')
const slot = globalThis as { [SLOT]?: object }

/**
 * Records the HTTP hops of this process with `dsm` (a second call stands aside while the first is
 * in place). Returns the undo. With DSM disabled nothing is subscribed.
 */
export function instrumentHttp(dsm: DataStreams, options: HttpHopsOptions = {}): () => void {
  return withOffSwitch(dsm, (dsm, active) => {
    if (slot[SLOT] !== undefined) {
      log.warnOnce('http:twice', 'http: HTTP hops are recorded by another DataStreams of this process already; this one stands aside')
      return () => {}
    }
    const token = {}
    slot[SLOT] = token
    const hops = new Hops(dsm, active, new AllowedHosts(hostsOf(read(options, 'allowedHosts')) ?? settingsOf(dsm).httpAllowedHosts))
    const handlers: [string, (message: unknown) => void][] = [
      ['undici:request:create', (m) => hops.undiciRequest(read(m, 'request'))],
      ['http.client.request.created', (m) => hops.nodeRequest(read(m, 'request'))],
      ['http.server.request.start', (m) => hops.serverRequest(read(m, 'request'), read(m, 'socket'))],
    ]
    for (const [name, handler] of handlers) dc.subscribe(name, handler)
    return () => {
      for (const [name, handler] of handlers) dc.unsubscribe(name, handler)
      if (slot[SLOT] === token) delete slot[SLOT]
    }
  })
}

/** The automatic mode's: with DD_DATA_STREAMS_HTTP_ENABLED=true, the hops of the process; else nothing. */
export function instrumentHttpFromSettings(dsm: DataStreams): () => void {
  return settingsOf(dsm).httpEnabled ? instrumentHttp(dsm) : () => {}
}

function hostsOf(value: unknown): string[] | undefined {
  const list = items(value)
  return list === undefined ? undefined : list.filter((h): h is string => typeof h === 'string')
}

/** What a socket's earlier request changed: keep-alive requests share one async resource in Node 20. */
interface Entered {
  ctx: PathwayContext
  before: PathwayContext | undefined
}

class Hops {
  private out: CheckpointNode | null = null
  private in: CheckpointNode | null = null
  private readonly entered = new WeakMap<object, Entered>()

  constructor(
    private readonly dsm: DataStreams,
    private readonly active: () => boolean,
    private readonly allowed: AllowedHosts,
  ) {}

  private node(direction: 'in' | 'out'): CheckpointNode | null {
    const node = this[direction]
    if (node !== null && node.live) return node
    return (this[direction] = this.dsm.node([`direction:${direction}`, 'type:http']))
  }

  /** A produce checkpoint for a request to `hostname:port`, if that host is allowed; its header value, or undefined. */
  private produce(hostname: string, port: number, size: number): string | undefined {
    if (!this.allowed.allows(hostname, port)) return undefined
    const node = this.node('out')
    const ctx = node === null ? null : this.dsm.setCheckpoint(node, parentForSend(this.dsm), size)
    return ctx === null ? undefined : encodePathwayContext(ctx)
  }

  /** fetch and undici: the request's origin says where it goes; `addHeader` adds to it. */
  undiciRequest(request: unknown): void {
    if (!this.active() || this.allowed.empty) return
    try {
      const target = originOf(read(request, 'origin'))
      const headers = read(request, 'headers')
      const addHeader = read(request, 'addHeader')
      if (target === undefined || typeof addHeader !== 'function' || undiciHeader(headers, PATHWAY_KEY) || undiciHeader(headers, 'datadog-meta-lang')) return
      const body = read(request, 'body')
      const size = typeof body === 'string' ? Buffer.byteLength(body) : ArrayBuffer.isView(body) ? viewBytes(body) : 0
      const value = this.produce(target.hostname, target.port, size)
      if (value !== undefined) addHeader.call(request, PATHWAY_KEY, value)
    } catch (err) {
      fail('fetch request', err)
    }
  }

  /** node:http and https: the request's host, and the port its Host header names. */
  nodeRequest(request: unknown): void {
    if (!this.active() || this.allowed.empty) return
    try {
      const getHeader = read(request, 'getHeader')
      const setHeader = read(request, 'setHeader')
      const hostname = read(request, 'host')
      if (typeof getHeader !== 'function' || typeof setHeader !== 'function' || typeof hostname !== 'string') return
      const header = (name: string): unknown => getHeader.call(request, name)
      if (header(PATHWAY_KEY) !== undefined || header('datadog-meta-lang') !== undefined || read(request, 'headersSent') === true) return
      const port = portOf(header('host'), hostname, read(request, 'protocol') === 'https:' ? 443 : 80)
      const value = this.produce(hostname, port, contentLength(header('content-length')))
      if (value !== undefined) setHeader.call(request, PATHWAY_KEY, value)
    } catch (err) {
      fail('http request', err)
    }
  }

  /** A request received: with the header, a consume checkpoint whose context is current for the handler. */
  serverRequest(request: unknown, socket: unknown): void {
    if (!this.active()) return
    try {
      const headers = read(request, 'headers')
      const value = read(headers, PATHWAY_KEY)
      const key = socket !== null && typeof socket === 'object' ? socket : undefined
      if (typeof value !== 'string') return this.leave(key)
      const node = this.node('in')
      const parent = decodePathwayContext(value.slice(value.lastIndexOf(',') + 1).trim())
      const ctx = node === null ? null : this.dsm.setCheckpoint(node, parent, contentLength(read(headers, 'content-length')))
      if (ctx === null) return this.leave(key)
      if (key !== undefined) this.entered.set(key, { ctx, before: this.entered.get(key)?.before ?? this.dsm.currentContext() })
      // The channel publishes synchronously before the server emits 'request': the handler runs in this flow.
      asyncLocalStore.enter(ctx)
    } catch (err) {
      fail('server request', err)
    }
  }

  /** A request without a context on a socket whose earlier request entered one: the socket's own context again. */
  private leave(socket: object | undefined): void {
    const entered = socket === undefined ? undefined : this.entered.get(socket)
    if (entered === undefined || this.dsm.currentContext() !== entered.ctx) return
    // enterWith(undefined) is how AsyncLocalStorage forgets a store: the cast says so to the type.
    asyncLocalStore.enter(entered.before as PathwayContext)
  }
}

/** An undici origin (`http://host:port`, a string or URL): its host name and port. */
function originOf(origin: unknown): { hostname: string; port: number } | undefined {
  let url: URL
  try {
    url = typeof origin === 'string' ? new URL(origin) : origin instanceof URL ? origin : new URL('invalid:')
  } catch {
    return undefined
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined
  return { hostname: url.hostname, port: url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port) }
}

/** Whether undici's request headers (a flat [name, value, …] list, or `name: value\r\n` text in undici 5) hold `name`. */
function undiciHeader(headers: unknown, name: string): boolean {
  if (typeof headers === 'string') return headers.toLowerCase().includes(`${name}:`)
  const list = items(headers)
  if (list === undefined) return false
  for (let i = 0; i < list.length; i += 2) {
    const key = list[i]
    if (typeof key === 'string' && key.toLowerCase() === name) return true
  }
  return false
}

/** The port of a request to `hostname`: the one its Host header names if that header names the same host, else the protocol's. */
function portOf(host: unknown, hostname: string, fallback: number): number {
  if (typeof host !== 'string') return fallback
  const colon = host.lastIndexOf(':')
  const name = colon > host.lastIndexOf(']') ? host.slice(0, colon) : host
  if (name.replace(/^\[|\]$/g, '').toLowerCase() !== hostname.replace(/^\[|\]$/g, '').toLowerCase()) return -1
  return colon > host.lastIndexOf(']') ? Number(host.slice(colon + 1)) : fallback
}

function contentLength(value: unknown): number {
  const n = typeof value === 'string' ? Number(value) : typeof value === 'number' ? value : NaN
  return Number.isSafeInteger(n) && n >= 0 ? n : 0
}
