/**
 * Hostile and careless files (issue 16): pickles that recurse, nest or share without end,
 * zip bombs and overlapping records, huge safetensors headers, pixel bombs and checkpoints
 * whose metadata lies. Each ends in a JS Error; loads that could crash run in a child
 * process, which must exit cleanly, never by a signal.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import test from 'ava';
import sharp from 'sharp';
import { createFcn, load, loadCheckpoint, nn, readImage, saveCheckpoint, voc } from '../../src';
import {
  deepDictPickle,
  deepListPickle,
  indexedPng,
  legacyFile,
  selfDictPickle,
  sharedDictPickle,
  torchZip,
  zipFile,
} from '../crafted-files';
import { cli, runNode, runScript, scratchDir } from '../helpers';

const tmp = scratchDir('fcn-torch-hostile-');

function write(name: string, bytes: Buffer): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** Loads file in a child process; what it printed: "loaded N" or "error: MESSAGE". */
async function loadInChild(file: string) {
  const r = await runScript(`pkg.load(${JSON.stringify(file)}).then(
    (m) => console.log('loaded ' + m.size),
    (e) => console.log('error: ' + e.message),
  );`);
  return r;
}

test('recursive, deep and shared pickles end in an error, never a crash or a hang', async (t) => {
  const cases: [string, Buffer, RegExp][] = [
    ['self-dict.pth', torchZip(selfDictPickle()), /the dict at 'a\.' contains itself/],
    ['self-dict-legacy.pth', legacyFile(selfDictPickle()), /contains itself/],
    ['deep-list.pth', torchZip(deepListPickle(1_000_000)), /holds no dict of tensors/],
    ['deep-dict.pth', torchZip(deepDictPickle(200_000)), /dicts nested deeper than 64 levels/],
    ['shared-dict.pth', torchZip(sharedDictPickle(32)), /more than 1000000 values to walk/],
  ];
  t.true(legacyFile(selfDictPickle()).length < 64, 'the legacy self-dict is a few dozen bytes');
  for (const [name, bytes, message] of cases) {
    const r = await loadInChild(write(name, bytes));
    t.is(r.signal, null, `${name}: ${r.stderr}`);
    t.is(r.code, 0, `${name}: ${r.stderr}`);
    t.regex(r.stdout, message, name);
  }
});

