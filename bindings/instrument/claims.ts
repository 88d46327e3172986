/**
 * The client objects an instrumentation holds already, one set per transport. Process-wide (a
 * global symbol): when the explicit functions and the automatic mode (the register bundle's copy of
 * pathwise and the application's) meet on one client, the second stands aside rather than record twice.
 */
export interface Claims {
  /** True the first time for an object, false when it is held already. */
  claim(target: object): boolean
  /** Whether the object is held (anything may be asked: `this` of a wrapper may be anything). */
  isClaimed(target: unknown): boolean
}

export function claimsFor(name: string): Claims {
  const key = Symbol.for(`pathwise.${name}.instrumented`)
  const claimed = ((globalThis as Record<symbol, unknown>)[key] ??= new WeakSet<object>()) as WeakSet<object>
  return {
    claim(target) {
      if (claimed.has(target)) return false
      claimed.add(target)
      return true
    },
    isClaimed: (target) => target !== null && typeof target === 'object' && claimed.has(target),
  }
}
