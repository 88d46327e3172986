/**
 * pathwise for edge runtimes (Cloudflare Workers / workerd, Deno, Bun, browsers): nothing from
 * Node in the import graph. The Wasm core is embedded in the bundle, or handed over compiled
 * where the runtime forbids compiling Wasm from bytes (workerd); export goes through `fetch`
 * with gzip by `CompressionStream`; contexts are passed explicitly; flushing is the caller's
 * (`ctx.waitUntil(dsm.flush())`), since an edge isolate may be frozen between requests.
 */
import type { DataStreamsOptions, Env } from './api/config.js'
import type { ContextStore, DataStreams } from './api/data-streams.js'
import { createDataStreamsFor } from './processor/create.js'
import { compiledModule } from './processor/create-core.js'
import { fetchTransport } from './export/fetch-transport.js'
import { hold } from './export/unref.js'
import { read } from './common/input.js'

export interface EdgeDataStreamsOptions extends DataStreamsOptions {
  /**
   * The compiled Wasm core, for runtimes that refuse to compile Wasm from bytes, as workerd does:
   * `import wasmModule from 'pathwise/pathwise.wasm'`. Elsewhere the embedded bytes are used.
   * Without either, the pure-TS core stands in. (Typed as an object so that the declarations need no DOM lib.)
   */
  wasmModule?: object
  /**
   * Where the DD_* variables are read from: a Worker's `env`, `Deno.env.toObject()`, `process.env`.
   * Nothing is read otherwise: edge runtimes have no common way to the environment.
   * (Named so because `env` is already the Datadog environment, DD_ENV.)
   */
  vars?: Env
}

/** No async context on the edge: the context of a message is passed as `parent`, explicitly. */
const explicitContext: ContextStore = {
  get: () => undefined,
  enter: () => {},
  run: (_ctx, fn) => fn(),
}

/**
 * The DataStreams processor for edge runtimes. Nothing is sent unless `flush()` is called:
 * `flushIntervalMs` defaults to 0 here, because a timer outlives no Worker request.
 */
export function createDataStreams(options: EdgeDataStreamsOptions = {}): DataStreams {
  const vars = read(options, 'vars')
  return createDataStreamsFor(
    options,
    { env: (vars ?? {}) as Env, store: explicitContext, transport: fetchTransport, hold, compiledWasm: compiledModule(read(options, 'wasmModule')) },
    { flushIntervalMs: 0 },
  )
}

export * from './shared-exports.js'
