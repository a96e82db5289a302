#!/usr/bin/env node
/**
 * The `fcn` command. `fcn setup` runs before anything loads the native addon (it is what
 * makes the addon loadable); every other command is in ./program. User mistakes end in one
 * line on stderr and exit code 1.
 */
function fail(err: unknown): void {
  console.error(`fcn: ${(err as Error).message}`);
  process.exitCode = 1;
}

if (process.argv[2] === 'setup') {
  import('./setup.js').then(({ runSetup }) => runSetup(process.argv.slice(3))).catch(fail);
} else {
  import('./program.js').then(({ program }) => program.parseAsync(process.argv)).catch(fail);
}
