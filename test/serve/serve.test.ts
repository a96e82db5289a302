/**
 * The viewer's server over HTTP: each safety limit (oversized upload, decompression bomb,
 * non-image bytes, other formats, path traversal, a full prediction queue, foreign Host names)
 * is answered with a clear 4xx or 503, and a request right after it succeeds.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import test from 'ava';
import sharp from 'sharp';
import { models, nn, predict, readImage, saveCheckpoint } from '../../src';
import {
  chapterModel,
  isLoopback,
  type ModelSource,
  segmentationModel,
  serve,
  type ViewerServer,
} from '../../src/serve';
import { cli, fixtures, runNode, scratchDir } from '../helpers';

const tmp = scratchDir('fcn-torch-serve-');
const runDir = path.join(tmp, 'run');
fs.mkdirSync(runDir);
fs.writeFileSync(path.join(runDir, 'history.json'), '[]\n');
fs.writeFileSync(path.join(tmp, 'secret.txt'), 'not for the viewer');
fs.symlinkSync(path.join(tmp, 'secret.txt'), path.join(runDir, 'link.txt'));

const model = chapterModel('fcn32s');
const UPLOAD_LIMIT = 256 * 1024;

/** A small real PNG: what succeeds after each refusal. */
const goodPng = sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 90, b: 40 } } })
  .png()
  .toBuffer();

