import path from 'node:path';
import test from 'ava';
import { fuzz } from '../scripts/fuzz-loaders';
import { fixtures } from './helpers';

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
