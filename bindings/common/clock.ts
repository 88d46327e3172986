/**
 * Milliseconds since the epoch with sub-millisecond resolution: performance.now() anchored
 * once on Date.now(), so that latencies shorter than a millisecond are not rounded away.
 * The performance object is taken once: Node's global `performance` is a getter, called on
 * every read of the name (a fifth of a clock read).
 */
const performance = globalThis.performance
const origin = Date.now() - performance.now()

export function nowMs(): number {
  return origin + performance.now()
}
