// The manifest the tarball ships: package.json without what only this repository's development
// uses (`workspaces`; `scripts`; `devDependencies`, whose `"pathwise": "file:."` links the agent
// workspace's `pathwise` dependency to this checkout, there being no `pathwise` on the registry).
// `prepack` runs `clean` and `postpack` runs `restore`, which puts the development manifest back
// byte for byte and with its modification time (scripts/build.mjs compares times), so `npm pack`
// leaves the checkout as it found it.
//
// `npm publish` of this directory is refused (`prepublishOnly` runs `publish`): npm reads the
// manifest again after `postpack` and would send the development one to the registry. Publish the
// tarball instead: `npm pack`, then `npm publish pathwise-<version>.tgz` (no script runs then, and
// the manifest sent is the tarball's).
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const DEVELOPMENT_ONLY = ['workspaces', 'scripts', 'devDependencies']
const manifest = fileURLToPath(new URL('../package.json', import.meta.url))
// Outside what the tarball takes (`files`) and ignored by git.
const backup = fileURLToPath(new URL('../build/package.json.development', import.meta.url))

function clean() {
  const published = JSON.parse(readFileSync(manifest, 'utf8'))
  // Without these fields it is the published manifest already (a pack died before `postpack`), and
  // the backup holds the development one: kept for `restore`.
  if (DEVELOPMENT_ONLY.some((key) => key in published)) {
    mkdirSync(dirname(backup), { recursive: true })
    rmSync(backup, { force: true })
    // A second name for the file itself: its bytes and times stay as they are.
    linkSync(manifest, backup)
  }
  for (const key of DEVELOPMENT_ONLY) delete published[key]
  // Written beside it and renamed: a process reading package.json meanwhile sees one or the other whole.
  writeFileSync(`${manifest}.packing`, `${JSON.stringify(published, null, 2)}\n`)
  renameSync(`${manifest}.packing`, manifest)
}

function restore() {
  if (existsSync(backup)) renameSync(backup, manifest)
}

const command = process.argv[2]
if (command === 'clean') clean()
else if (command === 'restore') restore()
else if (command === 'publish') {
  console.error('pathwise: publish the packed tarball (npm pack, then npm publish pathwise-<version>.tgz): this directory would send its development manifest')
  process.exit(1)
} else {
  console.error('usage: node scripts/pack-manifest.mjs clean|restore|publish')
  process.exit(2)
}
