import { Hook as RequireHook } from 'require-in-the-middle'
import { createDataStreams } from '../index.js'
import { kafkajsInstrumentation } from '../kafka/kafkajs.js'
import { confluentInstrumentation } from '../kafka/confluent.js'
import { sqsInstrumentation } from '../aws/sqs.js'
import { kinesisInstrumentation } from '../aws/kinesis.js'
import type { Instrumentation } from './instrumentation.js'
import { autoInstrumentation, setAutoInstrumentation, type AutoInstrumentation } from './auto-global.js'

export const instrumentations: readonly Instrumentation[] = [kafkajsInstrumentation, confluentInstrumentation, sqsInstrumentation, kinesisInstrumentation]

type ModuleHook = { unhook(): void }
type HookFactory = (modules: string[], onModule: <T>(exports: T, name: string) => T) => ModuleHook

/**
 * Patches the clients when the application loads them: require-in-the-middle for require(),
 * and, under --import, import-in-the-middle (passed in by the ESM entry) for import.
 * Returns undefined, and hooks nothing, when DSM is off.
 */
export function enableAutoInstrumentation(esmHook?: HookFactory): AutoInstrumentation | undefined {
  const existing = autoInstrumentation()
  if (existing !== undefined) return existing
  const dsm = createDataStreams()
  if (!dsm.enabled) return undefined

  const undos: (() => void)[] = []
  const patched = new WeakSet<object>()
  const modules = instrumentations.map((i) => i.module)
  const onModule = <T>(exports: T, name: string): T => {
    const target = unwrapNamespace(exports)
    if (target === null || patched.has(target)) return exports
    patched.add(target)
    for (const instrumentation of instrumentations) {
      if (instrumentation.module !== name) continue
      try {
        undos.push(instrumentation.patch(target, dsm))
      } catch (err) {
        console.warn(`[pathwise] could not instrument ${name}: ${(err as Error).message}`)
      }
    }
    return exports
  }
  const hooks: ModuleHook[] = [new RequireHook(modules, onModule)]
  if (esmHook !== undefined) hooks.push(esmHook(modules, onModule))

  const auto: AutoInstrumentation = {
    dsm,
    disable() {
      for (const hook of hooks) hook.unhook()
      for (let i = undos.length - 1; i >= 0; i--) undos[i]()
      undos.length = 0
      setAutoInstrumentation(undefined)
    },
  }
  setAutoInstrumentation(auto)
  return auto
}

/** A CommonJS module imported from ESM arrives as a namespace whose `default` is module.exports. */
function unwrapNamespace(exports: unknown): object | null {
  if (exports === null || typeof exports !== 'object') return null
  const ns = exports as { default?: unknown; [Symbol.toStringTag]?: string }
  if (ns[Symbol.toStringTag] === 'Module' && ns.default !== null && typeof ns.default === 'object') return ns.default
  return exports
}
