import { copyFile } from 'node:fs/promises'
import { defineConfig } from 'tsup'

const common = { dts: true, sourcemap: true, target: 'es2022', outDir: 'dist' } as const

export default defineConfig([
  { ...common, entry: { index: 'bindings/index.ts' }, format: ['esm', 'cjs'] },
  // `pathwise/core`: the cores, off the main entry.
  { ...common, entry: { core: 'bindings/core.ts' }, format: ['esm', 'cjs'] },
  // `--import pathwise/register` (ESM: installs the import hook) and `-r pathwise/register` (CommonJS).
  { ...common, entry: { register: 'bindings/register/esm.ts' }, format: ['esm'] },
  { ...common, entry: { register: 'bindings/register/cjs.ts' }, format: ['cjs'] },
  // `pathwise/edge`: one self-contained ES module (workerd resolves no packages, so msgpack is
  // bundled in, and so are the Wasm bytes), with dist/pathwise.wasm beside it for runtimes that
  // only take Wasm as a module import.
  {
    ...common,
    entry: { edge: 'bindings/edge.ts' },
    format: ['esm'],
    platform: 'neutral',
    noExternal: ['@msgpack/msgpack'],
    esbuildOptions(options) {
      // the neutral platform reads no main fields, and msgpack has no `exports` map
      options.mainFields = ['module', 'main']
    },
    onSuccess: () => copyFile('build/pathwise.wasm', 'dist/pathwise.wasm'),
  },
  // The `pathwise` bin: `agent` and `top` load the agent package, which is not bundled in.
  { ...common, dts: false, entry: { cli: 'bindings/cli.ts' }, format: ['esm'], external: ['@pathwise/agent'] },
])
