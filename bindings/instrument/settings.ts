/** What an instrumentation reads of the DataStreams it is handed: whether it is an enabled one, and its settings. */
import type { InstrumentationSettings } from '../api/config.js'
import type { DataStreams } from '../api/data-streams.js'
import { items, read } from '../common/input.js'

/**
 * The DataStreams a wrapper was handed, if it is an enabled one; null for anything else, and then
 * nothing is instrumented. Its other methods are called under the wrappers' guards; runWithContext
 * is not (it runs the application's handler), so it must be there.
 */
export function enabledDataStreams(dsm: unknown): DataStreams | null {
  return read(dsm, 'enabled') === true && typeof read(dsm, 'runWithContext') === 'function' ? (dsm as DataStreams) : null
}

/**
 * The settings of a DataStreams an instrumentation was handed (its `settings`); the defaults for
 * one that has none (a copy of pathwise from before them, another implementation).
 */
export function settingsOf(dsm: unknown): InstrumentationSettings {
  const settings = read(dsm, 'settings')
  return {
    debug: read(settings, 'debug') === true,
    kafkaHeaderInjection: read(settings, 'kafkaHeaderInjection') !== false,
    kinesisJsonContext: read(settings, 'kinesisJsonContext') === true,
    httpEnabled: read(settings, 'httpEnabled') === true,
    httpAllowedHosts: hostsOf(read(settings, 'httpAllowedHosts')),
    flushIntervalMs: flushInterval(read(settings, 'flushIntervalMs')),
  }
}

/** The allowed hosts of settings from any copy of pathwise: its strings, or none. */
function hostsOf(value: unknown): readonly string[] {
  const list = items(value)
  return list === undefined ? [] : list.filter((h): h is string => typeof h === 'string')
}

/** A flush interval in ms (0: none), or the default 10 s for anything else. */
function flushInterval(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : 10_000
}
