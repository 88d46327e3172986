import type { Backend } from './core/types.js'

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
}

export interface ResolvedConfig {
  enabled: boolean
  service: string
  env: string
  version: string
  agentUrl: string
  tags: string[]
  flushIntervalMs: number
  core: Backend | undefined
  maxPoints: number | undefined
  debug: boolean
  timeoutMs: number
}

export type Env = Record<string, string | undefined>

export function resolveConfig(options: DataStreamsOptions, env: Env): ResolvedConfig {
  return {
    enabled: options.enabled ?? isTrue(env.DD_DATA_STREAMS_ENABLED),
    service: options.service ?? env.DD_SERVICE ?? 'unnamed-javascript-service',
    env: options.env ?? env.DD_ENV ?? 'none',
    version: options.version ?? env.DD_VERSION ?? '',
    agentUrl: stripSlash(options.agentUrl ?? env.DD_TRACE_AGENT_URL ?? `http://${env.DD_AGENT_HOST ?? 'localhost'}:${env.DD_TRACE_AGENT_PORT ?? '8126'}`),
    tags: options.tags !== undefined ? tagList(options.tags) : parseTags(env.DD_TAGS),
    flushIntervalMs: options.flushIntervalMs ?? positiveNumber(env.PATHWISE_FLUSH_INTERVAL_MS) ?? 10_000,
    core: options.core,
    maxPoints: options.maxPoints,
    debug: options.debug ?? isTrue(env.DD_TRACE_DEBUG),
    timeoutMs: options.timeoutMs ?? 2_000,
  }
}

function isTrue(value: string | undefined): boolean {
  return value !== undefined && (value.toLowerCase() === 'true' || value === '1')
}

function positiveNumber(value: string | undefined): number | undefined {
  const n = value === undefined ? NaN : Number(value)
  return Number.isFinite(n) && n >= 0 ? n : undefined
}

function stripSlash(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url
}

function tagList(tags: Record<string, string> | readonly string[]): string[] {
  return Array.isArray(tags) ? [...(tags as readonly string[])] : Object.entries(tags).map(([k, v]) => `${k}:${v}`)
}

/** DD_TAGS: `a:1,b:2` or `a:1 b:2`. */
export function parseTags(value: string | undefined): string[] {
  if (value === undefined) return []
  return value
    .split(/[,\s]+/)
    .map((t) => t.trim())
    .filter((t) => t.length > 0)
}
