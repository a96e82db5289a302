/**
 * The package as a user installs it (issue 15): `npm pack`, then `npm install` of the tarball
 * in a fresh project with a libtorch already on the machine. The prebuilt addon must serve it
 * with no compiler run (fake compilers on PATH record any call), and a README example must
 * run there. Then the kinds of project that consume it (issue 31): ESM and CommonJS, and a
 * strict TypeScript project that type-checks against the package's declarations.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { scratchDir } from '../helpers';

const run = promisify(execFile);
const root = path.resolve(__dirname, '..', '..', '..');
const tmp = scratchDir('fcn-torch-package-');

interface Installed {
  tarball: string;
  /** The environment of the install: fake compilers first on PATH, LIBTORCH already there. */
  env: NodeJS.ProcessEnv;
  project: string;
  installed: string;
  seconds: number;
  stderr: string;
  calls: string;
}

/** Packs the package and installs the tarball into a fresh project, once for the file. */
const installation: Promise<Installed> = (async () => {
  const { stdout } = await run('npm', ['pack', '--pack-destination', tmp], { cwd: root, maxBuffer: 1 << 24 });
  const tarball = path.join(tmp, stdout.trim().split('\n').at(-1) as string);
  if (!fs.existsSync(tarball)) throw new Error(`npm pack wrote no tarball: ${stdout}`);
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
  return {
    tarball,
    env,
    project,
    installed: path.join(project, 'node_modules', 'fcn-torch'),
    seconds,
    stderr: install.stderr,
    calls,
  };
})();
// Each test reports a failed installation itself; none is left unhandled meanwhile.
installation.catch(() => {});

