#!/usr/bin/env node
// `npm install`'s script: sets up libtorch and the addon (src/setup/install.ts). A packed
// package ships its compiled TypeScript; in a development checkout (devDependencies are
// installed by then) it is compiled first. Errors end in one line naming what to do.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const log = (line) => process.stderr.write(`[fcn-torch] ${line}\n`);
const entry = path.join(root, 'dist', 'src', 'setup', 'install.js');

try {
  if (!fs.existsSync(entry) && fs.existsSync(path.join(root, 'tsconfig.json'))) {
    let tsc = null;
    try {
      tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
    } catch {}
    if (tsc) execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
  }
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: the package was not built (npm run build)`);
  const { install } = require(entry);
  const buildFromSource = ['true', '1', ''].includes(process.env.npm_config_build_from_source ?? 'no');
  await install(root, { buildFromSource, log });
} catch (err) {
  log(`error: ${err.message.split('\n')[0]}`);
  process.exit(1);
}
