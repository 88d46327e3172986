/**
 * rhea 3.x (AMQP 1.0): the wrappers of rhea-link.ts on the links of one container, connection,
 * session or link (instrumentRhea), or on rhea's Sender and Receiver classes (the automatic mode).
 */
import type { DataStreams } from '../api/data-streams.js'
import { undoAll, withOffSwitch, wrapMethod, type Instrumentation } from '../instrument/instrumentation.js'
import { classPrototype, read } from '../common/input.js'
import { claim, isClaimed } from './claims.js'
import { fail } from './log.js'
import { wrapDispatch, wrapSend, type LinkHooks } from './rhea-link.js'

// rhea's objects: `any` at this boundary, checked where read.
type AnyFn = (...args: any[]) => any

/**
 * Instruments the links made from `target` from now on: a container (`import rhea from 'rhea'` is
 * the default one; the connections its `connect` and `create_connection` make, and the containers
 * `create_container` makes), a connection (its sessions: every link on it, opened by either
 * side), a session, or a sender or receiver itself. A listening container's connections are
 * made inside rhea: instrument each in the container's 'connection_open' handler, before its
 * peer opens sessions. Returns the undo: the methods it wrapped are restored, and the links
 * instrumented meanwhile pass everything through. With DSM disabled nothing is changed.
 */
export function instrumentRhea(target: object, dsm: DataStreams): () => void {
  return withOffSwitch(dsm, (dsm, active) => {
    const hooks: LinkHooks = { dsm, active, standAside: () => false }
    try {
      return instrumentTarget(target, hooks)
    } catch (err) {
      fail('instrument', err)
      return () => {}
    }
  })
}

function instrumentTarget(target: unknown, hooks: LinkHooks): () => void {
  if (target === null || typeof target !== 'object' || !claim(target)) return () => {}
  const has = (name: string) => typeof read(target, name) === 'function'
  const methods = target as Record<string, AnyFn>
  const each = (made: unknown) => void instrumentTarget(made, hooks)
  // A sender has next_tag, a receiver set_credit_window; a session makes links, a connection sessions, a container connections.
  if (has('next_tag')) return wrapSend(target, hooks)
  if (has('set_credit_window')) return wrapDispatch(target, hooks)
  if (has('create_link')) return onCreate(methods, ['create_link'], hooks, each)
  if (has('create_session')) return onCreate(methods, ['create_session'], hooks, each)
  return onCreate(methods, ['connect', 'create_connection', 'create_container'], hooks, each)
}

/** Wraps methods that return what they make (a connection, a session, a link), which is then instrumented. */
function onCreate(target: Record<string, AnyFn>, names: string[], hooks: LinkHooks, instrument: (made: unknown) => void): () => void {
  return undoAll(
    names.map((name) =>
      wrapMethod(target, name, (create) =>
        function (this: unknown) {
          const made = create.apply(this, arguments as unknown as unknown[])
          try {
            if (hooks.active()) instrument(made)
          } catch (err) {
            fail(`instrument ${name}`, err)
          }
          return made
        },
      ),
    ),
  )
}

/** The automatic mode: rhea's Sender and Receiver classes, whose wrappers stand aside for links instrumented explicitly (claims.ts). */
export const rheaInstrumentation: Instrumentation = {
  module: 'rhea/lib/link',
  supportedVersions: '>=3.0.0 <4',
  patch(exports, dsm) {
    const sender = classPrototype(exports, 'Sender')
    const receiver = classPrototype(exports, 'Receiver')
    return withOffSwitch(dsm, (dsm, active) => {
      const hooks: LinkHooks = { dsm, active, standAside: isClaimed }
      return undoAll([sender === undefined ? () => {} : wrapSend(sender, hooks), receiver === undefined ? () => {} : wrapDispatch(receiver, hooks)])
    })
  },
}
