import { defineConfig } from 'tsup'

const common = { dts: true, sourcemap: true, target: 'es2022', outDir: 'dist' } as const

export default defineConfig([
  { ...common, entry: { index: 'bindings/index.ts' }, format: ['esm', 'cjs'] },
  // `--import pathwise/register` (ESM: installs the import hook) and `-r pathwise/register` (CommonJS).
  { ...common, entry: { register: 'bindings/register/esm.ts' }, format: ['esm'] },
  { ...common, entry: { register: 'bindings/register/cjs.ts' }, format: ['cjs'] },
])
