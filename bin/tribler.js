#!/usr/bin/env node
// The `tribler` command: runs the built core (dist/). `npm start` builds it first.
import { existsSync } from 'node:fs'

const entry = new URL('../dist/cli/index.js', import.meta.url)
if (!existsSync(entry)) {
  process.stderr.write('tribler: the core is not built yet; run `npm run build` (or `npm start`)\n')
  process.exit(1)
}
const { main } = await import(entry.href)
process.exit(await main(process.argv.slice(2)))
