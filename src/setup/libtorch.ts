/**
 * Finds or fetches the libtorch the addon links with, and makes it `deps/libtorch` (run by
 * `npm install`, before anything is compiled). The order, first match wins:
 *   1. `$LIBTORCH`: an unpacked libtorch (lib/, include/, share/cmake/Torch).
 *   2. An importable Python `torch` (its package folder holds the same tree).
 *   3. The shared cache (`$FCN_TORCH_CACHE`, default `~/.cache/fcn-torch`): a libtorch that an
 *      earlier install of any project unpacked.
 *   4. `$LIBTORCH_ARCHIVE`: a libtorch zip (the official archive, or a torch wheel), as a
 *      local path or a URL (with `$LIBTORCH_ARCHIVE_SHA256` to check it).
 *   5. The torch wheel that `pip download torch==2.13.0+cpu --no-deps` resolves (pip's index;
 *      on machines with a local wheelhouse, no network).
 *   6. The pinned torch wheel, downloaded over HTTPS (progress bar, SHA-256 checked); no
 *      Python needed. `$FCN_TORCH_LIBTORCH_URL` and `$FCN_TORCH_LIBTORCH_SHA256` point it at a
 *      mirror.
 * Steps 3-6 unpack into the cache (atomically: into a temporary folder, then renamed) and
 * `deps/libtorch` links to it, so that every project shares one libtorch (about 1 GB);
 * downloaded archives are deleted once unpacked.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { downloadVerified, fileDigest } from '../download';

/** The libtorch this package is built and tested against: the CPU torch wheel (a zip). */
export const PINNED_LIBTORCH = {
  version: '2.13.0+cpu',
  url: 'https://download.pytorch.org/whl/cpu/torch-2.13.0%2Bcpu-cp311-cp311-manylinux_2_28_x86_64.whl',
  sha256: '6746dbcbeb526eb61330b76b41ff1b4eb848951103a892eeb080dfa2b264667b',
} as const;

/** The version and flavour of a libtorch tree, from its headers and libraries. */
export interface LibtorchInfo {
  /** "2.13.0" */
  version: string;
  /** Whether it is a CUDA build (it has libtorch_cuda). */
  cuda: boolean;
}

/** Where to say what happens. */
export type Log = (line: string) => void;

/** True when dir is a usable libtorch tree. */
export function isLibtorch(dir: string): boolean {
  return (
    fs.existsSync(path.join(dir, 'share', 'cmake', 'Torch', 'TorchConfig.cmake')) &&
    fs.existsSync(path.join(dir, 'include', 'torch')) &&
    fs.existsSync(path.join(dir, 'lib'))
  );
}

/** The version and flavour of the libtorch at dir. */
export function libtorchInfo(dir: string): LibtorchInfo {
  const headers = ['include/torch/headeronly/version.h', 'include/torch/csrc/api/include/torch/version.h'];
  for (const header of headers.map((h) => path.join(dir, h))) {
    if (!fs.existsSync(header)) continue;
    const text = fs.readFileSync(header, 'utf8');
    const part = (name: string) => /(\d+)/.exec(text.split(`#define TORCH_VERSION_${name}`)[1] ?? '')?.[1];
    const [major, minor, patch] = [part('MAJOR'), part('MINOR'), part('PATCH')];
    if (major && minor && patch) {
      return { version: `${major}.${minor}.${patch}`, cuda: fs.existsSync(path.join(dir, 'lib', 'libtorch_cuda.so')) };
    }
  }
  throw new Error(`'${dir}' has no torch version header`);
}

/** The folder shared by every project's install: `$FCN_TORCH_CACHE`, else `~/.cache/fcn-torch`. */
export function cacheRoot(): string {
  return (
    process.env.FCN_TORCH_CACHE ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'fcn-torch')
  );
}

/**
 * Unpacks the libtorch in a zip (the members under `prefix/`: `torch/` in a wheel, `libtorch/`
 * in the official archive; only lib, include, share and bin) into dest, atomically: nothing
 * half-unpacked ever has the name dest. Entries that would land outside dest are refused.
 */
export async function unpackLibtorch(zipFile: string, prefix: string, dest: string): Promise<void> {
  const partial = `${dest}.${process.pid}.partial`;
  fs.rmSync(partial, { recursive: true, force: true });
  const zip = await yauzl.openPromise(zipFile, { lazyEntries: true });
  try {
    for await (const entry of zip.eachEntry()) {
      if (!entry.fileName.startsWith(`${prefix}/`)) continue;
      const inside = entry.fileName.slice(prefix.length + 1);
      if (!['lib', 'include', 'share', 'bin'].includes(inside.split('/')[0])) continue;
      const out = path.resolve(partial, inside);
      if (!out.startsWith(`${path.resolve(partial)}${path.sep}`)) {
        throw new Error(`'${zipFile}' holds '${entry.fileName}', which would land outside the libtorch folder`);
      }
      if (entry.fileName.endsWith('/')) {
        fs.mkdirSync(out, { recursive: true });
        continue;
      }
      fs.mkdirSync(path.dirname(out), { recursive: true });
      const mode = (entry.externalFileAttributes >>> 16) & 0o777;
      await pipeline(await zip.openReadStreamPromise(entry), fs.createWriteStream(out, { mode: mode || 0o644 }));
    }
  } finally {
    zip.close();
  }
  if (!isLibtorch(partial)) {
    fs.rmSync(partial, { recursive: true, force: true });
    throw new Error(`'${zipFile}' holds no libtorch under ${prefix}/ (no share/cmake/Torch/TorchConfig.cmake)`);
  }
  fs.rmSync(dest, { recursive: true, force: true });
  fs.renameSync(partial, dest);
}

