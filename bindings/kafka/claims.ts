/**
 * The Kafka clients pathwise instruments already. Process-wide (a global symbol): when the
 * explicit functions and the automatic mode (the register bundle's copy of pathwise and the
 * application's) meet on one client, the second stands aside rather than record twice.
 */
const CLAIMED = Symbol.for('pathwise.kafka.instrumented')
const claimed: WeakSet<object> = ((globalThis as Record<symbol, unknown>)[CLAIMED] ??= new WeakSet<object>()) as WeakSet<object>

/** True the first time for a client, false when it is instrumented already. */
export function claim(client: object): boolean {
  if (claimed.has(client)) return false
  claimed.add(client)
  return true
}

export function isClaimed(client: object): boolean {
  return claimed.has(client)
}
