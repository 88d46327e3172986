/**
 * How pathwise follows the walks over an array a client handed over
 * (bindings/instrument/message-iteration.ts), as seen from outside the walk: V8's fast path for
 * spreading and iterating arrays stays on for the whole process (an array with an own
 * Symbol.iterator turns it off), and the followed array looks like the array it was to everything
 * but its prototype. What each walk makes current is tested with the transports (kafka-batch,
 * aws-sqs) and in the hostile suite.
 */
import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { test } from 'node:test'
import { createDataStreams } from '../bindings/index.js'
import { followWalks } from '../bindings/instrument/message-iteration.js'

setFlagsFromString('--allow-natives-syntax')
const iteratorFastPath = new Function('return %ArrayIteratorProtector()') as () => boolean

test("following an array's walks leaves V8's array iterator fast path on for the process", async () => {
  const dsm = createDataStreams({ enabled: true, service: 'walks', flushIntervalMs: 0 })
  assert.equal(iteratorFastPath(), true, 'the fast path was off before pathwise')
  const messages = [{ offset: '1' }, { offset: '2' }]
  assert.ok(followWalks(dsm, messages) !== undefined, 'the array was not followed')
  assert.deepEqual([...messages].map((m) => m.offset), ['1', '2'])
  for (const m of messages) assert.ok(m.offset)
  assert.equal(iteratorFastPath(), true, 'following an array turned the fast path off')
  await dsm.shutdown()
})

test('a followed array gains no own property, stays an Array, and its copies are plain arrays', async () => {
  const dsm = createDataStreams({ enabled: true, service: 'walks', flushIntervalMs: 0 })
  const messages = [{ value: 'a' }, { value: 'b' }, { value: 'c' }]
  const before = Reflect.ownKeys(messages)
  followWalks(dsm, messages)
  assert.deepEqual(Reflect.ownKeys(messages), before)
  assert.ok(Array.isArray(messages) && messages instanceof Array)
  assert.equal(messages.constructor, Array)
  assert.equal(JSON.stringify(messages), '[{"value":"a"},{"value":"b"},{"value":"c"}]')
  for (const copy of [messages.map((m) => m), messages.filter(() => true), messages.slice(), [...messages], Array.from(messages), structuredClone(messages)]) {
    assert.equal(Object.getPrototypeOf(copy), Array.prototype)
    assert.deepEqual(copy.map((m) => m.value), ['a', 'b', 'c'])
  }
  assert.equal(followWalks(dsm, messages), undefined, 'an array already followed was followed again')
  await dsm.shutdown()
})
