// Runs the `kyb` command from source (tests spawn it as a real process: node --import tsx kyb-entry.ts ...).
import { main } from '../../src/cli/main.js';

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`kyb: ${(e as Error)?.stack ?? e}\n`);
  process.exit(1);
});
