import type { Backend } from '../core/types.js'
import { MAX_TAG_LENGTH, read } from '../common/input.js'

/** Options of `createDataStreams`; each falls back to the Datadog environment variable users already set. */
export interface DataStreamsOptions {
  /** DD_DATA_STREAMS_ENABLED=true */
  enabled?: boolean
  /** DD_SERVICE */
  service?: string
  /** DD_ENV, default `none` */
  env?: string
  /** DD_VERSION */
  version?: string
  /** DD_TRACE_AGENT_URL, else http://${DD_AGENT_HOST:-localhost}:${DD_TRACE_AGENT_PORT:-8126} */
  agentUrl?: string
  /** Payload tags; DD_TAGS (`key:value` separated by commas or spaces) */
  tags?: Record<string, string> | readonly string[]
  /** PATHWISE_FLUSH_INTERVAL_MS, default 10 000 ms (Datadog's); 0 sends only on flush() and at exit. */
  flushIntervalMs?: number
  /** Wasm by default */
  core?: Backend
  /** Most live stats points (the cap that drops new pathways rather than growing without end). */
  maxPoints?: number
  /** DD_TRACE_DEBUG=true: log what is sent. */
  debug?: boolean
  /** Agent request timeout, default 2000 ms. */
  timeoutMs?: number
  /**
   * PATHWISE_EXIT_TIMEOUT_MS: the longest a process that is ending waits for its stats to be
   * delivered (whatever the way it ends), default 2000 ms.
   */
  exitTimeoutMs?: number
  /** Most nodes (service, env, edge tags) kept prepared; past it the cache starts over (counted in `stats.evictedNodes`). Default 10 000. */
  maxNodes?: number
}

/**
 * What the instrumentations take from the configuration. An enabled DataStreams hands it over as
 * its `settings` (read with `settingsOf`), so that the explicit instrument functions and the
 * automatic mode get the environment's defaults without reading it themselves.
 */
export interface InstrumentationSettings {
  /** DD_TRACE_DEBUG */
  readonly debug: boolean
  /** The Kafka instrumentations' `injectHeaders` default: off with DD_KAFKA_CLIENT_PROPAGATION_ENABLED=false (or 0). */
  readonly kafkaHeaderInjection: boolean
  /** The automatic mode's Kinesis `jsonContext`: PATHWISE_KINESIS_JSON_CONTEXT=true (or 1). */
  readonly kinesisJsonContext: boolean
  /** The automatic mode's HTTP hops: DD_DATA_STREAMS_HTTP_ENABLED=true (or 1); off by default. */
  readonly httpEnabled: boolean
  /** The hosts an outgoing HTTP request may carry the context to: PATHWISE_HTTP_ALLOWED_HOSTS (`a.internal,*.svc.local,10.0.0.5:8080`); none by default. */
  readonly httpAllowedHosts: readonly string[]
  /** How often stats are sent (0: only on flush() and at exit): how often BullMQ queue backlogs are sampled. */
  readonly flushIntervalMs: number
}

export interface ResolvedConfig extends InstrumentationSettings {
  enabled: boolean
  service: string
  env: string
  version: string
  agentUrl: string
  tags: string[]
  core: Backend | undefined
  maxPoints: number | undefined
  timeoutMs: number
  exitTimeoutMs: number
  maxNodes: number
  /** Whether `service` was given (option or DD_SERVICE) rather than the default: `svc.user` or `svc.auto` in the process tags. */
  serviceGiven: boolean
  /** ProcessTags in the payload: on unless DD_EXPERIMENTAL_PROPAGATE_PROCESS_TAGS_ENABLED=false (dd-trace-go's default). */
  processTags: boolean
}

export type Env = Record<string, string | undefined>

/** setTimeout and setInterval fire at once past this (a 32-bit signed count of milliseconds). */
const MAX_TIMER_MS = 0x7fffffff

/**
 * The options, falling back to the environment. Never throws: an option that cannot be read (a
 * throwing getter, a Proxy) or has the wrong type counts as not given, and so does a variable.
 */
