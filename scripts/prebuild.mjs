#!/usr/bin/env node
// `npm pack`'s script (prepack): puts the compiled addon into prebuilds/PLATFORM-ARCH/ with
// the libtorch it was built against (libtorch.json), so that installing the tarball needs no
// compiler when the machine has that libtorch. Builds it first when it is not built.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { libtorchInfo } = require(path.join(root, 'dist', 'src', 'setup', 'libtorch.js'));
const { prebuildDir } = require(path.join(root, 'dist', 'src', 'setup', 'install.js'));

const addon = path.join(root, 'build-cmake', 'Release', 'fcn_torch.node');
if (!fs.existsSync(addon)) {
  execFileSync('npx', ['cmake-js', 'compile', '--out', 'build-cmake', '--target', 'fcn_torch'], {
    cwd: root,
    stdio: 'inherit',
  });
}
// The shipped addon may look for libtorch only relative to itself: an absolute RUNPATH entry
// would be searched on every user's machine (a folder there, or one anyone can create).
const runpath = execFileSync('readelf', ['-d', addon], { encoding: 'utf8' }).match(/\((?:RUNPATH|RPATH)\).*\[(.*)\]/);
const absolute = (runpath?.[1] ?? '').split(':').filter((entry) => entry && !entry.startsWith('$ORIGIN'));
if (absolute.length > 0) {
  throw new Error(
    `${addon} searches ${absolute.join(', ')} for libtorch; only $ORIGIN-relative entries may ship ` +
      '(build it against deps/libtorch: npx cmake-js compile --out build-cmake)',
  );
}
const dir = prebuildDir(root);
fs.mkdirSync(dir, { recursive: true });
fs.copyFileSync(addon, path.join(dir, 'fcn_torch.node'));
const info = { ...libtorchInfo(path.join(root, 'deps', 'libtorch')), napi: 8 };
fs.writeFileSync(path.join(dir, 'libtorch.json'), `${JSON.stringify(info, null, 2)}\n`);
process.stderr.write(
  `[fcn-torch] prebuilt addon for libtorch ${info.version} (${info.cuda ? 'CUDA' : 'CPU'}) in ${dir}\n`,
);
