/**
 * `fcn setup` (also `npx fcn-torch setup`): what the package's install script does (libtorch,
 * then the prebuilt or a compiled addon), for package managers that do not run dependencies'
 * install scripts (pnpm 10, yarn with scripts disabled, npm with --ignore-scripts). It imports
 * nothing that loads the addon: it must run where the addon cannot load yet.
 */
import path from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { install } from '../setup/install';

export const setupCommand = new Command('setup')
  .description("set up libtorch and the addon, as the package's install script does (for pnpm, yarn, --ignore-scripts)")
  .option('--build-from-source', 'compile the addon even where the prebuilt one fits');

/** Runs `fcn setup` with the arguments after the command's name. */
export async function runSetup(argv: string[]): Promise<void> {
  const options = setupCommand.parse(argv, { from: 'user' }).opts();
  const root = path.resolve(__dirname, '..', '..', '..');
  await install(root, {
    buildFromSource: options.buildFromSource === true,
    log: (line) => process.stderr.write(`[fcn-torch] ${line}\n`),
  });
  process.stderr.write('[fcn-torch] set up: the package loads now\n');
}
