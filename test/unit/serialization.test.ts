import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { load, nn, save, torch } from '../../src';
import { fetchCached } from '../../src/hub';
import { exactlyEqual, fixtures, scratchDir, serveBytes } from '../helpers';

const tmp = scratchDir('fcn-torch-io-');

test('reads every dtype of a file written by Python safetensors', async (t) => {
  const f = await load(path.join(fixtures, 'python.safetensors'));
  t.deepEqual([...f.keys()].sort(), ['b', 'empty', 'f16', 'f32', 'f64', 'i32', 'i64', 'u8']);
  t.deepEqual(f.get('f32')?.toArray(), [
    [0, 1, 2],
    [3, 4, 5],
  ]);
  t.deepEqual(f.get('f64')?.toArray(), [1.5, -2.25]);
  t.deepEqual(f.get('f16')?.to('float32').toArray(), [0.5, 3]);
  t.deepEqual(Array.from(f.get('i64')?.toTypedArray() as BigInt64Array), [-(2n ** 40n), 7n]);
  t.deepEqual(f.get('i32')?.toArray(), [[1, -2]]);
  t.deepEqual(f.get('u8')?.toArray(), [0, 255]);
  t.deepEqual(f.get('b')?.toArray(), [true, false, true]);
  t.deepEqual(f.get('empty')?.shape, [0, 3]);
});

test('save writes spec-conformant safetensors that load back identically', async (t) => {
  const file = path.join(tmp, 'model.safetensors');
  const net = new nn.Sequential(new nn.Conv2d(2, 3, { kernelSize: 3 }), new nn.BatchNorm2d(3));
  await save(net.stateDict(), file);
  const bytes = fs.readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  t.is((8 + headerLength) % 8, 0, 'data starts 8-byte aligned');
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  t.deepEqual(header.__metadata__, { format: 'pt' });
  t.deepEqual(header['0.weight'], { dtype: 'F32', shape: [3, 2, 3, 3], data_offsets: [0, 216] });
  t.is(header['1.num_batches_tracked'].dtype, 'I64');
  const back = await load(file);
  for (const [name, tensor] of net.stateDict()) t.true(exactlyEqual(back.get(name) as never, tensor.detach()), name);
  // Only this file's: the next test leaves a stale writer's file in the same folder meanwhile.
  t.deepEqual(
    fs.readdirSync(tmp).filter((n) => n.startsWith('model.safetensors.tmp-')),
    [],
    'no temporary file is left',
  );
  await t.throwsAsync(save(net.stateDict(), path.join(tmp, 'model.pth')), { message: /ending in \.safetensors/ });
  await t.throwsAsync(save(net.stateDict(), path.join(tmp, 'missing-dir', 'x.safetensors')), {
    message: /cannot write/,
  });
});

test('save says why it cannot write, and removes the temporary files of writers that died', async (t) => {
  const t0 = torch.ones([2]);
  await t.throwsAsync(save({ t0 }, path.join(tmp, 'no-such-folder', 'x.safetensors')), {
    message: /cannot write '.*no-such-folder\/x\.safetensors': its folder '.*no-such-folder' does not exist/,
  });
  const file = path.join(tmp, 'stale.safetensors');
  // A writer killed mid-save (pid 2^22 + 1 is above pid_max, so no such process runs) left its file.
  const stale = `${file}.tmp-4194305`;
  fs.writeFileSync(stale, 'half a file');
  await save({ t0 }, file);
  t.false(fs.existsSync(stale));
  t.is((await load(file)).size, 1);
});

test('torch.save checkpoints: nested dicts are flattened, other values skipped', async (t) => {
  const f = await load(path.join(fixtures, 'checkpoint.pth'));
  t.deepEqual([...f.keys()], ['model.w', 'model.b']);
  t.deepEqual(f.get('model.w')?.toArray(), [
    [1, 1],
    [1, 1],
  ]);
});

for (const file of ['evil.pth', 'evil-legacy.pth']) {
  test(`a pickle that asks for os.system is refused and runs nothing (${file})`, async (t) => {
    const marker = '/tmp/fcn-torch-pwned';
    fs.rmSync(marker, { force: true });
    await t.throwsAsync(load(path.join(fixtures, file)), { message: /refusing global 'posix\.system'/ });
    t.false(fs.existsSync(marker));
  });
}