test('the packed tarball installs with the prebuilt addon, no compiler, and runs a README example', async (t) => {
  const { project, installed, seconds, stderr, calls } = await installation;
  t.log(`npm install of the tarball: ${seconds.toFixed(1)} s`);
  t.false(fs.existsSync(calls), `a compiler ran: ${fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8') : ''}`);
  t.regex(stderr, /using the prebuilt addon/);
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

/** Writes each file (a path under dir) with its text. */
function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
}

test('ESM and CommonJS projects import the package and label an image', async (t) => {
  const { project } = await installation;
  const labelled = (load: string) => `${load}
const labels = await predict(createFcn({ numClasses: 3 }), torch.zeros([3, 64, 96], { dtype: 'uint8' }));
console.log(labels.dtype, labels.shape.join('x'), torch.ones([2]).sum().item());
`;
  writeFiles(project, {
    'esm.mjs': labelled("import { createFcn, predict, torch } from 'fcn-torch';"),
    'cjs.cjs': `(async () => {${labelled("const { createFcn, predict, torch } = require('fcn-torch');")}})();`,
  });
  for (const file of ['esm.mjs', 'cjs.cjs']) {
    const { stdout } = await run(process.execPath, [file], { cwd: project });
    t.is(stdout.trim(), 'int64 64x96 2', file);
  }
});

test('a strict TypeScript project type-checks against the declarations, with TypeScript 5 and 7', async (t) => {
  const { project } = await installation;
  const typed = path.join(project, 'typed');
  writeFiles(typed, {
    // The strictest settings a consumer may have; no "types": @types/node comes with the package.
    'tsconfig.json': JSON.stringify({
      compilerOptions: {
        strict: true,
        exactOptionalPropertyTypes: true,
        noUncheckedIndexedAccess: true,
        skipLibCheck: false,
        module: 'nodenext',
        target: 'es2022',
        noEmit: true,
      },
      files: ['esm.mts', 'cjs.cts'],
    }),
    'esm.mts': `import { createFcn, nn, predict, readImage, serve, type Tensor, torch } from 'fcn-torch';
const net = createFcn({ numClasses: 3 });
const image: Tensor<'uint8'> = torch.zeros([3, 64, 96], { dtype: 'uint8' });
const labels: Tensor<'int64'> = await predict(net, image);
const ids: BigInt64Array = labels.toTypedArray();
{
  using conv = new nn.Conv2d(3, 4, { kernelSize: 1 });
  using x = torch.rand([1, 3, 8, 8]);
  conv.forward(x).dispose();
}
export async function pixels(file: string): Promise<Uint8Array> {
  return (await readImage(file)).toTypedArray();
}
export const viewer = serve;
export { ids };
`,
    'cjs.cts': `import fcn = require('fcn-torch');
const ones: fcn.Tensor<'float32'> = fcn.torch.ones([2]);
export const total: number = ones.sum().item();
`,
  });
  for (const [name, tsc] of [
    ['TypeScript 5', path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')],
    ['TypeScript 7', path.join(root, 'node_modules', 'typescript-7', 'bin', 'tsc')],
  ]) {
    const checked = await run(process.execPath, [tsc, '-p', typed], { cwd: typed }).then(
      () => '',
      (err: { stdout?: string; message: string }) => err.stdout || err.message,
    );
    t.is(checked, '', `${name} found errors`);
  }
  // and it does check: a wrong dtype is an error.
  fs.appendFileSync(path.join(typed, 'cjs.cts'), "export const wrong: fcn.Tensor<'int64'> = ones;\n");
  const wrong = await run(process.execPath, [
    path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
    '-p',
    typed,
  ]).then(
    () => '',
    (err: { stdout?: string }) => err.stdout ?? '',
  );
  t.regex(wrong, /cjs\.cts.*Type 'Tensor<"float32">' is not assignable to type 'Tensor<"int64">'/);
});

/** A script that writes a PNG, reads it (sharp), labels it and prints the labels' dtype and shape. */
const labelAnImage = `const { createFcn, predict, readImage, saveMask, torch } = require('fcn-torch');
(async () => {
  await saveMask(torch.zeros([64, 96], { dtype: 'int64' }), [[10, 200, 30]], 'image.png');
  const labels = await predict(createFcn({ numClasses: 3 }), await readImage('image.png'));
  console.log(labels.dtype, labels.shape.join('x'));
})();
`;

test('pnpm, yarn (node-modules and PnP) and npm --ignore-scripts: the skipped install script is named in one line, and the command it names finishes it', async (t) => {
  const { tarball, env } = await installation;
  const pnpm = [path.join(root, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs')];
  const yarn = [path.join(root, 'node_modules', '@yarnpkg', 'cli-dist', 'bin', 'yarn.js')];
  const npmCli = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin');
  const yarnAdd = ['add', `fcn-torch@file:${tarball}`];
  const managers = [
    {
      name: 'pnpm',
      add: [...pnpm, 'add', tarball, '--store-dir', path.join(tmp, 'pnpm-store')],
      named: 'pnpm exec fcn setup',
      setup: [...pnpm, 'exec', 'fcn', 'setup'],
    },
    {
      name: 'yarn (node-modules)',
      add: [...yarn, ...yarnAdd],
      named: 'npx fcn-torch setup (yarn: yarn fcn setup)',
      setup: [...yarn, 'fcn', 'setup'],
      linker: 'node-modules',
    },
    {
      name: 'yarn (PnP)',
      add: [...yarn, ...yarnAdd],
      named: 'yarn fcn setup',
      setup: [...yarn, 'fcn', 'setup'],
      linker: 'pnp',
    },
    {
      name: 'npm --ignore-scripts',
      add: [
        path.join(npmCli, 'npm-cli.js'),
        'install',
        '--ignore-scripts',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        tarball,
      ],
      named: 'npx fcn-torch setup (yarn: yarn fcn setup)',
      setup: [path.join(npmCli, 'npx-cli.js'), 'fcn-torch', 'setup'],
    },
  ];
  for (const { name, add, named, setup, linker } of managers) {
    const project = path.join(tmp, name.replace(/\W+/g, '-'));
    writeFiles(project, {
      'package.json': '{ "name": "try-fcn-torch", "private": true }\n',
      'label.cjs': labelAnImage,
      ...(linker ? { '.yarnrc.yml': `nodeLinker: ${linker}\nenableGlobalCache: false\n`, 'yarn.lock': '' } : {}),
    });
    const inProject = { cwd: project, env, maxBuffer: 1 << 24 };
    const started = performance.now();
    await run(process.execPath, add, inProject);
    t.log(`${name}: install of the tarball ${((performance.now() - started) / 1000).toFixed(1)} s`);
    // PnP has no node_modules: node runs through yarn's loader.
    const node = linker === 'pnp' ? [...yarn, 'node'] : [];
    const blocked = await run(process.execPath, [...node, 'label.cjs'], inProject).then(
      () => 'it loaded',
      (err: { stderr: string }) => err.stderr,
    );
    const line = `Error: fcn-torch is not set up: its install script did not run (pnpm and yarn run it only when allowed). Run \`${named}\` once`;
    t.true(blocked.split('\n').includes(line), `${name}, before setup: ${blocked}`);
    const finished = await run(process.execPath, setup, inProject);
    t.regex(finished.stderr, /set up: the package loads now/, name);
    const { stdout } = await run(process.execPath, [...node, 'label.cjs'], inProject);
    t.is(stdout.trim(), 'int64 64x96', `${name}: after setup`);
  }
});
