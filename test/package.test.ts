/**
 * The package as a user installs it (issue 15): `npm pack`, then `npm install` of the tarball
 * in a fresh project with a libtorch already on the machine. The prebuilt addon must serve it
 * with no compiler run (fake compilers on PATH record any call), and a README example must
 * run there.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..', '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fcn-torch-package-'));

test('the packed tarball installs with the prebuilt addon, no compiler, and runs a README example', async (t) => {
  const { stdout } = await run('npm', ['pack', '--pack-destination', tmp], { cwd: root, maxBuffer: 1 << 24 });
  const tarball = path.join(tmp, stdout.trim().split('\n').at(-1) as string);
  t.true(fs.existsSync(tarball), stdout);
  // Compilers that record a call and fail.
  const bin = path.join(tmp, 'fake-compilers');
  const calls = path.join(tmp, 'compiler-calls.log');
  fs.mkdirSync(bin);
  for (const tool of ['cc', 'c++', 'gcc', 'g++', 'clang', 'clang++', 'cmake', 'make', 'ninja']) {
    fs.writeFileSync(path.join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> ${calls}\nexit 1\n`, { mode: 0o755 });
  }
  const project = path.join(tmp, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), '{ "name": "try-fcn-torch", "private": true }\n');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${bin}:${process.env.PATH}`,
    LIBTORCH: fs.realpathSync(path.join(root, 'deps', 'libtorch')),
  };
  delete env.npm_config_build_from_source; // npm's --build-from-source (any value, '' too) compiles
  const started = performance.now();
  const install = await run(
    'npm',
    ['install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball],
    {
      cwd: project,
      env,
      maxBuffer: 1 << 24,
    },
  );
  const seconds = (performance.now() - started) / 1000;
  t.log(`npm install of the tarball: ${seconds.toFixed(1)} s`);
  t.false(fs.existsSync(calls), `a compiler ran: ${fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8') : ''}`);
  t.regex(install.stderr, /using the prebuilt addon/);
  const installed = path.join(project, 'node_modules', 'fcn-torch');
  // The shipped addon finds libtorch relative to itself only: no absolute folder of the
  // machine that built it, nor any other, is searched on the user's.
  const dynamic = await run('readelf', ['-d', path.join(installed, 'prebuilds', 'linux-x64', 'fcn_torch.node')]);
  const runpath = /\((?:RUNPATH|RPATH)\)\s+Library (?:runpath|rpath): \[(.*)\]/.exec(dynamic.stdout);
  t.truthy(runpath, dynamic.stdout);
  t.deepEqual(
    (runpath?.[1] ?? '').split(':').filter((entry) => !entry.startsWith('$ORIGIN/')),
    [],
    `RUNPATH ${runpath?.[1]}`,
  );
  t.false(fs.existsSync(path.join(installed, 'build-cmake')), 'nothing compiled, nothing left behind');
  t.true(seconds < 300, `the install took ${seconds.toFixed(1)} s`);
  // The README's first example, as installed.
  const example = await run(process.execPath, [path.join(installed, 'dist', 'examples', 'quickstart.js')], {
    cwd: project,
  });
  t.regex(example.stdout, /\[ 1, 21, 320, 480 \]/);
  t.true(fs.existsSync(path.join(project, 'fcn.safetensors')));
});
