/**
 * `node --import pathwise/register app.mjs`: with DD_DATA_STREAMS_ENABLED=true, instruments the
 * clients the app imports or requires. With DSM off, no loader hook is installed at all.
 */
import { register } from 'node:module'
import { Hook as ImportHook, createAddHookMessageChannel } from 'import-in-the-middle'
import { enableAutoInstrumentation } from './auto.js'

let hooked: Promise<void> | undefined
// Called only when the automatic mode's configuration turns DSM on.
enableAutoInstrumentation((modules, onModule) => {
  // The loader then wraps only the modules hooked here, not every module of the app.
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel()
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions)
  const hook = new ImportHook(modules, onModule)
  hooked = waitForAllMessagesAcknowledged()
  return hook
})
await hooked
