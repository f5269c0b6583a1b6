#!/usr/bin/env node
// The `kyb` command. Runs the compiled CLI (npm ci / npm run build produce dist/).
import { main } from '../dist/cli/main.js';
main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`kyb: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