test('zip records are checked before they are read: bombs, oversized and overlapping records, no version', async (t) => {
  const empty = selfDictPickle().subarray(0, 3); // PROTO 2 and EMPTY_DICT
  const dict = Buffer.concat([empty, Buffer.from('.')]);
  const oneMiB = Buffer.alloc(1 << 20, 7);
  const cases: [string, Buffer, RegExp][] = [
    [
      'bomb.pth',
      torchZip(dict, [{ name: 'archive/version', data: Buffer.alloc(64 << 20), deflate: true }]),
      /record 'archive\/version' is compressed \(method 8\); torch\.save writes stored records only/,
    ],
    [
      'big-version.pth',
      torchZip(dict, [{ name: 'archive/version', data: Buffer.alloc(5000, 49) }]),
      /record 'archive\/version' holds 5000 bytes; only storages and data\.pkl may exceed 4096/,
    ],
    [
      'overlap.pth',
      torchZip(dict, [
        { name: 'archive/data/0', data: oneMiB },
        ...Array.from({ length: 50 }, (_, i) => ({
          name: `archive/data/${i + 1}`,
          data: oneMiB,
          sameBytesAs: 'archive/data/0',
        })),
      ]),
      /two records share bytes of the file/,
    ],
  ];
  // What libtorch's reader requires is checked first, in our words (it threw its own, leaking its zip state: fuzzing found it).
  cases.push(
    ['no-records.pth', zipFile([]), /no-records\.pth' is not a torch\.save file/],
    [
      'no-folder.pth',
      zipFile([{ name: 'data.pkl', data: dict }]),
      /first record 'data\.pkl' is not in a folder, as torch\.save's are/,
    ],
    [
      'no-version.pth',
      zipFile([{ name: 'archive/data.pkl', data: dict }]),
      /has no version record \(archive\/version\), which torch\.save writes/,
    ],
    [
      'future-version.pth',
      torchZip(dict, [{ name: 'archive/version', data: Buffer.from('99\n') }]),
      /is of torch\.save format version '99'; this libtorch reads versions 1 to 10/,
    ],
    [
      'text-version.pth',
      torchZip(dict, [{ name: 'archive/version', data: Buffer.from('three') }]),
      /is of torch\.save format version 'three'/,
    ],
  );
  for (const [name, bytes, message] of cases) {
    await t.throwsAsync(load(write(name, bytes)), { message }, name);
  }
  t.true(fs.statSync(path.join(tmp, 'bomb.pth')).size < 200_000, 'the bomb is small');
  // A well-formed empty state dict still loads.
  t.is((await load(write('empty.pth', torchZip(dict)))).size, 0);
});

test('a safetensors header of 80,000 tensors is validated in one pass', async (t) => {
  const entries = Array.from({ length: 80_000 }, (_, i) => `"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
  const header = Buffer.from(`{${entries.join(',')}}`);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  const tensors = await load(write('many.safetensors', Buffer.concat([length, header])));
  t.is(tensors.size, 80_000);
});

test('pixel bombs are refused from the header, before decoding', async (t) => {
  const file = path.join(tmp, 'huge.png');
  await sharp({ create: { width: 10_000, height: 10_000, channels: 3, background: '#204060' } })
    .png({ compressionLevel: 9 })
    .toFile(file);
  t.true(fs.statSync(file).size < 2_000_000);
  await t.throwsAsync(readImage(file, { maxPixels: 4096 * 4096 }), {
    message: /cannot read image '.*huge\.png': it is 10000x10000 \(100000000 pixels\), more than the 16777216 allowed/,
  });
});

test('indexed PNG labels that lie end in an error naming the file and the fault', async (t) => {
  const rows = [
    [0, 1, 2, 0],
    [1, 2, 0, 1],
    [2, 0, 1, 2],
    [0, 1, 2, 0],
  ];
  const palette = [
    [0, 0, 0],
    [128, 0, 0],
    [224, 224, 192],
  ];
  const good = indexedPng(rows, palette, [0, 1, 2, 3, 4]);
  t.deepEqual(
    Array.from((await voc.readLabel(write('good.png', good))).toTypedArray() as Uint8Array),
    [0, 1, 255, 0, 1, 255, 0, 1, 255, 0, 1, 255, 0, 1, 255, 0],
  );
  const damaged = Buffer.from(good);
  damaged[damaged.indexOf('IDAT') + 6] ^= 1;
  const zeros = (n: number) => zlib.deflateSync(Buffer.alloc(n));
  const cases: [string, Buffer, RegExp][] = [
    ['damaged', damaged, /cannot read image '.*damaged\.png': its IDAT chunk at byte \d+ fails its CRC check/],
    ['truncated', good.subarray(0, good.length - 20), /cannot read image '.*truncated\.png': truncated/],
    [
      'bomb',
      indexedPng(rows, palette, [0], zeros(50_000_000)),
      /cannot read image '.*bomb\.png': its image data inflates to more than the 20 bytes of 4x4 pixels/,
    ],
    [
      'not-deflate',
      indexedPng(rows, palette, [0], Buffer.from('not deflate')),
      /cannot read image '.*not-deflate\.png': its image data does not inflate/,
    ],
    ['short', indexedPng(rows, palette, [0], zeros(7)), /label '.*short\.png': the image data is 7 bytes/],
    [
      'filter',
      indexedPng(rows, palette, [0], zlib.deflateSync(Buffer.from(Array.from({ length: 20 }, () => 9)))),
      /label '.*filter\.png': row 0 has PNG filter type 9, not one of 0-4/,
    ],
    [
      'index',
      indexedPng([[0, 1, 2, 7], ...rows.slice(1)], palette),
      /label '.*index\.png': palette index 7 at row 0, column 3 is past the palette's 3 colours/,
    ],
    [
      'colour',
      indexedPng(rows, [
        [0, 0, 0],
        [1, 2, 3],
        [224, 224, 192],
      ]),
      /label '.*colour\.png': colour \(1, 2, 3\) at row 0, column 1 is not in the VOC palette/,
    ],
  ];
  for (const [name, bytes, message] of cases) {
    await t.throwsAsync(voc.readLabel(write(`${name}.png`, bytes)), { message }, name);
  }
  await t.throwsAsync(voc.readLabel(write('huge-label.png', good), { maxPixels: 15 }), {
    message: /it is 4x4 \(16 pixels\), more than the 15 allowed/,
  });
  // A file longer than a 16-pixel image with its metadata could be (sparse: nothing written).
  const long = write('long-label.png', good);
  fs.truncateSync(long, 2 ** 27);
  await t.throwsAsync(voc.readLabel(long, { maxPixels: 16 }), {
    message: /it is 134217728 bytes, more than an image of 16 pixels takes/,
  });
  await t.throwsAsync(voc.readLabel(tmp), { message: /cannot read image '.*': .*(not a regular file|EISDIR)/ });
  await t.throwsAsync(voc.readLabel(long, { maxPixels: 0 }), { message: /maxPixels: expected an integer >= 1/ });
});

/** Replaces the checkpoint metadata of a safetensors file with info, as another writer could. */
function rewriteInfo(file: string, info: unknown): void {
  const bytes = fs.readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString());
  header.__metadata__['fcn-torch'] = JSON.stringify(info);
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(text.length));
  fs.writeFileSync(file, Buffer.concat([length, Buffer.from(text), bytes.subarray(8 + headerLength)]));
}

test("a checkpoint's metadata is validated, and checked against its tensors before a model is built", async (t) => {
  const net = createFcn({ numClasses: 3 });
  const config = { arch: 'fcn32s', init: 'bilinear', numClasses: 400, crop: [64, 96] };
  const lying = path.join(tmp, 'lying.safetensors');
  await saveCheckpoint(lying, { model: net, epoch: 1, history: [], config });
  const r = await runNode([cli, 'eval', '--checkpoint', lying, '--data', tmp, '--whole'], { cwd: tmp });
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /says fcn32s with 400 classes, but its final_conv\.weight is \[3, 512, 1, 1\]/);
  // A checkpoint of a model the CLI cannot rebuild, or with a config whose fields are wrong: said in words.
  const bare = path.join(tmp, 'bare.safetensors');
  await saveCheckpoint(bare, { model: nn.resnet18(), epoch: 1, history: [], config: {} });
  const noConfig = await runNode([cli, 'predict', '--checkpoint', bare, bare], { cwd: tmp });
  t.regex(
    noConfig.stderr,
    /'.*bare\.safetensors' is a checkpoint of a model that fcn eval, predict and serve cannot rebuild: its config does not say which \(model or arch, and numClasses\) and its tensors \(conv1\.weight, .*\) are those of neither/,
  );
  // A config field that would not read back is refused when saved; one written otherwise, when loaded.
  const partial = path.join(tmp, 'partial.safetensors');
  await t.throwsAsync(
    saveCheckpoint(partial, { model: net, epoch: 1, history: [], config: { arch: 'fcn32s', numClasses: '3' } }),
    {
      message:
        /^saveCheckpoint: the config would not load in fcn eval, predict or serve, .* \(its numClasses is "3", not a number\)$/,
    },
  );
  await t.throwsAsync(saveCheckpoint(partial, { model: net, epoch: 1, history: [], config: { classes: ['sky', 7] } }), {
    message: 'saveCheckpoint: config.classes[1] must be a name, or { name, color }',
  });
  await saveCheckpoint(partial, { model: net, epoch: 1, history: [], config: { crop: [64, 96], lr: 0.1 } });
  rewriteInfo(partial, { epoch: 1, history: [], config: { arch: 'fcn32s', numClasses: '3' } });
  const wrongField = await runNode([cli, 'predict', '--checkpoint', partial, partial], { cwd: tmp });
  t.regex(wrongField.stderr, /does not say which model it holds \(its numClasses is "3", not a number\)\n$/);
  // Metadata that is not what a checkpoint holds is named field by field.
  for (const [name, info, message] of [
    ['null-config', { epoch: 1, history: [], config: null }, /config: .*expected record/i],
    ['bad-history', { epoch: 1, history: [{ epoch: 'one' }], config: {} }, /history\.0\.epoch/],
    ['array-config', { epoch: 1, history: [], config: [] }, /config: .*expected record/i],
  ] as const) {
    const file = path.join(tmp, `${name}.safetensors`);
    await saveCheckpoint(file, { model: net, epoch: 1, history: [], config: {} });
    rewriteInfo(file, info);
    await t.throwsAsync(loadCheckpoint(file), { message }, name);
  }
});