export function resolveConfig(options: unknown, env: unknown, defaults: { flushIntervalMs?: number } = {}): ResolvedConfig {
  const opt = (key: keyof DataStreamsOptions) => read(options, key)
  const envText = (key: string): string | undefined => {
    const value = read(env, key)
    return typeof value === 'string' ? value : undefined
  }
  const text = (key: keyof DataStreamsOptions): string | undefined => {
    const value = opt(key)
    return typeof value === 'string' ? value : undefined
  }
  const flag = (key: keyof DataStreamsOptions): boolean | undefined => {
    const value = opt(key)
    return typeof value === 'boolean' ? value : undefined
  }
  const core = opt('core')
  const host = envText('DD_AGENT_HOST') ?? 'localhost'
  const port = envText('DD_TRACE_AGENT_PORT') ?? '8126'
  const service = nonEmpty(text('service')) ?? nonEmpty(envText('DD_SERVICE'))
  return {
    enabled: flag('enabled') ?? isTrue(envText('DD_DATA_STREAMS_ENABLED')),
    service: service ?? 'unnamed-javascript-service',
    serviceGiven: service !== undefined,
    processTags: !isFalse(envText('DD_EXPERIMENTAL_PROPAGATE_PROCESS_TAGS_ENABLED')),
    env: nonEmpty(text('env')) ?? nonEmpty(envText('DD_ENV')) ?? 'none',
    version: text('version') ?? envText('DD_VERSION') ?? '',
    agentUrl: stripSlash(httpUrl(text('agentUrl')) ?? httpUrl(envText('DD_TRACE_AGENT_URL')) ?? httpUrl(`http://${host}:${port}`) ?? 'http://localhost:8126'),
    tags: tagList(opt('tags')) ?? parseTags(envText('DD_TAGS')),
    flushIntervalMs: Math.min(MAX_TIMER_MS, nonNegative(opt('flushIntervalMs')) ?? nonNegative(numberText(envText('PATHWISE_FLUSH_INTERVAL_MS'))) ?? defaults.flushIntervalMs ?? 10_000),
    core: core === 'wasm' || core === 'ts' ? core : undefined,
    maxPoints: nonNegative(opt('maxPoints')),
    debug: flag('debug') ?? isTrue(envText('DD_TRACE_DEBUG')),
    timeoutMs: Math.min(MAX_TIMER_MS, positive(opt('timeoutMs')) ?? 2_000),
    exitTimeoutMs: Math.min(MAX_TIMER_MS, positive(opt('exitTimeoutMs')) ?? positive(numberText(envText('PATHWISE_EXIT_TIMEOUT_MS'))) ?? 2_000),
    maxNodes: Math.max(1, Math.floor(Math.min(1e7, positive(opt('maxNodes')) ?? 10_000))),
    kafkaHeaderInjection: !isFalse(envText('DD_KAFKA_CLIENT_PROPAGATION_ENABLED')),
    kinesisJsonContext: isTrue(envText('PATHWISE_KINESIS_JSON_CONTEXT')),
    httpEnabled: isTrue(envText('DD_DATA_STREAMS_HTTP_ENABLED')),
    httpAllowedHosts: hostList(envText('PATHWISE_HTTP_ALLOWED_HOSTS')),
  }
}

/** A service or env name: part of every node's hash, so as bounded as a tag. */
function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.length === 0 || value.length > MAX_TAG_LENGTH ? undefined : value
}

function numberText(value: string | undefined): number | undefined {
  return value === undefined || value.trim() === '' ? undefined : Number(value)
}

function nonNegative(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined
}

function positive(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined
}

/** An http(s) URL, or undefined: an Agent address that does not parse is ignored rather than failing every flush. */
function httpUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  try {
    const url = new URL(value)
    return url.protocol === 'http:' || url.protocol === 'https:' ? value : undefined
  } catch {
    return undefined
  }
}

function isTrue(value: string | undefined): boolean {
  return value !== undefined && (value.toLowerCase() === 'true' || value === '1')
}

function isFalse(value: string | undefined): boolean {
  return value !== undefined && (value.toLowerCase() === 'false' || value === '0')
}

function stripSlash(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url
}

/** Tags as `key:value` strings from an array of strings or a record of strings; undefined if it is neither (or cannot be read). */
function tagList(tags: unknown): string[] | undefined {
  if (tags === undefined || tags === null) return undefined
  try {
    if (Array.isArray(tags)) return tags.length <= 1000 && tags.every((t) => typeof t === 'string') ? [...(tags as string[])] : undefined
    // a typed array (a Buffer) holds numbers only: listing its entries first would cost a second per 2 MB
    if (typeof tags !== 'object' || ArrayBuffer.isView(tags)) return undefined
    const out: string[] = []
    for (const [k, v] of Object.entries(tags)) {
      if (typeof v !== 'string' || out.length >= 1000) return undefined
      out.push(`${k}:${v}`)
    }
    return out
  } catch {
    return undefined
  }
}

/** A list of hosts: names separated by commas or spaces, lower-cased; at most 1,000 of at most 1,024 characters. */
function hostList(value: string | undefined): string[] {
  return parseTags(value)
    .filter((h) => h.length <= MAX_TAG_LENGTH)
    .slice(0, 1000)
    .map((h) => h.toLowerCase())
}

/** DD_TAGS: `a:1,b:2` or `a:1 b:2`. */
export function parseTags(value: string | undefined): string[] {
  if (value === undefined) return []
  return value
    .split(/[,\s]+/)
    .map((t) => t.trim())
    .filter((t) => t.length > 0)
}
