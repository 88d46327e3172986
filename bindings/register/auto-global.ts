import type { DataStreams } from '../api/data-streams.js'

export interface AutoInstrumentation {
  readonly dsm: DataStreams
  /** Removes every patch and module hook. */
  disable(): void
}

/** Shared by every copy of pathwise in a process (the register bundle, the app's ESM and CJS imports). */
const GLOBAL = Symbol.for('pathwise.auto')
type Global = { [GLOBAL]?: AutoInstrumentation }

/** The automatic instrumentation started by `pathwise/register`, if it is on. */
export function autoInstrumentation(): AutoInstrumentation | undefined {
  return (globalThis as Global)[GLOBAL]
}

export function setAutoInstrumentation(auto: AutoInstrumentation | undefined): void {
  if (auto === undefined) delete (globalThis as Global)[GLOBAL]
  else (globalThis as Global)[GLOBAL] = auto
}
