'use strict'
// Preloaded with `node --require` into peer servers we don't control
// (fauxqs, kinesis-local), which both listen on 0.0.0.0 with no setting to
// change it: this moves wildcard listens to 127.0.0.1, and ends the server
// when its stdin closes, which happens when the test process goes away, even
// if that process is killed without running any cleanup.

const net = require('node:net')

const LOOPBACK = '127.0.0.1'
const isWildcard = (host) => host === undefined || host === null || host === '' || host === '0.0.0.0' || host === '::'
const isPort = (value) => typeof value === 'number' || (typeof value === 'string' && /^\d+$/.test(value))

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function listenOnLoopback(...args) {
  const [first] = args
  if (isPort(first)) {
    // listen(port[, host][, backlog][, callback])
    if (typeof args[1] !== 'string') args.splice(1, 0, LOOPBACK)
    else if (isWildcard(args[1])) args[1] = LOOPBACK
  } else if (first !== null && typeof first === 'object' && 'port' in first && isWildcard(first.host)) {
    args[0] = { ...first, host: LOOPBACK }
  }
  return listen.apply(this, args)
}

// Kept from before the server loads: kinesis-local (a cats-effect app)
// replaces process.exit with a graceful shutdown that takes seconds.
const exit = process.exit
process.stdin.on('end', () => exit.call(process, 0))
process.stdin.resume()
