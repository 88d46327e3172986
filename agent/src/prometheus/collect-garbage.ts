import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/**
 * A full garbage collection, for the fleet view once it has dropped a large answer: V8 gives a
 * heap's memory back at its next full collection, which an agent idle after one large view may
 * not run for minutes (its memory reducer starts only after one). `global.gc` is what Node offers
 * for this; it is made available here rather than asking users for `--expose-gc`.
 */

let gc: (() => void) | null | undefined

export function collectGarbage(): void {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc')
      gc = runInNewContext('gc') as () => void
    } catch {
      gc = null
    }
  }
  gc?.()
}
