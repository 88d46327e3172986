import { connect, createServer } from 'node:net'

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

/** `count` different free ports, for a peer that listens on several. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < count) ports.add(await freePort())
  return [...ports]
}

/**
 * Whether something accepts TCP connections on host:port. Linux routes all of
 * 127/8 to loopback, so a wildcard (0.0.0.0) listener also accepts on
 * 127.0.0.2 and a 127.0.0.1-only one does not.
 */
export function accepts(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host)
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}