/** A zip's libtorch prefix: `torch` in a wheel, `libtorch` in the official archive. */
async function prefixOf(zipFile: string): Promise<string> {
  const zip = await yauzl.openPromise(zipFile, { lazyEntries: true });
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName.startsWith('libtorch/')) return 'libtorch';
      if (entry.fileName.startsWith('torch/')) return 'torch';
    }
  } finally {
    zip.close();
  }
  throw new Error(`'${zipFile}' holds neither libtorch/ nor torch/`);
}

/** Makes deps/libtorch (in packageRoot) a link to dir. */
function linkDeps(packageRoot: string, dir: string, how: string, log: Log): string {
  const deps = path.join(packageRoot, 'deps');
  const target = path.join(deps, 'libtorch');
  fs.mkdirSync(deps, { recursive: true });
  fs.rmSync(target, { recursive: true, force: true });
  fs.symlinkSync(path.resolve(dir), target, 'dir');
  log(`using ${how}: ${path.resolve(dir)}`);
  return target;
}

function fromPython(log: Log): string | null {
  const python = process.env.PYTHON ?? 'python3';
  const r = spawnSync(
    python,
    ['-c', 'import os, torch; print(os.path.dirname(torch.__file__)); print(torch.__version__)'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) {
    log(`no importable Python torch (${python})`);
    return null;
  }
  const [dir, version] = r.stdout.trim().split('\n');
  if (!isLibtorch(dir)) {
    log(`Python torch ${version} at ${dir} has no C++ tree; skipped`);
    return null;
  }
  return dir;
}

/** The wheel that pip resolves for the pinned version, into a temporary folder; null when pip cannot. */
function fromPip(tmp: string, log: Log): string | null {
  const python = process.env.PYTHON ?? 'python3';
  const spec = `torch==${PINNED_LIBTORCH.version}`;
  log(`pip download ${spec}`);
  const r = spawnSync(
    python,
    ['-m', 'pip', 'download', spec, '--no-deps', '--retries', '0', '--timeout', '30', '-d', tmp],
    { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
  );
  const wheel = fs.readdirSync(tmp).find((f) => f.startsWith(`torch-${PINNED_LIBTORCH.version}-`));
  if (r.status !== 0 || !wheel) {
    log(`pip download ${spec} failed${r.error ? ` (${r.error.message})` : ''}`);
    return null;
  }
  return path.join(tmp, wheel);
}

/** A local path or URL of a zip, checked by SHA-256 when one is given, as a local file. */
async function fetchArchive(source: string, sha256: string | undefined, tmp: string): Promise<string> {
  if (!/^https?:\/\//.test(source)) {
    if (!fs.existsSync(source)) throw new Error(`no file at '${source}'`);
    if (sha256 && (await fileDigest(source, 'sha256')) !== sha256.toLowerCase()) {
      throw new Error(`'${source}' does not have the SHA-256 ${sha256}`);
    }
    return source;
  }
  if (!sha256) throw new Error(`a URL needs its SHA-256 to be checked: set LIBTORCH_ARCHIVE_SHA256 for ${source}`);
  const dest = path.join(tmp, path.basename(new URL(source).pathname) || 'libtorch.zip');
  await downloadVerified({ url: source, dest, algorithm: 'sha256', expected: sha256 });
  return dest;
}

/**
 * Resolves libtorch as the module comment says, makes `deps/libtorch` in packageRoot point
 * at it, and returns that path. Throws a one-line error naming what to set when nothing works.
 */
export async function setupLibtorch(packageRoot: string, log: Log): Promise<string> {
  const fromEnv = process.env.LIBTORCH;
  if (fromEnv) {
    if (!isLibtorch(fromEnv)) {
      throw new Error(`LIBTORCH=${fromEnv} is not an unpacked libtorch (no share/cmake/Torch/TorchConfig.cmake)`);
    }
    return linkDeps(packageRoot, fromEnv, '$LIBTORCH', log);
  }
  const python = fromPython(log);
  if (python) return linkDeps(packageRoot, python, 'Python torch', log);

  const cached = path.join(cacheRoot(), `libtorch-${PINNED_LIBTORCH.version}`);
  if (isLibtorch(cached)) return linkDeps(packageRoot, cached, 'the shared libtorch cache', log);
  fs.mkdirSync(cacheRoot(), { recursive: true });
  const tmp = fs.mkdtempSync(path.join(cacheRoot(), '.download-'));
  try {
    const archive = process.env.LIBTORCH_ARCHIVE;
    if (archive) {
      const zip = await fetchArchive(archive, process.env.LIBTORCH_ARCHIVE_SHA256, tmp);
      const dest = path.join(cacheRoot(), `libtorch-${path.basename(zip).replace(/\.(zip|whl)$/, '')}`);
      await unpackLibtorch(zip, await prefixOf(zip), dest);
      return linkDeps(packageRoot, dest, `the libtorch archive ${archive}`, log);
    }
    let wheel = fromPip(tmp, log);
    if (!wheel) {
      const url = process.env.FCN_TORCH_LIBTORCH_URL ?? PINNED_LIBTORCH.url;
      const sha256 = process.env.FCN_TORCH_LIBTORCH_SHA256 ?? PINNED_LIBTORCH.sha256;
      log(`downloading ${url}`);
      wheel = path.join(tmp, 'torch.whl');
      try {
        await downloadVerified({ url, dest: wheel, algorithm: 'sha256', expected: sha256 });
      } catch (err) {
        throw new Error(
          `${(err as Error).message}; set LIBTORCH to an unpacked libtorch, or LIBTORCH_ARCHIVE to a libtorch zip you have`,
        );
      }
    }
    await unpackLibtorch(wheel, 'torch', cached);
    return linkDeps(packageRoot, cached, `libtorch ${PINNED_LIBTORCH.version}, unpacked into the shared cache`, log);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
