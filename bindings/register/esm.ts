/**
 * `node --import pathwise/register app.mjs`: with DD_DATA_STREAMS_ENABLED=true, instruments the
 * clients the app imports or requires. With DSM off, no loader hook is installed at all.
 */
import { register } from 'node:module'
import { Hook as ImportHook, createAddHookMessageChannel } from 'import-in-the-middle'
import { resolveConfig } from '../config.js'
import { enableAutoInstrumentation } from '../instrument/auto.js'

if (resolveConfig({}, process.env).enabled) {
  // The loader then wraps only the modules hooked below, not every module of the app.
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel()
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions)
  enableAutoInstrumentation((modules, onModule) => new ImportHook(modules, onModule))
  await waitForAllMessagesAcknowledged()
}