test('missing, truncated and corrupt weight files give errors naming the file', async (t) => {
  await t.throwsAsync(load(path.join(tmp, 'nope.pth')), { message: /no weights file at .*nope\.pth/ });
  const original = fs.readFileSync(path.join(fixtures, 'resnet18-strided.pth'));
  const truncated = path.join(tmp, 'truncated.pth');
  fs.writeFileSync(truncated, original.subarray(0, original.length / 2));
  await t.throwsAsync(load(truncated), { message: /cannot load '.*truncated\.pth'/ });
  const legacy = fs.readFileSync(path.join(fixtures, 'resnet18-strided-legacy.pth'));
  const legacyCut = path.join(tmp, 'legacy-cut.pth');
  fs.writeFileSync(legacyCut, legacy.subarray(0, legacy.length - 100));
  await t.throwsAsync(load(legacyCut), { message: /truncated/ });
  const garbage = path.join(tmp, 'garbage.pth');
  fs.writeFileSync(garbage, 'this is not a weights file');
  await t.throwsAsync(load(garbage), { message: /not a torch\.save file/ });
  const st = fs.readFileSync(path.join(fixtures, 'python.safetensors'));
  const stCut = path.join(tmp, 'cut.safetensors');
  fs.writeFileSync(stCut, st.subarray(0, st.length - 3));
  await t.throwsAsync(load(stCut), { message: /safetensors/ });
});

test('weights download once into the cache and are verified by SHA-256', async (t) => {
  const body = fs.readFileSync(path.join(fixtures, 'resnet18-strided.pth'));
  const prefix = createHash('sha256').update(body).digest('hex').slice(0, 8);
  const server = await serveBytes(body);
  const cacheDir = path.join(tmp, 'cache');
  try {
    const file = await fetchCached({
      url: `${server.url}/resnet18.pth`,
      fileName: `resnet18-${prefix}.pth`,
      sha256Prefix: prefix,
      cacheDir,
    });
    t.true(fs.readFileSync(file).equals(body));
    await fetchCached({
      url: `${server.url}/resnet18.pth`,
      fileName: `resnet18-${prefix}.pth`,
      sha256Prefix: prefix,
      cacheDir,
    });
    t.is(server.requests(), 1, 'the second call is served from the cache');
  } finally {
    await server.close();
  }
});

test('an interrupted download leaves nothing in the cache, and the next run downloads cleanly', async (t) => {
  const body = fs.readFileSync(path.join(fixtures, 'resnet18-strided.pth'));
  const prefix = createHash('sha256').update(body).digest('hex').slice(0, 8);
  const server = await serveBytes(body, 1);
  const cacheDir = path.join(tmp, 'cache-dropped');
  const request = {
    url: `${server.url}/resnet18.pth`,
    fileName: `resnet18-${prefix}.pth`,
    sha256Prefix: prefix,
    cacheDir,
  };
  try {
    await t.throwsAsync(fetchCached(request), { message: /downloading resnet18-.* failed/ });
    t.deepEqual(fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : [], []);
    const file = await fetchCached(request);
    t.true(fs.readFileSync(file).equals(body));
    t.is(server.requests(), 2);
  } finally {
    await server.close();
  }
});

test("resnet18({ weights: 'IMAGENET1K_V1' }) refuses a file that fails the checksum and caches nothing", async (t) => {
  const server = await serveBytes(Buffer.from('not the real weights'));
  const cacheDir = path.join(tmp, 'cache-bad');
  try {
    await t.throwsAsync(nn.resnet18({ weights: 'IMAGENET1K_V1', url: `${server.url}/resnet18.pth`, cacheDir }), {
      message: /checksum mismatch: SHA-256 [0-9a-f]{64} does not start with f37072fd/,
    });
    t.deepEqual(fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : [], []);
  } finally {
    await server.close();
  }
  await t.throwsAsync(nn.resnet18({ weights: 'IMAGENET1K_V1', url: 'http://127.0.0.1:9/x.pth', cacheDir }), {
    message:
      /downloading resnet18-f37072fd\.pth from http:\/\/127\.0\.0\.1:9\/x\.pth failed: fetch failed \([^)]+\)\. Offline\? Put the file at '.*cache-bad\/resnet18-f37072fd\.pth' \(its SHA-256 starts with f37072fd\), or give the file you have/,
  });
  // A cached file that fails its check is kept aside, said, and never deleted.
  const cached = path.join(cacheDir, 'resnet18-f37072fd.pth');
  fs.writeFileSync(cached, 'a damaged copy');
  await t.throwsAsync(nn.resnet18({ weights: 'IMAGENET1K_V1', url: 'http://127.0.0.1:9/x.pth', cacheDir }), {
    message: /is kept as '.*resnet18-f37072fd\.pth\.bad-[\dT-]+Z'\)$/,
  });
  const aside = fs.readdirSync(cacheDir).filter((f) => f.startsWith('resnet18-f37072fd.pth.bad-'));
  t.is(aside.length, 1);
  t.is(fs.readFileSync(path.join(cacheDir, aside[0]), 'utf8'), 'a damaged copy');
  t.true(torch.liveTensors() >= 0);
});
