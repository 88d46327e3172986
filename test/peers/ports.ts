import { createServer } from 'node:net'

/**
 * A TCP port on 127.0.0.1 that nothing listens on right now. The OS picks it
 * (port 0), so parallel test files don't collide on fixed numbers.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      if (address === null || typeof address === 'string') {
        server.close()
        reject(new Error('no TCP address for the probe server'))
        return
      }
      server.close(() => resolve(address.port))
    })
  })
}
