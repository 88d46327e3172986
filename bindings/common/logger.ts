/** Where pathwise reports trouble. Runtime-neutral: no `node:` imports. */
export interface Logger {
  debug(msg: string): void
  warn(msg: string): void
}

export interface OnceLogger extends Logger {
  /** Warns the first time `key` is seen by this logger only, so a recurring failure is reported once. */
  warnOnce(key: string, msg: string): void
}

/** Keys already warned about, per logger: shared by every user of one logger. */
const warned = new WeakMap<Logger, Set<string>>()

/** Warns through `log` unless `key` was already warned about through it. */
export function warnOnce(log: Logger, key: string, msg: string): void {
  let keys = warned.get(log)
  if (keys === undefined) warned.set(log, (keys = new Set()))
  if (keys.has(key)) return
  keys.add(key)
  log.warn(msg)
}

/** A console logger: warnings always, debug lines only when `debugEnabled`. */
export function createLogger(debugEnabled: boolean): OnceLogger {
  const log: OnceLogger = {
    debug: debugEnabled ? (msg) => console.debug(`[pathwise] ${msg}`) : () => {},
    warn: (msg) => console.warn(`[pathwise] ${msg}`),
    warnOnce: (key, msg) => warnOnce(log, key, msg),
  }
  return log
}
