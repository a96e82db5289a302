/**
 * The README's and the guides' TypeScript is examples/*.ts (issue 15): every `ts` block of the
 * README and of docs/*.md stands verbatim in an example file, and every example runs, as written,
 * on small data.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { freePort } from '../../src';
import { runNode } from '../helpers';

const root = path.resolve(__dirname, '..', '..', '..');
const examples = path.join(root, 'examples');
const compiled = path.resolve(__dirname, '..', '..', 'examples');

test('every TypeScript block of the README and the guides is taken from an example file', (t) => {
  const guides = fs
    .readdirSync(path.join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => path.join('docs', f));
  const sources = fs
    .readdirSync(examples)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => fs.readFileSync(path.join(examples, f), 'utf8'));
  let count = 0;
  for (const file of ['README.md', ...guides]) {
    const text = fs.readFileSync(path.join(root, file), 'utf8');
    const blocks = [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
    // The README holds at least its quick start, examples/quickstart.ts (test/e2e/package.test.ts runs
    // that example as installed).
    if (file === 'README.md') t.true(blocks.length >= 1, `${file}: ${blocks.length} blocks`);
    count += blocks.length;
    for (const block of blocks) {
      t.true(
        sources.some((source) => source.includes(block)),
        `${file}: not in examples/: ${block.split('\n')[0]}`,
      );
    }
  }
  t.true(count >= 4, `${count} blocks`);
});

const runs: [string, RegExp, NodeJS.ProcessEnv?][] = [
  ['quickstart', /\[ 1, 512, 10, 15 \][\s\S]*\[ 1, 21, 320, 480 \][\s\S]*Tensor\(shape=\[2, 2\], dtype=float32/],
  ['data', /\[ 8, 3, 320, 480 \] \[ 8, 320, 480 \] 4 batches per epoch, 1 test batches/],
  ['train', /epoch 2\/2: loss [\d.]+[\s\S]*\[ 160, 240 \] \[ 128, 224 \]/],
  ['finetune', /epoch 2\/2: loss [\d.]+[\s\S]*\[ 160, 240 \] \[ 0(\.\d+)? \]/],
  ['distributed', /1 processes|epoch 1\/1: .* on 1 processes/],
  ['deploy', /\[ 1, 320, 480 \] int64/],
  ['own-data', /\[ 'background', 'circle', 'square' \] (0|1|0\.\d+) \[ 96, 128 \]/],
];

for (const [name, output] of runs) {
  test(`examples/${name}.ts runs as written`, async (t) => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), `fcn-torch-example-${name}-`));
    const env: NodeJS.ProcessEnv =
      name === 'distributed' ? { WORLD_SIZE: '1', RANK: '0', MASTER_PORT: `${await freePort()}` } : {};
    const r = await runNode([path.join(compiled, `${name}.js`)], { cwd, env });
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, output);
  });
}
