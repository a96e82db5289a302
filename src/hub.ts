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
 * checksum. A cached file that fails it is never deleted: it is renamed aside (NAME.bad-TIME,
 * said on stderr) before the download. A failed or interrupted download leaves nothing under
 * the final name, and its error says where the file can be put by hand (offline).
 */
export async function fetchCached({ url, fileName, sha256Prefix, cacheDir, progress }: CachedFile): Promise<string> {
  const dest = path.join(cacheDir ?? defaultCacheDir(), fileName);
  let keptAside = '';
  if (fs.existsSync(dest)) {
    if (digestMatches(await fileDigest(dest, 'sha256'), sha256Prefix)) return dest;
    const aside = `${dest}.bad-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    fs.renameSync(dest, aside);
    keptAside = ` (the cached file, whose SHA-256 does not start with ${sha256Prefix}, is kept as '${aside}')`;
    console.error(`fcn-torch: '${dest}' fails its SHA-256 check; kept as '${aside}', downloading it again`);
  }
  try {
    await downloadVerified({ url, dest, algorithm: 'sha256', expected: sha256Prefix, progress });
  } catch (err) {
    throw new Error(
      `${(err as Error).message}. Offline? Put the file at '${dest}' (its SHA-256 starts with ${sha256Prefix}), ` +
        `or give the file you have (--weights FILE, or { path } in the API)${keptAside}`,
    );
  }
  return dest;
}

/** A weights file that torchvision publishes, and what it was trained for. */
export interface PublishedWeights {
  /** Where torchvision downloads it from. */
  readonly url: string;
  /** The file's name in the cache (the last part of the URL). */
  readonly fileName: string;
  /** The hex digits in the file's name: the start of its SHA-256 (torch.hub's check). */
  readonly sha256Prefix: string;
  /** Outputs of the model these weights fill. */
  readonly numClasses: number;
  /** The class names, index by index (null where not bundled: ImageNet's 1000). */
  readonly categories: readonly string[] | null;
  /** Parameters of the model these weights fill (torchvision's `meta['num_params']`). */
  readonly numParams: number;
  /** The accuracy torchvision reports for them (`meta['_metrics']`). */
  readonly metrics: Readonly<Record<string, number>>;
}

/** A published weights entry from its URL (whose name ends in `-<sha256 prefix>.pth`). */
export function published(
  url: string,
  meta: {
    numClasses: number;
    categories: readonly string[] | null;
    numParams: number;
    metrics: Record<string, number>;
  },
): PublishedWeights {
  const fileName = url.slice(url.lastIndexOf('/') + 1);
  const match = /-([0-9a-f]{8,})\.pth$/.exec(fileName);
  if (!match) throw new Error(`internal: ${fileName} carries no SHA-256 prefix`);
  return { url, fileName, sha256Prefix: match[1], ...meta };
}

/** Where and how published weights are fetched. */
export interface FetchOptions {
  /** Download from here instead of download.pytorch.org (a mirror, or a test server). */
  url?: string;
  /** Cache folder (default `$TORCH_HOME/hub/checkpoints`, shared with PyTorch). */
  cacheDir?: string;
  /** Draw a progress bar while downloading (default: when stderr is a terminal). */
  progress?: boolean;
}

/**
 * A weights choice as the builders take it: a name of the table (`'DEFAULT'` is torchvision's
 * default entry), or a local `.pth` / `.safetensors` file. Resolves to the entry chosen (null
 * for a local file) and a function that gives the file's path, downloading a published file
 * once into the cache. An unknown name is a RangeError listing the valid ones.
 */
export function chooseWeights(
  what: string,
  choice: unknown,
  table: Readonly<Record<string, PublishedWeights>>,
  defaultName: string,
  options: FetchOptions = {},
): { entry: PublishedWeights | null; name: string | null; file: () => Promise<string> } {
  if (typeof choice === 'object' && choice !== null && typeof (choice as { path?: unknown }).path === 'string') {
    const file = (choice as { path: string }).path;
    if (!fs.existsSync(file)) throw new Error(`${what}: no such weights file '${file}'`);
    return { entry: null, name: null, file: async () => file };
  }
  const names = Object.keys(table);
  const name = choice === 'DEFAULT' ? defaultName : choice;
  if (typeof name !== 'string' || !names.includes(name)) {
    throw new RangeError(
      `${what}: expected ${[...names, 'DEFAULT'].map((n) => `'${n}'`).join(', ')} or { path }, got ${JSON.stringify(choice)}`,
    );
  }
  const entry = table[name];
  const file = () =>
    fetchCached({
      url: options.url ?? entry.url,
      fileName: entry.fileName,
      sha256Prefix: entry.sha256Prefix,
      cacheDir: options.cacheDir,
      progress: options.progress,
    });
  return { entry, name, file };
}
