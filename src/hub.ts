/**
 * Downloads weight files once into a cache, as torch.hub does: the file's SHA-256 must
 * start with the hash in its name, and only a verified file ever takes the final name.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** PyTorch's checkpoint cache: `$TORCH_HOME/hub/checkpoints` (default ~/.cache/torch). */
export function defaultCacheDir(): string {
  const torchHome =
    process.env.TORCH_HOME ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'torch');
  return path.join(torchHome, 'hub', 'checkpoints');
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

/** What {@link fetchCached} needs to know. */
export interface CachedFile {
  url: string;
  fileName: string;
  /** Leading hex digits of the file's SHA-256. */
  sha256Prefix: string;
  cacheDir?: string;
}

/**
 * The path of fileName in the cache, downloading it first when it is missing or fails its
 * checksum. A failed or interrupted download leaves nothing under the final name.
 */
export async function fetchCached({ url, fileName, sha256Prefix, cacheDir }: CachedFile): Promise<string> {
  const dir = cacheDir ?? defaultCacheDir();
  const dest = path.join(dir, fileName);
  if (fs.existsSync(dest)) {
    if ((await sha256Of(dest)).startsWith(sha256Prefix)) return dest;
    fs.rmSync(dest, { force: true });
  }
  fs.mkdirSync(dir, { recursive: true });
  const partial = `${dest}.${process.pid}.partial`;
  try {
    const res = await fetch(url);
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    const hash = createHash('sha256');
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('data', (chunk: Buffer) => hash.update(chunk));
    await pipeline(body, fs.createWriteStream(partial));
    const digest = hash.digest('hex');
    if (!digest.startsWith(sha256Prefix)) {
      throw new Error(`checksum mismatch: SHA-256 ${digest} does not start with ${sha256Prefix}`);
    }
    fs.renameSync(partial, dest);
    return dest;
  } catch (err) {
    fs.rmSync(partial, { force: true });
    throw new Error(`downloading ${fileName} from ${url} failed: ${(err as Error).message}`);
  }
}
