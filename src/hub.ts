/**
 * Weight files downloaded once into a cache, as torch.hub does: the file's SHA-256 must
 * start with the hash in its name, and only a verified file ever takes the final name.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { digestMatches, downloadVerified, fileDigest } from './download';

/** PyTorch's checkpoint cache: `$TORCH_HOME/hub/checkpoints` (default ~/.cache/torch). */
export function defaultCacheDir(): string {
  const torchHome =
    process.env.TORCH_HOME ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'torch');
  return path.join(torchHome, 'hub', 'checkpoints');
}

/** What {@link fetchCached} needs to know. */
export interface CachedFile {
  url: string;
  fileName: string;
  /** Leading hex digits of the file's SHA-256. */
  sha256Prefix: string;
  cacheDir?: string;
  /** Draw a progress bar while downloading (default: when stderr is a terminal). */
  progress?: boolean;
}

/**
 * The path of fileName in the cache, downloading it first when it is missing or fails its
 * checksum. A failed or interrupted download leaves nothing under the final name.
 */
export async function fetchCached({ url, fileName, sha256Prefix, cacheDir, progress }: CachedFile): Promise<string> {
  const dest = path.join(cacheDir ?? defaultCacheDir(), fileName);
  if (fs.existsSync(dest)) {
    if (digestMatches(await fileDigest(dest, 'sha256'), sha256Prefix)) return dest;
    fs.rmSync(dest, { force: true });
  }
  await downloadVerified({ url, dest, algorithm: 'sha256', expected: sha256Prefix, progress });
  return dest;
}
