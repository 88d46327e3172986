import { MAX_JSON_BYTES, unconfirmed, type Transport } from './exporter.js'
import { unref } from './unref.js'

/**
 * The transport for runtimes with web APIs (Cloudflare Workers, Deno, Bun, Node too):
 * global `fetch` with an AbortController deadline, gzip through `CompressionStream` and
 * `DecompressionStream`.
 *
 * fetch does not tell whether the body went out, so the safe rule: one deadline for the whole
 * exchange (both phases), and reaching it rejects as `unconfirmed` (never resent). A rejection of
 * fetch's own (refused, reset, no route) is an ordinary failure, retried.
 */
export const fetchTransport: Transport = {
  async post(url, headers, body, { sendMs, answerMs }) {
    const controller = new AbortController()
    const timeoutMs = sendMs + answerMs
    const timer = setTimeout(() => controller.abort(unconfirmed(`no answer within ${timeoutMs} ms`)), timeoutMs)
    unref(timer)
    try {
      const res = await fetch(url, { method: 'POST', headers, body: asBufferSource(body), signal: controller.signal })
      // release the connection without reading a body nobody needs; the status is known whatever becomes of it
      await res.body?.cancel().catch(() => {})
      return res.status
    } catch (err) {
      // runtimes differ in what an aborted fetch rejects with: the reason is ours
      throw controller.signal.aborted ? controller.signal.reason : err
    } finally {
      clearTimeout(timer)
    }
  },
  async getJson(url, { sendMs, answerMs }) {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(new Error(`no answer within ${sendMs + answerMs} ms`)), sendMs + answerMs)
    unref(timer)
    try {
      const res = await fetch(url, { signal: controller.signal })
      const declared = Number(res.headers.get('content-length') ?? 0)
      if (res.status !== 200 || declared > MAX_JSON_BYTES) {
        await res.body?.cancel().catch(() => {})
        return undefined
      }
      const text = await res.text()
      return text.length <= MAX_JSON_BYTES ? JSON.parse(text) : undefined
    } catch (err) {
      if (controller.signal.aborted) throw controller.signal.reason
      // a body that is not JSON is no answer to use
      if (err instanceof SyntaxError) return undefined
      throw err
    } finally {
      clearTimeout(timer)
    }
  },
  gzip: (data) => through(data, new CompressionStream('gzip')),
  gunzip: (data) => through(data, new DecompressionStream('gzip')),
}

async function through(data: Uint8Array, transform: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const stream = new Blob([asBufferSource(data)]).stream().pipeThrough(transform)
  return new Uint8Array(await new Response(stream).arrayBuffer())
}

/** Web APIs take views of an ArrayBuffer only; payloads are never built on a SharedArrayBuffer. */
function asBufferSource(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>
}
