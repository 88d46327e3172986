import type { IncomingMessage } from 'node:http'

/**
 * Reading a request body within limits: its size as received, the time it takes to arrive, and the
 * bytes all bodies being received hold at once. IntakeError is how every step of the intake refuses
 * a payload (here, decoding, the worker pool): a status and a one-line reason for the client.
 */

export interface IntakeLimits {
  /** Largest body accepted, as received (gzip). */
  maxBodyBytes: number
  /** Largest body once gunzipped: a small gzip bomb stops here. */
  maxDecompressedBytes: number
  /** Time for a whole body to arrive once its headers have: a trickling client is cut off with a 408. */
  bodyTimeoutMs: number
}

// 5 s is the Datadog Agent's own receiver timeout, for the whole request.
export const DEFAULT_LIMITS: IntakeLimits = { maxBodyBytes: 10 * 1024 * 1024, maxDecompressedBytes: 64 * 1024 * 1024, bodyTimeoutMs: 5000 }

/** A rejected payload; the message is the one-line reason sent with `status`. */
export class IntakeError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message)
  }
}

/** Bytes of request bodies held at once, all requests together, from their first byte until `give`. */
export class BodyBudget {
  private held = 0
  constructor(readonly max: number) {}

  take(bytes: number): boolean {
    if (this.held + bytes > this.max) return false
    this.held += bytes
    return true
  }

  give(bytes: number): void {
    this.held -= bytes
  }
}

/**
 * Reads a request body: rejects with a 413 as soon as it passes `max` bytes, and with a 408 unless
 * all of it has arrived within `timeoutMs`, so that a client sending a byte a second cannot hold a
 * connection for long. With a budget, the bytes received are taken from it (a 503 when it has no
 * more); the caller gives back the body's length once done with it.
 */
export function readBody(req: IncomingMessage, max: number, timeoutMs: number, budget?: BodyBudget): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'])
    if (declared > max) return reject(new IntakeError(`body too large: ${declared} bytes, over the limit of ${max}`, 413))
    const chunks: Buffer[] = []
    let size = 0
    let ended = false
    const end = (err: IntakeError | null): void => {
      if (ended) return
      ended = true
      clearTimeout(timer)
      req.off('data', onData)
      if (!err) return resolve(Buffer.concat(chunks, size))
      budget?.give(size)
      reject(err)
    }
    const onData = (chunk: Buffer): void => {
      if (size + chunk.length > max) {
        // Keep reading (and dropping) so that the client can read the 413.
        req.resume()
        return end(new IntakeError(`body too large: over the limit of ${max} bytes`, 413))
      }
      if (budget && !budget.take(chunk.length)) return end(new IntakeError('busy: too many bodies being received, retry later', 503))
      size += chunk.length
      chunks.push(chunk)
    }
    const timer = setTimeout(() => end(new IntakeError(`body too slow: not all received within ${timeoutMs} ms`, 408)), timeoutMs)
    req.on('data', onData)
    req.once('end', () => end(null))
    const aborted = (): void => end(new IntakeError('request aborted before the end of its body'))
    req.once('error', aborted)
    req.once('close', () => {
      if (!req.complete) aborted()
    })
  })
}
