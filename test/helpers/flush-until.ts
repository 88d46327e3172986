/** Flushes DataStreams until what a test Agent got satisfies a check: the tests that run their services in process. */
import type { DataStreams } from '../../bindings/api/data-streams.js'

/** Flushes the services and waits until `check` holds for what the Agent got. */
export async function flushUntil(dsms: DataStreams[], check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    await Promise.all(dsms.map((d) => d.flush()))
    if (check()) return
    if (Date.now() > deadline) throw new Error('the Agent did not get what was expected in time')
    await new Promise((r) => setTimeout(r, 100))
  }
}
