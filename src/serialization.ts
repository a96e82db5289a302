/**
 * Weight files: `load` reads safetensors and PyTorch `torch.save` files (zip and legacy),
 * `save` writes safetensors. Both run on the native worker thread.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkTensor } from './checks';
import { native } from './native';
import { Tensor } from './tensor';

/**
 * Reads the tensors of a weights file into a Map, in file order. The format is told by the
 * content: safetensors, or a `torch.save` file (zip, or the legacy pre-1.6 format) whose
 * top-level object is a dict (nested dicts are flattened with '.'; non-tensor values are
 * skipped). Pickles are read by a restricted unpickler that never runs code: anything but
 * a state dict's types is refused with an error naming it.
 */
export async function load(file: string): Promise<Map<string, Tensor>> {
  return (await loadWithMetadata(file)).tensors;
}

/** @internal The tensors of a weights file and its string metadata (safetensors' `__metadata__`), read once. */
export async function loadWithMetadata(
  file: string,
): Promise<{ tensors: Map<string, Tensor>; metadata: Record<string, string> }> {
  if (typeof file !== 'string') throw new TypeError(`load: path must be a string, got ${typeof file}`);
  const { tensors, metadata } = await native.loadWeights(path.resolve(file));
  return { tensors: new Map(tensors.map(([name, t]) => [name, new Tensor(t)])), metadata };
}

/** Largest safetensors header read for its metadata alone (a checkpoint's history is a few kB). */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;

/**
 * @internal The `__metadata__` of a safetensors file, read from its header alone (no tensor is
 * read, cheap enough to poll); null when the file is not safetensors.
 */
export async function readSafetensorsMetadata(file: string): Promise<Record<string, string> | null> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const size = Buffer.alloc(8);
    if ((await handle.read(size, 0, 8, 0)).bytesRead < 8) return null;
    const length = size.readBigUInt64LE(0);
    if (length < 2n || length > BigInt(MAX_HEADER_BYTES)) return null;
    const header = Buffer.alloc(Number(length));
    if ((await handle.read(header, 0, header.length, 8)).bytesRead < header.length) return null;
    const json: unknown = JSON.parse(header.toString('utf8'));
    const metadata = (json as { __metadata__?: unknown }).__metadata__;
    return metadata !== null && typeof metadata === 'object' ? (metadata as Record<string, string>) : {};
  } catch {
    return null;
  } finally {
    await handle.close();
  }
}

/**
 * Writes tensors as a `.safetensors` file that Python's `safetensors` and PyTorch read
 * (`__metadata__` gets `format: pt`). The file is written to a temporary name and renamed,
 * so a crash never leaves a half-written file under the final name.
 */
export async function save(
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  file: string,
  metadata: Record<string, string> = { format: 'pt' },
): Promise<void> {
  if (typeof file !== 'string' || !file.endsWith('.safetensors')) {
    throw new TypeError(`save: writes safetensors; give a path ending in .safetensors, got ${JSON.stringify(file)}`);
  }
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const pairs = entries.map(([name, t]): [string, Tensor['native']] => [name, checkTensor(t, `save: '${name}'`)]);
  await native.saveSafetensors(pairs, path.resolve(file), metadata);
}
