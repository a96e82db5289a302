/**
 * The install (issue 15): libtorch fetched in JavaScript when none is found (a local HTTP
 * server stands in for download.pytorch.org: checksum, cache, dropped connections), and the
 * prebuilt addon chosen only for the libtorch it was built against.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { zipFile } from '../crafted-files';
import { packageEntry, runScript, scratchDir, serveBytes } from '../helpers';

const tmp = scratchDir('fcn-torch-setup-');

/** A torch wheel's libtorch part, tiny: what the setup looks for, and a version header. */
function fakeWheel(version = [2, 13, 0]): Buffer {
  const header = ['MAJOR', 'MINOR', 'PATCH'].map((p, i) => `#define TORCH_VERSION_${p} ${version[i]}\n`).join('');
  return zipFile([
    { name: 'torch/__init__.py', data: Buffer.from('') },
    { name: 'torch/lib/libtorch.so', data: Buffer.from('not really a library') },
    { name: 'torch/include/torch/headeronly/version.h', data: Buffer.from(header) },
    { name: 'torch/share/cmake/Torch/TorchConfig.cmake', data: Buffer.from('# config\n') },
  ]);
}

/** setupLibtorch in a child process with env, for a package root of its own. */
async function setup(name: string, env: NodeJS.ProcessEnv) {
  const root = path.join(tmp, name);
  fs.mkdirSync(root, { recursive: true });
  const setupModule = path.join(packageEntry, 'setup', 'libtorch.js');
  const r = await runScript(
    `require(${JSON.stringify(setupModule)}).setupLibtorch(${JSON.stringify(root)}, (l) => console.log(l)).then(
      (dir) => console.log('deps: ' + require('node:fs').realpathSync(dir)),
      (e) => console.log('error: ' + e.message),
    );`,
    { env: { PYTHON: '/nonexistent/python', LIBTORCH: '', LIBTORCH_ARCHIVE: '', ...env } },
  );
  return { ...r, root };
}

test('libtorch is fetched without Python: checked, cached, unpacked atomically', async (t) => {
  const wheel = fakeWheel();
  const sha = createHash('sha256').update(wheel).digest('hex');
  const cache = path.join(tmp, 'cache');
  const server = await serveBytes(wheel);
  const broken = await serveBytes(wheel, 10);
  try {
    const env = { FCN_TORCH_CACHE: cache, FCN_TORCH_LIBTORCH_URL: `${server.url}/torch.whl` };
    // A wrong checksum: an error naming the URL and what to set, and nothing in the cache.
    const wrong = await setup('wrong', { ...env, FCN_TORCH_LIBTORCH_SHA256: 'ab'.repeat(32) });
    t.regex(
      wrong.stdout,
      /error: downloading torch\.whl from http:\/\/127\.0\.0\.1:\d+\/torch\.whl failed: checksum mismatch/,
    );
    t.regex(wrong.stdout, /set LIBTORCH to an unpacked libtorch, or LIBTORCH_ARCHIVE/);
    t.deepEqual(fs.readdirSync(cache), []);
    // A dropped connection: the same, nothing half-written.
    const dropped = await setup('dropped', {
      FCN_TORCH_CACHE: cache,
      FCN_TORCH_LIBTORCH_URL: `${broken.url}/torch.whl`,
      FCN_TORCH_LIBTORCH_SHA256: sha,
    });
    t.regex(dropped.stdout, /error: downloading torch\.whl .* failed/);
    t.deepEqual(fs.readdirSync(cache), []);
    // The right one: unpacked into the cache, deps/libtorch links to it.
    const good = await setup('good', { ...env, FCN_TORCH_LIBTORCH_SHA256: sha });
    t.is(good.code, 0, good.stderr);
    const unpacked = path.join(cache, 'libtorch-2.13.0+cpu');
    t.regex(good.stdout, new RegExp(`deps: ${unpacked.replace(/[.+]/g, '\\$&')}`));
    t.true(fs.lstatSync(path.join(good.root, 'deps', 'libtorch')).isSymbolicLink());
    t.deepEqual(fs.readdirSync(unpacked).sort(), ['include', 'lib', 'share']);
    t.deepEqual(fs.readdirSync(cache), ['libtorch-2.13.0+cpu'], 'no download and no partial folder left');
    // Another project reuses the cache: no request.
    const requests = server.requests();
    const again = await setup('again', { ...env, FCN_TORCH_LIBTORCH_SHA256: sha });
    t.regex(again.stdout, /using the shared libtorch cache/);
    t.is(server.requests(), requests);
  } finally {
    await server.close();
    await broken.close();
  }
});

test('the prebuilt addon serves only the libtorch it was built against', async (t) => {
  const installModule = path.join(packageEntry, 'setup', 'install.js');
  const { prebuildMismatch, prebuildDir } = await import(installModule);
  const root = path.join(tmp, 'prebuilt');
  const dir = prebuildDir(root) as string;
  fs.mkdirSync(dir, { recursive: true });
  t.regex(prebuildMismatch(root, { version: '2.13.0', cuda: false }), /no prebuilt addon for linux-x64/);
  fs.writeFileSync(path.join(dir, 'fcn_torch.node'), '');
  fs.writeFileSync(path.join(dir, 'libtorch.json'), JSON.stringify({ version: '2.13.0', cuda: false, napi: 8 }));
  t.is(prebuildMismatch(root, { version: '2.13.0', cuda: false }), null);
  t.is(
    prebuildMismatch(root, { version: '2.14.1', cuda: true }),
    'the prebuilt addon is for libtorch 2.13.0 (CPU), this libtorch is libtorch 2.14.1 (CUDA)',
  );
});
