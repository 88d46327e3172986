import { Hook as RequireHook } from 'require-in-the-middle'
import { createDataStreamsFor } from '../processor/create.js'
import { nodePlatform } from '../node/platform.js'
import { kafkajsInstrumentation } from '../kafka/kafkajs.js'
import { confluentInstrumentation } from '../kafka/confluent.js'
import { sqsInstrumentation } from '../aws/sqs.js'
import { kinesisInstrumentation } from '../aws/kinesis.js'
import { snsInstrumentation } from '../aws/sns.js'
import { eventBridgeInstrumentation } from '../aws/eventbridge.js'
import { natsInstrumentation } from '../nats/connection.js'
import { instrumentHttpFromSettings } from '../http/hops.js'
import { amqplibPublishInstrumentation, amqplibReceiveInstrumentations } from '../rabbitmq/amqplib.js'
import { rheaInstrumentation } from '../rabbitmq/rhea.js'
import { bullmqInstrumentation } from '../bullmq/bullmq.js'
import type { DataStreams } from '../api/data-streams.js'
import type { Instrumentation } from '../instrument/instrumentation.js'
import { createLogger } from '../common/logger.js'
import { errorText, read } from '../common/input.js'
import { settingsOf } from '../instrument/settings.js'
import { excludedVersion } from './supported-versions.js'
import { autoInstrumentation, setAutoInstrumentation, type AutoInstrumentation } from './auto-global.js'

export const instrumentations: readonly Instrumentation[] = [
  kafkajsInstrumentation,
  confluentInstrumentation,
  sqsInstrumentation,
  kinesisInstrumentation,
  snsInstrumentation,
  eventBridgeInstrumentation,
  natsInstrumentation,
  amqplibPublishInstrumentation,
  ...amqplibReceiveInstrumentations,
  rheaInstrumentation,
  bullmqInstrumentation,
]

type ModuleHook = { unhook(): void }
/** A module hook's callback: require-in-the-middle and import-in-the-middle both pass the module's package directory. */
type OnModule = <T>(exports: T, name: string, baseDir?: string | void) => T
type HookFactory = (modules: string[], onModule: OnModule) => ModuleHook

/**
 * Patches the clients when the application loads them: require-in-the-middle for require(),
 * and, under --import, import-in-the-middle (passed in by the ESM entry) for import. The
 * configuration is resolved once, by the DataStreams created here: the instrumentations take
 * their settings from it. Returns undefined, and hooks nothing (esmHook is not called), when DSM is off.
 */
export function enableAutoInstrumentation(esmHook?: HookFactory): AutoInstrumentation | undefined {
  const existing = autoInstrumentation()
  if (existing !== undefined) return existing
  const dsm = createDataStreamsFor({}, nodePlatform())
  if (!dsm.enabled) return undefined

  // HTTP hops need no module: Node's diagnostics channels, with DD_DATA_STREAMS_HTTP_ENABLED=true.
  const undos: (() => void)[] = [instrumentHttpFromSettings(dsm)]
  const patched = new WeakSet<object>()
  const modules = instrumentations.map((i) => i.module)
  const onModule: OnModule = (exports, name, baseDir) => {
    undos.push(...patchModule(exports, name, dsm, patched, baseDir))
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

/**
 * Patches what the instrumentations of module `name` patch in its exports, once per exports
 * object (`patched`), if the version in `${baseDir}/package.json` is one they support; returns
 * the undos. Never throws: the application's import goes on whatever the module turns out to be.
 */
export function patchModule(exports: unknown, name: string, dsm: DataStreams, patched: WeakSet<object>, baseDir?: unknown): (() => void)[] {
  const target = unwrapNamespace(exports)
  if (target === null || patched.has(target)) return []
  patched.add(target)
  const undos: (() => void)[] = []
  for (const instrumentation of instrumentations) {
    if (instrumentation.module !== name) continue
    const excluded = excludedVersion(baseDir, instrumentation.supportedVersions)
    if (excluded !== undefined) {
      const log = createLogger(settingsOf(dsm).debug)
      log.debug(`${name} version ${excluded} is outside the versions pathwise instruments (${instrumentation.supportedVersions}): left as it is`)
      continue
    }
    try {
      undos.push(instrumentation.patch(target, dsm))
    } catch (err) {
      console.warn(`[pathwise] could not instrument ${name}: ${errorText(err)}`)
    }
  }
  return undos
}

/** A CommonJS module imported from ESM arrives as a namespace whose `default` is module.exports. */
function unwrapNamespace(exports: unknown): object | null {
  if (exports === null || typeof exports !== 'object') return null
  const inner = read(exports, 'default')
  if (read(exports, Symbol.toStringTag) === 'Module' && inner !== null && typeof inner === 'object') return inner
  return exports
}