interface Answer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** A raw HTTP request (the path is sent exactly as given, `..` included). */
function request(
  server: ViewerServer,
  method: string,
  pathname: string,
  body?: Buffer,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method, path: pathname, headers: { ...headers, connection: 'close' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const post = (server: ViewerServer, bytes: Buffer, type = 'image/png') =>
  request(server, 'POST', '/api/predict', bytes, { 'content-type': type });

/** The error message of an answer. */
const errorOf = (a: Answer) => (JSON.parse(a.body) as { error: string }).error;

/** A prediction of goodPng succeeds: the server is still serving. */
async function stillServing(t: import('ava').ExecutionContext, server: ViewerServer): Promise<void> {
  const ok = await post(server, await goodPng);
  t.is(ok.status, 200, ok.body);
  const prediction = JSON.parse(ok.body) as { width: number; height: number; labels: string; precision: string };
  t.deepEqual([prediction.width, prediction.height], [64, 48]);
  t.is(prediction.precision, 'float32', 'the precision that ran (no autocast here)');
  t.is(Buffer.from(prediction.labels, 'base64').length, 64 * 48);
}

let shared: Promise<ViewerServer> | undefined;
const server = () => {
  shared ??= serve({ model, run: runDir, port: 0, limits: { maxUploadBytes: UPLOAD_LIMIT } });
  return shared;
};
test.after.always(async () => {
  await (await shared)?.close();
});

/** A PNG of width x height 1-bit black pixels: a few kB of deflate that decode to gigabytes. */
function pngBomb(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(Buffer.concat([Buffer.from(type, 'latin1'), data])));
    return Buffer.concat([length, Buffer.from(type, 'latin1'), data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([1, 0, 0, 0, 0], 8); // bit depth 1, greyscale, deflate, no filter, no interlace
  const rows = Buffer.alloc(height * (1 + Math.ceil(width / 8))); // filter byte 0 and zero pixels per row
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(rows, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

test('an upload over the byte limit is refused with 413, and the server goes on', async (t) => {
  const s = await server();
  const big = await post(s, Buffer.alloc(UPLOAD_LIMIT + 1, 7), 'image/jpeg');
  t.is(big.status, 413);
  t.is(errorOf(big), `the upload is over the limit of ${UPLOAD_LIMIT} bytes`);
  await stillServing(t, s);
});

test('a decompression bomb is refused from its header, before decoding, and the server goes on', async (t) => {
  const s = await server();
  const bomb = pngBomb(20000, 20000);
  t.true(bomb.length < UPLOAD_LIMIT, `${bomb.length} bytes`);
  const rssBefore = process.memoryUsage().rss;
  const answer = await post(s, bomb);
  t.is(answer.status, 413);
  t.is(errorOf(answer), 'the image is 20000x20000 = 400000000 pixels, over the limit of 16777216');
  // 400 M pixels decoded would take 1.2 GB as RGB; nothing near that was allocated.
  t.true(process.memoryUsage().rss - rssBefore < 200 * 2 ** 20);
  await stillServing(t, s);
});

test('bytes that are no image, other formats and truncated images get a clear 4xx, and the server goes on', async (t) => {
  const s = await server();
  const noiseJpeg = await sharp({
    create: {
      width: 160,
      height: 120,
      channels: 3,
      background: 'grey',
      noise: { type: 'gaussian', mean: 128, sigma: 40 },
    },
  })
    .jpeg()
    .toBuffer();
  const cases: [Buffer, string, number, RegExp][] = [
    [
      Buffer.from('hello, I am not an image'),
      'image/png',
      415,
      /^not an image that can be read .*expected JPEG, PNG or WebP$/,
    ],
    [Buffer.alloc(0), 'image/png', 400, /^the upload is empty/],
    [
      Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64'),
      'image/png',
      415,
      /^gif images are not accepted: expected JPEG, PNG or WebP$/,
    ],
    [noiseJpeg.subarray(0, noiseJpeg.length >> 1), 'image/jpeg', 400, /^the JPEG image cannot be decoded: /],
    [await goodPng, 'application/json', 415, /^send the image's bytes as image\/jpeg, image\/png or image\/webp/],
    [await goodPng, 'text/plain', 415, /^send the image's bytes as/],
  ];
  for (const [bytes, type, status, message] of cases) {
    const answer = await post(s, bytes, type);
    t.is(answer.status, status, `${type}: ${answer.body}`);
    t.regex(errorOf(answer), message);
    await stillServing(t, s);
  }
});

test('only regular files under the run folder are readable: no traversal, no links out', async (t) => {
  const s = await server();
  const ok = await request(s, 'GET', '/run/files/history.json');
  t.is(ok.status, 200);
  t.is(ok.body, '[]\n');
  const attempts = [
    '/run/files/../secret.txt',
    '/run/files/..%2Fsecret.txt',
    '/run/files/..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd',
    `/run/files/${encodeURIComponent(path.join(tmp, 'secret.txt'))}`,
    '/run/files/link.txt',
    '/run/files/history.json%00.png',
    '/run/files/',
    '/run/files/.',
    '/run/files/no-such-file',
    '/../secret.txt',
  ];
  for (const attempt of attempts) {
    const answer = await request(s, 'GET', attempt);
    t.is(answer.status, 404, `${attempt}: ${answer.body}`);
    t.false(answer.body.includes('not for the viewer'), attempt);
    t.is((await request(s, 'GET', '/run/files/history.json')).status, 200, `after ${attempt}`);
  }
});

test('a foreign Host name is refused (DNS rebinding), loopback names are served', async (t) => {
  const s = await server();
  const foreign = await request(s, 'GET', '/api/info', undefined, { host: 'attacker.example:8080' });
  t.is(foreign.status, 403);
  t.regex(errorOf(foreign), /^Host 'attacker\.example:8080' refused/);
  for (const host of ['localhost:1', '127.0.0.1', '[::1]:80']) {
    t.is((await request(s, 'GET', '/api/info', undefined, { host })).status, 200, host);
  }
  t.true(isLoopback('127.0.0.1') && isLoopback('localhost') && isLoopback('::1') && isLoopback('[::1]'));
  t.false(isLoopback('0.0.0.0') || isLoopback('::') || isLoopback('192.168.1.2') || isLoopback('example.com'));
});

test('one prediction at a time per model: the queue takes maxWaiting more, then answers 503', async (t) => {
  let open: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  // A source whose model is only handed out once the gate opens: the running job holds the model.
  const gated: ModelSource = {
    name: 'gated',
    trained: false,
    load: async () => {
      await gate;
      return model.load();
    },
  };
  const s = await serve({ model: gated, port: 0, limits: { maxWaiting: 1 } });
  try {
    const queue = async () =>
      (JSON.parse((await request(s, 'GET', '/api/info')).body) as { queue: { running: number; waiting: number } })
        .queue;
    const until = async (check: (q: { running: number; waiting: number }) => boolean) => {
      for (let i = 0; i < 500 && !check(await queue()); i++) await new Promise((r) => setTimeout(r, 10));
    };
    const png = await goodPng;
    const first = post(s, png);
    await until((q) => q.running === 1);
    const second = post(s, png);
    await until((q) => q.waiting === 1);
    t.like(await queue(), { running: 1, waiting: 1 });
    const third = await post(s, png);
    t.is(third.status, 503);
    t.is(third.headers['retry-after'], '1');
    t.regex(errorOf(third), /^busy: 1 prediction running and 1 waiting; try again shortly$/);
    open();
    t.is((await first).status, 200);
    t.is((await second).status, 200);
    await stillServing(t, s);
  } finally {
    open();
    await s.close();
  }
});

test('the page and its script are served with a policy that allows nothing from elsewhere', async (t) => {
  const s = await server();
  const page = await request(s, 'GET', '/');
  t.is(page.status, 200);
  t.regex(page.body, /<script src="viewer\.js" defer><\/script>/);
  t.regex(String(page.headers['content-security-policy']), /default-src 'self'/);
  for (const file of ['viewer.js', 'viewer.css']) t.is((await request(s, 'GET', `/${file}`)).status, 200);
  const missing = await request(s, 'GET', '/nothing-here');
  t.is(missing.status, 404);
  t.regex(errorOf(missing), /^no such page or API: GET \/nothing-here$/);
});

test('fcn serve: starts, answers, stops on SIGINT; mistakes end in one line and exit code 1', async (t) => {
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--model', 'fcn8s', '--precision', 'float32'], {
    cwd: tmp,
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /fcn serve: (http:\/\/127\.0\.0\.1:\d+\/) \(Ctrl-C stops\); precision: float32\n/.exec(out);
      if (match) resolve(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`fcn serve exited with ${code}`)));
  });
  const info = (await (await fetch(`${url}api/info`)).json()) as { model: { name: string; trained: boolean } };
  t.deepEqual(info.model, { name: 'fcn8s, untrained', trained: false });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  child.kill('SIGINT');
  t.is(await exited, 0);

  const cases: [string[], RegExp][] = [
    [
      ['serve', '--model', 'fcn4s'],
      /--model <name>' argument 'fcn4s' is invalid\. expected one of fcn32s, fcn16s, fcn8s/,
    ],
    [
      ['serve', '--checkpoint', path.join(runDir, 'history.json'), '--model', 'fcn32s'],
      /^fcn serve: give --checkpoint or --model, not both/,
    ],
    [['serve', '--checkpoint', path.join(runDir, 'history.json')], /^fcn serve: .*history\.json/],
    [['serve', '--run', path.join(tmp, 'no-such-run')], /no such folder/],
    [['serve', '--port', '70000'], /expected a TCP port/],
  ];
  for (const [args, message] of cases) {
    const r = await runNode([cli, ...args], { cwd: tmp });
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
});

test('a run whose data folder is gone: the evaluation fails with a message, the run view goes on', async (t) => {
  const dir = path.join(tmp, 'moved-run');
  fs.mkdirSync(dir);
  await saveCheckpoint(path.join(dir, 'checkpoint.safetensors'), {
    model: new nn.Conv2d(3, 21, { kernelSize: 1 }),
    epoch: 1,
    history: [],
    config: { data: path.join(tmp, 'gone') },
  });
  const s = await serve({ model, run: dir, port: 0 });
  try {
    const started = JSON.parse((await request(s, 'POST', '/api/run/evaluation')).body) as { state: string };
    t.is(started.state, 'running');
    let state: { state: string; error?: string } = started;
    for (let i = 0; i < 500 && state.state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 10));
      state = JSON.parse((await request(s, 'GET', '/api/run/evaluation')).body);
    }
    t.is(state.state, 'failed');
    t.is(state.error, `the run's data folder '${path.join(tmp, 'gone')}' does not exist (give --data)`);
    const status = JSON.parse((await request(s, 'GET', '/api/run')).body) as { epoch: number; files: unknown[] };
    t.is(status.epoch, 1);
    t.is((await request(s, 'GET', '/api/run/curves.svg')).status, 404);
    t.is((await request(s, 'GET', '/api/run/grid/0/image.png')).status, 404);
    await stillServing(t, s);
  } finally {
    await s.close();
  }
});

test('a run without a checkpoint yet: predictions with its model say so (503), the run view waits', async (t) => {
  const dir = path.join(tmp, 'new-run');
  fs.mkdirSync(dir);
  const s = await serve({ run: dir, port: 0 });
  try {
    const answer = await post(s, await goodPng);
    t.is(answer.status, 503);
    t.regex(
      errorOf(answer),
      /^the model cannot be loaded: the model file '.*checkpoint\.safetensors' does not exist \(yet\)$/,
    );
    const status = JSON.parse((await request(s, 'GET', '/api/run')).body) as { version: number | null; epoch: number };
    t.deepEqual([status.version, status.epoch], [null, 0]);
    const evaluation = JSON.parse((await request(s, 'POST', '/api/run/evaluation')).body) as { state: string };
    t.is(evaluation.state, 'none');
  } finally {
    await s.close();
  }
});

test('a torchvision segmentation model labels uploads with its own preprocessing, as predict does', async (t) => {
  const weights = path.join(fixtures, 'seg-lraspp_mobilenet_v3_large.pth');
  const source = segmentationModel('lraspp_mobilenet_v3_large', { weights });
  const own = await serve({ model: source, port: 0 });
  try {
    const photo = path.join(tmp, 'photo.png');
    await sharp({ create: { width: 70, height: 50, channels: 3, background: { r: 30, g: 160, b: 90 } } })
      .composite([{ input: await goodPng, left: 3, top: 1 }])
      .png()
      .toFile(photo);
    const answer = await post(own, fs.readFileSync(photo));
    t.is(answer.status, 200, answer.body);
    const prediction = JSON.parse(answer.body) as { width: number; height: number; labels: string; classes: string[] };
    t.deepEqual([prediction.width, prediction.height], [70, 50]);
    t.is(prediction.classes.length, 21);
    t.deepEqual(prediction.classes.slice(0, 2), ['background', 'aeroplane'], 'a file of 21 classes: the VOC names');
    const net = await models.segmentation.lrasppMobilenetV3Large({ weights: { path: weights } });
    const labels = (await predict(net, await readImage(photo))).to('int32').toTypedArray();
    t.deepEqual([...Buffer.from(prediction.labels, 'base64')], [...labels]);
  } finally {
    await own.close();
  }
  t.throws(() => segmentationModel('resnet18' as 'fcn_resnet50'), { message: /name: expected one of fcn_resnet50/ });
});
