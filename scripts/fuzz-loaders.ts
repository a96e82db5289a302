/**
 * Fuzzes the weight-file readers (and, for .png files, the VOC label reader) with seeded
 * mutations of real files (truncation, bit flips, huge declared sizes, offsets past the end,
 * foreign bytes in the pickle): every load must
 * resolve or reject with an Error, never crash, hang or allocate without bound. The test
 * suite runs a short round; this script runs as many as asked.
 *   node dist/scripts/fuzz-loaders.js [ITERATIONS_PER_FILE=2000] [SEED=1]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { load, voc } from '../src';
import { seededRandom } from '../src/voc/random';

/** One mutation of bytes, chosen by random. */
export function mutate(bytes: Buffer, random: () => number): Buffer {
  const out = Buffer.from(bytes);
  const at = () => Math.floor(random() * out.length);
  switch (Math.floor(random() * 5)) {
    case 0: // truncation
      return out.subarray(0, at());
    case 1: // a few bit flips
      for (let i = 1 + Math.floor(random() * 8); i > 0; i--) out[at()] ^= 1 << Math.floor(random() * 8);
      return out;
    case 2: {
      // a huge 64-bit little-endian number (sizes, offsets, lengths)
      const p = Math.min(at(), out.length - 8);
      if (p >= 0) out.writeBigUInt64LE(BigInt(2) ** BigInt(32 + Math.floor(random() * 31)), p);
      return out;
    }
    case 3: {
      // a run of random bytes (unknown opcodes, globals, JSON)
      const p = at();
      for (let i = 0; i < 16 && p + i < out.length; i++) out[p + i] = Math.floor(random() * 256);
      return out;
    }
    default: {
      // digits changed in a text header (safetensors offsets and shapes, zip record sizes)
      for (let i = 0; i < out.length; i++) if (out[i] >= 0x30 && out[i] <= 0x39 && random() < 0.02) out[i] = 0x39;
      return out;
    }
  }
}

/** Loads iterations mutations of each file; returns how many loaded and how many were refused. */
export async function fuzz(files: string[], iterations: number, seed: number) {
  const random = seededRandom(seed);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fcn-torch-fuzz-'));
  let loaded = 0;
  let refused = 0;
  const messages = new Set<string>();
  try {
    for (const file of files) {
      const bytes = fs.readFileSync(file);
      for (let i = 0; i < iterations; i++) {
        const target = path.join(dir, `${i}-${path.basename(file)}`);
        fs.writeFileSync(target, mutate(bytes, random));
        try {
          if (target.endsWith('.png')) (await voc.readLabel(target)).dispose();
          else for (const t of (await load(target)).values()) t.dispose();
          loaded++;
        } catch (err) {
          if (!(err instanceof Error)) throw new Error(`${target}: rejected with a non-Error`);
          refused++;
          messages.add(err.message.replace(/'[^']*'/, "'FILE'").slice(0, 120));
        }
        fs.rmSync(target);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { loaded, refused, messages };
}

async function main(): Promise<void> {
  const iterations = Number(process.argv[2] ?? 2000);
  const seed = Number(process.argv[3] ?? 1);
  const fixtures = path.resolve(__dirname, '..', '..', 'test', 'fixtures');
  const files = fs
    .readdirSync(fixtures)
    .filter((f) => /\.(pth|safetensors)$/.test(f) && fs.statSync(path.join(fixtures, f)).size < 500_000);
  const started = performance.now();
  const { loaded, refused, messages } = await fuzz(
    files.map((f) => path.join(fixtures, f)),
    iterations,
    seed,
  );
  const peak = process.resourceUsage().maxRSS >> 10;
  console.log(
    `${files.length} files x ${iterations} mutations: ${loaded} loaded, ${refused} refused with an Error, no crash`,
  );
  console.log(
    `${((performance.now() - started) / 1000).toFixed(1)} s, peak RSS ${peak} MB; ${messages.size} distinct messages, e.g.:`,
  );
  for (const m of [...messages].slice(0, 12)) console.log(`  ${m}`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`error: ${(err as Error).message}`);
    process.exit(1);
  });
}
