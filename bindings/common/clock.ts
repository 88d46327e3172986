/**
 * Milliseconds since the epoch with sub-millisecond resolution: performance.now() anchored
 * once on Date.now(), so that latencies shorter than a millisecond are not rounded away.
 */
const origin = Date.now() - performance.now()

export function nowMs(): number {
  return origin + performance.now()
}
