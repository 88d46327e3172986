/** The factory of every build's DataStreams: the processor, or its disabled twin when DSM is off. */
import { resolveConfig } from '../api/config.js'
import type { DataStreams, Platform } from '../api/data-streams.js'
import { DisabledDataStreams } from './disabled.js'
import { DataStreamsProcessor } from './processor.js'

/** Never throws, whatever `options` is: what cannot be used falls back to the environment, then the defaults. */
export function createDataStreamsFor(options: unknown, platform: Platform, defaults?: { flushIntervalMs?: number }): DataStreams {
  const config = resolveConfig(options, platform.env, defaults)
  return config.enabled ? new DataStreamsProcessor(config, platform) : new DisabledDataStreams(config)
}
