import { AsyncLocalStorage } from 'node:async_hooks'
import type { PathwayContext } from '../pathway/context.js'
import type { ContextStore, Platform } from '../api/data-streams.js'
import { nodeTransport } from '../export/node-transport.js'
import { hold } from '../export/unref.js'
import { onExit } from './exit-hooks.js'
import { processTags } from './process-tags.js'

/**
 * One store for every instance and every copy of pathwise in the process (under pathwise/register
 * the register bundle and the app's own import are two copies): a message's context is the flow's.
 */
const STORAGE = Symbol.for('pathwise.context-storage')
const storage: AsyncLocalStorage<PathwayContext> = ((globalThis as Record<symbol, unknown>)[STORAGE] as AsyncLocalStorage<PathwayContext> | undefined) ??
  ((globalThis as Record<symbol, unknown>)[STORAGE] = new AsyncLocalStorage<PathwayContext>())

export const asyncLocalStore: ContextStore = {
  get: () => storage.getStore(),
  enter: (ctx) => storage.enterWith(ctx),
  run: (ctx, fn) => (ctx === undefined ? storage.exit(fn) : storage.run(ctx, fn)),
}

export function nodePlatform(): Platform {
  return { env: process.env, store: asyncLocalStore, transport: nodeTransport, onExit, hold, processTags }
}
