#!/usr/bin/env node
// Resolves the libtorch that the addon builds against and links with, and makes it available
// as deps/libtorch (a folder or a link to one). The order is the one the README documents:
//   1. $LIBTORCH: an unpacked libtorch (lib/, include/, share/cmake/Torch).
//   2. An importable Python `torch` (its package folder holds the same tree).
//   3. $LIBTORCH_ARCHIVE: the official libtorch zip, as a local path or an explicit URL.
//   4. The torch wheel that `pip download torch==<version> --no-deps` resolves, unpacked.
// The CUDA variant is built by scripts/build-cuda.sh, against a CUDA torch in its own venv.
// Nothing is downloaded unless a step names it; a failed step says why and the next is tried.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const deps = path.join(root, 'deps');
const target = path.join(deps, 'libtorch');
const wheelSpec = `torch==${process.env.FCN_TORCH_VERSION ?? '2.13.0+cpu'}`;

function log(msg) {
  process.stderr.write(`[setup-libtorch] ${msg}\n`);
}

/** True when dir is a usable libtorch tree. */
function isLibtorch(dir) {
  return (
    fs.existsSync(path.join(dir, 'share', 'cmake', 'Torch', 'TorchConfig.cmake')) &&
    fs.existsSync(path.join(dir, 'include', 'torch')) &&
    fs.existsSync(path.join(dir, 'lib'))
  );
}

function linkTo(dir, how) {
  fs.mkdirSync(deps, { recursive: true });
  fs.rmSync(target, { recursive: true, force: true });
  fs.symlinkSync(path.resolve(dir), target, 'dir');
  log(`using ${how}: ${path.resolve(dir)}`);
}

function fromEnv() {
  const dir = process.env.LIBTORCH;
  if (!dir) return false;
  if (!isLibtorch(dir)) {
    throw new Error(`LIBTORCH=${dir} is not an unpacked libtorch (no share/cmake/Torch/TorchConfig.cmake)`);
  }
  linkTo(dir, '$LIBTORCH');
  return true;
}

function fromPython() {
  const python = process.env.PYTHON ?? 'python3';
  const r = spawnSync(
    python,
    ['-c', 'import os, torch; print(os.path.dirname(torch.__file__)); print(torch.__version__)'],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) {
    log(`no importable Python torch (${python})`);
    return false;
  }
  const [dir, version] = r.stdout.trim().split('\n');
  if (!isLibtorch(dir)) {
    log(`Python torch ${version} at ${dir} has no C++ tree; skipped`);
    return false;
  }
  linkTo(dir, `Python torch ${version}`);
  return true;
}

/** Extracts the members of zip under prefix/ into dest (prefix stripped). */
function unzip(zip, prefix, dest) {
  const tmp = `${dest}.partial`;
  fs.rmSync(tmp, { recursive: true, force: true });
  const script = [
    'import sys, zipfile, os, shutil',
    'zf, prefix, dest = sys.argv[1], sys.argv[2], sys.argv[3]',
    'with zipfile.ZipFile(zf) as z:',
    '    for info in z.infolist():',
    '        name = info.filename',
    "        if not name.startswith(prefix + '/'): continue",
    '        rel = name[len(prefix) + 1:]',
    "        top = rel.split('/')[0]",
    "        if top not in ('lib', 'include', 'share', 'bin'): continue",
    '        out = os.path.join(dest, rel)',
    "        if name.endswith('/'): os.makedirs(out, exist_ok=True); continue",
    '        os.makedirs(os.path.dirname(out), exist_ok=True)',
    "        with z.open(info) as src, open(out, 'wb') as dst: shutil.copyfileobj(src, dst)",
    '        mode = (info.external_attr >> 16) & 0o777',
    '        if mode: os.chmod(out, mode)',
  ].join('\n');
  execFileSync(process.env.PYTHON ?? 'python3', ['-c', script, zip, prefix, tmp], { stdio: 'inherit' });
  if (!isLibtorch(tmp)) throw new Error(`${zip} does not hold a libtorch under ${prefix}/`);
  fs.rmSync(dest, { recursive: true, force: true });
  fs.renameSync(tmp, dest);
}

async function fromArchive() {
  const src = process.env.LIBTORCH_ARCHIVE;
  if (!src) return false;
  let zip = src;
  if (/^https?:\/\//.test(src)) {
    zip = path.join(deps, 'libtorch-archive.zip');
    log(`downloading ${src}`);
    const res = await fetch(src);
    if (!res.ok) throw new Error(`LIBTORCH_ARCHIVE: HTTP ${res.status} for ${src}`);
    fs.mkdirSync(deps, { recursive: true });
    fs.writeFileSync(`${zip}.partial`, Buffer.from(await res.arrayBuffer()));
    fs.renameSync(`${zip}.partial`, zip);
  }
  fs.rmSync(target, { recursive: true, force: true });
  unzip(zip, 'libtorch', target);
  log(`using the libtorch archive ${src}`);
  return true;
}

function fromWheel() {
  const wheels = path.join(deps, 'wheels');
  fs.mkdirSync(wheels, { recursive: true });
  const python = process.env.PYTHON ?? 'python3';
  log(`pip download ${wheelSpec}`);
  const r = spawnSync(
    python,
    ['-m', 'pip', 'download', wheelSpec, '--no-deps', '--retries', '0', '--timeout', '30', '-d', wheels],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (r.status !== 0) throw new Error(`pip download ${wheelSpec} failed (exit ${r.status})`);
  const version = wheelSpec.split('==')[1];
  const wheel = fs.readdirSync(wheels).find((f) => f.startsWith(`torch-${version}-`) && f.endsWith('.whl'));
  if (!wheel) throw new Error(`pip download left no torch-${version} wheel in ${wheels}`);
  fs.rmSync(target, { recursive: true, force: true });
  unzip(path.join(wheels, wheel), 'torch', target);
  fs.writeFileSync(path.join(target, 'FROM_WHEEL'), `${wheel}\n`);
  log(`using ${wheel}, unpacked into ${target}`);
  return true;
}

function alreadyThere() {
  if (process.env.LIBTORCH || process.env.LIBTORCH_ARCHIVE) return false;
  if (!isLibtorch(target)) return false;
  const stamp = path.join(target, 'FROM_WHEEL');
  if (fs.existsSync(stamp) && !fs.readFileSync(stamp, 'utf8').includes(`torch-${wheelSpec.split('==')[1]}-`)) {
    return false;
  }
  log(`using ${fs.realpathSync(target)} (already set up; remove deps/libtorch to resolve again)`);
  return true;
}

try {
  if (!(alreadyThere() || fromEnv() || fromPython() || (await fromArchive()) || fromWheel())) {
    throw new Error('no libtorch found');
  }
} catch (err) {
  log(`error: ${err.message}`);
  log('Set LIBTORCH to an unpacked libtorch, install Python torch, or set LIBTORCH_ARCHIVE.');
  process.exit(1);
}
