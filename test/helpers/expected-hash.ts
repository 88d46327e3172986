/**
 * Pathway hashes computed independently of pathwise, with dd-trace's BigInt FNV-1 64, the way
 * dd-trace-py and dd-trace-go hash: tests compare what pathwise sends against these.
 */
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
export const { fnv64 } = require('dd-trace/packages/dd-trace/src/datastreams/fnv.js') as { fnv64(data: Buffer | string): bigint }

/** The pathway hash of a checkpoint of `service` in `env` with these edge tags under `parent`. */
export function expectedHash(service: string, env: string, tags: readonly string[], parent: bigint): bigint {
  const node = fnv64(Buffer.from(service + env + [...tags].sort().join(''), 'utf8'))
  const bytes = Buffer.alloc(16)
  bytes.writeBigUInt64LE(node, 0)
  bytes.writeBigUInt64LE(parent, 8)
  return fnv64(bytes)
}
