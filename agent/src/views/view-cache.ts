/**
 * Views reused rather than computed again: the page polls /api/summary every 2 s and `pathwise top`
 * every second, per range, and at 10,000 series a summary takes the main thread hundreds of ms. A
 * view is reused while what it was computed from is the same (the caller's fingerprint: the
 * store's counts and the range's buckets); and where the caller says the view is large (a store of
 * thousands of series), when computing it took more than SLOW_MS, for up to REUSE_FACTOR times as
 * long as it took (at most MAX_REUSE_MS, a bucket) whatever changed: the main thread then spends at
 * most 1 / REUSE_FACTOR of its time on views, however many ask. (A small view computed slowly only
 * because the machine was busy is not kept past a change.)
 */

/** A view computed faster than this is reused only while nothing changed. */
const SLOW_MS = 20
const REUSE_FACTOR = 10
const MAX_REUSE_MS = 10_000
/** Ranges kept at once (the page's and top's, a few more). */
const MAX_ENTRIES = 8

interface Entry<T> {
  fingerprint: string
  /** When it was computed (performance.now()), and how long that took. */
  at: number
  tookMs: number
  value: T
  /** Its JSON, once asked for: serializing a large view costs as much as a reuse does otherwise. */
  json?: string
}

export class ViewCache<T> {
  private readonly entries = new Map<number, Entry<T>>()

  /** The view under `key`, reused or computed; `large`: it may be reused a while after a change when slow to compute. */
  get(key: number, fingerprint: string, large: boolean, compute: () => T): T {
    return this.entry(key, fingerprint, large, compute).value
  }

  /** The same view as JSON text, serialized once per computation. */
  json(key: number, fingerprint: string, large: boolean, compute: () => T): string {
    const entry = this.entry(key, fingerprint, large, compute)
    return (entry.json ??= JSON.stringify(entry.value))
  }

  private entry(key: number, fingerprint: string, large: boolean, compute: () => T): Entry<T> {
    const now = performance.now()
    const hit = this.entries.get(key)
    const slow = large && hit !== undefined && hit.tookMs > SLOW_MS && now - hit.at < Math.min(MAX_REUSE_MS, REUSE_FACTOR * hit.tookMs)
    if (hit && (hit.fingerprint === fingerprint || slow)) return hit
    const value = compute()
    const entry = { fingerprint, at: now, tookMs: performance.now() - now, value }
    this.entries.delete(key)
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as number)
    this.entries.set(key, entry)
    return entry
  }
}
