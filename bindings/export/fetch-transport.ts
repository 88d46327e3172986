import type { Transport } from './exporter.js'
import { unref } from './unref.js'

/**
 * The transport for runtimes with web APIs (Cloudflare Workers, Deno, Bun, Node too):
 * global `fetch` with an AbortController deadline, gzip through `CompressionStream`.
 */
export const fetchTransport: Transport = {
  async post(url, headers, body, timeoutMs) {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)
    unref(timer)
    try {
      const res = await fetch(url, { method: 'POST', headers, body: asBufferSource(body), signal: controller.signal })
      // release the connection without reading a body nobody needs
      await res.body?.cancel()
      return res.status
    } finally {
      clearTimeout(timer)
    }
  },
  async gzip(data) {
    const stream = new Blob([asBufferSource(data)]).stream().pipeThrough(new CompressionStream('gzip'))
    return new Uint8Array(await new Response(stream).arrayBuffer())
  },
}

/** Web APIs take views of an ArrayBuffer only; payloads are never built on a SharedArrayBuffer. */
function asBufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>
}
