import { Worker, type WorkerOptions } from 'node:worker_threads'

/**
 * Starts one of the agent's worker threads (intake/decode-worker, model/persistence-writer) from
 * `base`, its module's URL without an extension: `.js` in dist/, where every module sits beside the
 * others; `.ts` from source, where the worker has to load tsx itself (Node 20 does not pass the
 * parent's --import on to workers).
 */
export function startWorker(base: URL, options: WorkerOptions): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL(`${base.href}.js`), options)
  const source = `${base.href}.ts`
  return new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}) })`, { ...options, eval: true })
}
