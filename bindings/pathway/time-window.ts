/**
 * The one place that decides whether a time may enter a pathway context: a time decoded from a
 * header, given as a checkpoint's timing, or read from a parent object. A time outside this window
 * (or not a finite number) makes the context count as absent: the checkpoint starts a new pathway
 * rather than turning a bogus start into an absurd latency.
 */

import { nowMs } from '../common/clock.js'

/** 2000-01-01T00:00:00Z: no pathway of a running system starts before this. */
export const MIN_TIME_MS = 946_684_800_000
/** Clocks of two hosts may disagree; a start further ahead of this host's clock is garbage. */
export const MAX_AHEAD_MS = 3_600_000

/** Whether `ms` (milliseconds since the epoch) is a plausible time for a host whose clock reads `now`. */
export function isSaneTime(ms: unknown, now: number): boolean {
  // written so that NaN fails both comparisons; no conversion of anything but a number (it runs code)
  return typeof ms === 'number' && ms >= MIN_TIME_MS && ms <= now + MAX_AHEAD_MS
}

/** A clock reading no later than now: the upper bound only grows with it, so a stale one is checked again. */
let lastNow = 0

/**
 * `isSaneTime` against this host's clock, for codecs that have no `now` at hand: the clock is read
 * only when a time is later than the last reading allows.
 */
export function isSaneTimeNow(ms: unknown): boolean {
  if (typeof ms !== 'number') return false
  if (ms >= MIN_TIME_MS && ms <= lastNow + MAX_AHEAD_MS) return true
  lastNow = nowMs()
  return isSaneTime(ms, lastNow)
}

/** The latest sane time by the last clock reading, or (`read`) by a new one: for codecs that check several times at once. */
export function latestSaneTime(read: boolean): number {
  if (read) lastNow = nowMs()
  return lastNow + MAX_AHEAD_MS
}
