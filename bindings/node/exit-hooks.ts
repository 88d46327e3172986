/**
 * Stats sent however a Node (or Bun) process ends: one set of listeners for every DataStreams and
 * every copy of pathwise in the process (the register bundle and the app's own import are two).
 *
 * - `beforeExit` (the event loop ran dry): each DataStreams sends what is new the usual way, and
 *   the process is held for it, at most the DataStreams' `exitTimeoutMs`.
 * - `'exit'` (`process.exit()`, an uncaught exception or unhandled rejection, a signal handler that
 *   calls `process.exit`, and the natural end after `beforeExit`): no event loop any more, so what
 *   is still unsent goes out synchronously (`sync-post.ts`), within what is left of that bound.
 *   Node's own handling (the error it prints, the exit code) happens around this listener, unchanged.
 * - SIGTERM and SIGINT, only while nobody else listens (apart from signal-exit, which defers to
 *   any other listener, as this one does): send synchronously, then raise the signal again with its
 *   default action, so that the process still ends by that signal. A process with its own handler
 *   is left to it; if that handler calls `process.exit`, `'exit'` sends.
 */
import { isMainThread } from 'node:worker_threads'
import { gzipSync } from 'node:zlib'
import type { ExitHook } from '../api/data-streams.js'
import { hold } from '../export/unref.js'
import { Outcome, startPoster, type Poster, type SyncRequest } from './sync-post.js'

const SIGNALS = ['SIGTERM', 'SIGINT'] as const

interface Entry {
  hook: ExitHook
  /** When this DataStreams' exit wait ends, once the process has begun to end; unset while it runs. */
  until: number | undefined
}

interface Registry {
  entries: Set<Entry>
  /** Removes the listeners: set by the copy that installed them. */
  uninstall: (() => void) | undefined
}

/** Versioned: a copy whose hooks have another shape keeps its own registry. */
const REGISTRY = Symbol.for('pathwise.exit-hooks.v1')
const registry: Registry = ((globalThis as Record<symbol, unknown>)[REGISTRY] as Registry | undefined) ??
  ((globalThis as Record<symbol, unknown>)[REGISTRY] = { entries: new Set<Entry>(), uninstall: undefined })

/** Registers a DataStreams' exit hook; the first one installs the listeners, the last one out removes them. */
export function onExit(hook: ExitHook): () => void {
  const entry: Entry = { hook, until: undefined }
  if (registry.entries.size === 0 && registry.uninstall === undefined) registry.uninstall = install()
  registry.entries.add(entry)
  return () => {
    registry.entries.delete(entry)
    if (registry.entries.size > 0) return
    registry.uninstall?.()
    registry.uninstall = undefined
  }
}

function install(): () => void {
  let poster: Poster | undefined
  const entries = registry.entries

  /** What is left of an entry's wait, counted from the first moment the process began to end. */
  const left = (entry: Entry, now: number): number => (entry.until ??= now + entry.hook.timeoutMs) - now

  const onBeforeExit = (): void => {
    const now = Date.now()
    for (const entry of entries) {
      const ms = left(entry, now)
      if (ms <= 0) continue
      const sending = attempt(() => entry.hook.drain())
      // nothing to send: the process goes on ending (or, if someone scheduled more work, running)
      if (sending === undefined) {
        entry.until = undefined
        continue
      }
      const release = hold(ms)
      void sending.then(release, release)
    }
  }

  /** Sends synchronously what every DataStreams still holds. */
  const sendNow = (): void => {
    const now = Date.now()
    const requests: (SyncRequest & { entry: Entry })[] = []
    for (const entry of entries) {
      const ms = left(entry, now)
      if (ms <= 0) continue
      const { hook } = entry
      for (const payload of attempt(() => hook.final()) ?? []) {
        const body = attempt(() => gzipSync(payload, { level: 1 }))
        if (body !== undefined) requests.push({ url: hook.url, headers: hook.headers, body, until: now + ms, entry })
      }
    }
    if (requests.length === 0) return
    const outcomes = attempt(() => (poster ??= startPoster()).post(requests))
    requests.forEach(({ entry, url }, i) => {
      const outcome = outcomes?.[i] ?? Outcome.Pending
      if (outcome >= 200 && outcome < 300) return
      attempt(() => entry.hook.warn(`stats at exit not delivered to ${url}: ${describe(outcome, entry.hook.timeoutMs)}`))
    })
  }

  const onExit = (): void => sendNow()

  const onSignal = (signal: NodeJS.Signals): void => {
    // someone else handles it: if they end the process with process.exit, 'exit' sends
    if (process.listenerCount(signal) - 1 - signalExitListeners() > 0) return
    sendNow()
    removeSignals()
    // the default action again: the process ends by this signal, as it would without pathwise
    process.kill(process.pid, signal)
  }

  const signals = isMainThread && process.platform !== 'win32' ? SIGNALS : []
  const removeSignals = (): void => {
    for (const signal of signals) process.off(signal, onSignal)
  }
  process.on('beforeExit', onBeforeExit)
  process.on('exit', onExit)
  for (const signal of signals) process.on(signal, onSignal)
  return () => {
    process.off('beforeExit', onBeforeExit)
    process.off('exit', onExit)
    removeSignals()
    poster?.close()
  }
}

/**
 * The listeners signal-exit (v3 and v4, used by execa, write-file-atomic and many tools) holds
 * per signal. It ends the process only where its own listeners are the only ones, so counting it
 * as "someone else" would leave a signal that used to end the process ending nothing.
 */
function signalExitListeners(): number {
  const count = (emitter: unknown): number => {
    const n = (emitter as { count?: unknown } | undefined)?.count
    return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : 0
  }
  return count((process as { __signal_exit_emitter__?: unknown }).__signal_exit_emitter__) + count((globalThis as Record<symbol, unknown>)[Symbol.for('signal-exit emitter')])
}

function describe(outcome: number, timeoutMs: number): string {
  if (outcome === Outcome.Unreachable) return 'the Agent could not be reached'
  if (outcome === Outcome.Unconfirmed || outcome === Outcome.Pending) return `no answer within ${timeoutMs} ms (exitTimeoutMs)`
  return `status ${outcome}`
}

/** Exit listeners must never throw: Node's own handling of the exit comes after them. */
function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn()
  } catch {
    return undefined
  }
}
