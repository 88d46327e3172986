/**
 * Backlog keys made once (processor/backlogs.ts): a key asked for again is the one made before,
 * keys differing in any part are apart, the tags are what the maker gave, and a cache that starts
 * over (past MAX_BACKLOG_KEYS) makes the same keys again; the buckets keep the highest offset per key.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { BacklogKeys, Backlogs, MAX_BACKLOG_KEYS } from '../bindings/processor/backlogs.js'

const part = fc.constantFrom('', 'a', 'b', 'a,b', ',', 'topic:a', '0')
const parts = fc.tuple(fc.constantFrom('kafka_produce', 'kafka_commit'), part, part, fc.integer({ min: -1, max: 3 }), part)
const tagsOf = ([kind, a, b, p, c]: [string, string, string, number, string]) => [kind, a, b, String(p), c].map((x, i) => `${i}=${x}`)

test('a backlog key is made once per distinct parts, with the tags its maker gave', () => {
  fc.assert(
    fc.property(fc.array(parts, { minLength: 1, maxLength: 40 }), (list) => {
      const keys = new BacklogKeys()
      const seen = new Map<string, unknown>()
      for (const p of list) {
        let made = 0
        const key = keys.get(...p, () => (made++, tagsOf(p)))
        const id = JSON.stringify(p)
        assert.deepEqual(key.tags, tagsOf(p))
        assert.equal(key.key, tagsOf(p).join(','))
        if (seen.has(id)) assert.equal(key, seen.get(id), 'the key made before')
        else assert.equal(made, 1)
        seen.set(id, key)
      }
      // Keys of different parts are different objects, even where their tags would join alike.
      assert.equal(new Set(seen.values()).size, seen.size)
    }),
  )
})

test('past MAX_BACKLOG_KEYS the cache starts over and makes the same keys again', () => {
  const keys = new BacklogKeys()
  const first = keys.get('kafka_produce', 'orders', '', 0, '', () => ['type:kafka_produce', 'topic:orders', 'partition:0'])
  for (let i = 0; i < MAX_BACKLOG_KEYS + 5; i++) keys.get('kafka_produce', `t${i}`, '', 0, '', () => [`topic:t${i}`])
  let made = 0
  const again = keys.get('kafka_produce', 'orders', '', 0, '', () => (made++, ['type:kafka_produce', 'topic:orders', 'partition:0']))
  assert.equal(made, 1, 'made again after the cache started over')
  assert.notEqual(again, first)
  assert.deepEqual([again.tags, again.key], [first.tags, first.key])

  // Both objects name the same backlog in a bucket.
  const backlogs = new Backlogs()
  backlogs.track(7, first, 10)
  backlogs.track(7, again, 12)
  backlogs.track(7, first, 11)
  assert.deepEqual([...backlogs.drain(8).get(7)!], [{ tags: first.tags, value: 12 }])
})
