import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { fuzz } from '../../scripts/fuzz-loaders';
import { VOC_COLORMAP } from '../../src/voc';
import { indexedPng } from '../crafted-files';
import { fixtures } from '../helpers';

test('seeded mutations of real weight files never crash the loaders (a short round)', async (t) => {
  const files = ['python.safetensors', 'checkpoint.pth', 'evil.pth', 'evil-legacy.pth', 'resnet18-strided.pth'];
  const before = process.memoryUsage().rss;
  const { loaded, refused } = await fuzz(
    files.map((f) => path.join(fixtures, f)),
    60,
    7,
  );
  t.is(loaded + refused, files.length * 60);
  t.true(refused > files.length * 20, `only ${refused} of the mutated files were refused`);
  const grown = (process.memoryUsage().rss - before) / 2 ** 20;
  t.true(grown < 512, `RSS grew ${grown.toFixed(0)} MB`);
});

test('seeded mutations of an indexed PNG label never crash readLabel', async (t) => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fcn-torch-fuzz-label-')), 'label.png');
  const rows = Array.from({ length: 30 }, (_, y) => Array.from({ length: 40 }, (_, x) => (x * y) % 21));
  fs.writeFileSync(file, indexedPng(rows, VOC_COLORMAP, [0, 1, 2, 3, 4]));
  const { loaded, refused } = await fuzz([file], 300, 11);
  t.is(loaded + refused, 300);
  t.true(refused > 100, `only ${refused} of the mutated labels were refused`);
});
