/**
 * What the cases feed the implementations: the same service, edge tags and payload sizes, and
 * pathwise's processor set up for benchmarking. (Nothing of dd-trace is loaded from here, so
 * that the memory case measures pathwise without it.)
 */
import { gunzipSync, gzipSync } from 'node:zlib'
import type { Backend } from '../bindings/core/types.js'
import type { DataStreams } from '../bindings/api/data-streams.js'
import { createDataStreamsFor } from '../bindings/processor/create.js'
import type { Transport } from '../bindings/export/exporter.js'
import { nodePlatform } from '../bindings/node/platform.js'

export const SERVICE = 'bench-service'
export const ENV = 'bench'
export const PAYLOAD_BYTES = 100

export function produceTags(topic: string): string[] {
  return ['direction:out', `topic:${topic}`, 'type:kafka']
}

export function consumeTags(group: string, topic: string): string[] {
  return ['direction:in', `group:${group}`, `topic:${topic}`, 'type:kafka']
}

/** The Agent left out: gzip as the Node transport does it (level 1, here synchronously), and no request; `/info` answers nothing (a Datadog Agent's sketch form). */
export const agentlessTransport: Transport = {
  post: () => Promise.resolve(200),
  getJson: () => Promise.resolve(undefined),
  gzip: (data) => Promise.resolve(gzipSync(data, { level: 1 })),
  gunzip: (data) => Promise.resolve(gunzipSync(data)),
}

/** pathwise's Node processor (AsyncLocalStorage context), sending nowhere and with no exit hook. */
export function pathwise(core: Backend, flushIntervalMs = 0, transport = agentlessTransport): DataStreams {
  const platform = { ...nodePlatform(), transport, onExit: undefined }
  return createDataStreamsFor({ enabled: true, service: SERVICE, env: ENV, core, flushIntervalMs }, platform)
}

/** A deterministic stream of unsigned 32-bit values (hashes that look random). */
export function words(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s
  }
}
