/**
 * What `npm install` does after libtorch is in place (src/setup/libtorch.ts): use the addon
 * prebuilt for this platform when it was built against the same libtorch (version and
 * CPU/CUDA flavour), else compile it with cmake-js, printing what it does. In an installed
 * package (not a development checkout) the compile's intermediate files, precompiled header
 * included, are removed afterwards; the native tests are built by `npm test` only.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type LibtorchInfo, type Log, libtorchInfo, setupLibtorch } from './libtorch';

/** What a prebuilt addon was built against: the file beside it in prebuilds/PLATFORM-ARCH/. */
export interface PrebuildInfo extends LibtorchInfo {
  /** The Node-API version the addon is built for. */
  napi: number;
}

/** prebuilds/PLATFORM-ARCH of the package at root. */
export const prebuildDir = (root: string) => path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);

/** Why the prebuilt addon cannot serve this libtorch, or null when it can. */
export function prebuildMismatch(root: string, libtorch: LibtorchInfo): string | null {
  const dir = prebuildDir(root);
  const infoFile = path.join(dir, 'libtorch.json');
  if (!fs.existsSync(path.join(dir, 'fcn_torch.node')) || !fs.existsSync(infoFile)) {
    return `no prebuilt addon for ${process.platform}-${process.arch}`;
  }
  const built = JSON.parse(fs.readFileSync(infoFile, 'utf8')) as PrebuildInfo;
  const flavour = (i: LibtorchInfo) => `libtorch ${i.version} (${i.cuda ? 'CUDA' : 'CPU'})`;
  if (built.version !== libtorch.version || built.cuda !== libtorch.cuda) {
    return `the prebuilt addon is for ${flavour(built)}, this libtorch is ${flavour(libtorch)}`;
  }
  return null;
}

/** Compiles the addon with cmake-js (only the addon's target). */
function compile(root: string, developing: boolean, log: Log): void {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  log('compiling the addon with cmake-js (a few minutes; --build-from-source or a libtorch of another version)');
  const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build-cmake', '--target', 'fcn_torch'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (r.status !== 0) {
    throw new Error(
      'compiling the addon failed (see above): it needs cmake >= 3.19 and a C++20 compiler (g++ >= 10 or clang >= 12)',
    );
  }
  if (!developing) {
    // Only the addon stays: the intermediate files (a precompiled header of ~700 MB) go.
    for (const entry of fs.readdirSync(path.join(root, 'build-cmake'))) {
      if (entry !== 'Release') fs.rmSync(path.join(root, 'build-cmake', entry), { recursive: true, force: true });
    }
  }
}

/**
 * The install: libtorch, then the prebuilt addon or a compiled one. `buildFromSource`
 * (npm's --build-from-source) always compiles.
 */
export async function install(root: string, options: { buildFromSource: boolean; log: Log }): Promise<void> {
  const { log } = options;
  const libtorch = await setupLibtorch(root, log);
  const info = libtorchInfo(libtorch);
  const developing = fs.existsSync(path.join(root, 'test'));
  const mismatch = options.buildFromSource ? 'asked to build from source' : prebuildMismatch(root, info);
  if (mismatch === null) {
    log(`using the prebuilt addon (${path.relative(root, prebuildDir(root))}) for libtorch ${info.version}`);
    return;
  }
  log(mismatch);
  compile(root, developing, log);
}
