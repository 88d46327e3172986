/** Lets a timer not keep a Node or Bun process alive; elsewhere timers have no `unref` and this does nothing. */
export function unref(timer: unknown): void {
  ;(timer as { unref?: () => void }).unref?.()
}

/**
 * Keeps the process alive for at most `ms`, until the returned function is called: a ref'd timer,
 * which Node, Bun and Deno wait for (workerd keeps a request alive through `waitUntil` instead).
 */
export function hold(ms: number): () => void {
  const timer = setTimeout(() => {}, ms)
  return () => clearTimeout(timer)
}

/** Resolves after `ms` without keeping the process alive. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => unref(setTimeout(resolve, ms)))
}
