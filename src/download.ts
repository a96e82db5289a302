/**
 * The one way this package downloads a file (torchvision weights, VOC2012): streamed into a
 * temporary file beside its destination while its digest is computed, checked (length and
 * SHA), then renamed, so that nothing half-written or unverified ever has the final name.
 * A progress bar is drawn on stderr when it is a terminal.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

/** The digests downloads are checked with. */
export type HashAlgorithm = 'sha256' | 'sha1';

/** What {@link downloadVerified} fetches and how it checks it. */
export interface VerifiedDownload {
  url: string;
  /** Where the file goes; its folder is created. */
  dest: string;
  algorithm: HashAlgorithm;
  /** The expected hex digest, or its leading digits (torch.hub's file-name convention). */
  expected: string;
  /** Draw a progress bar on stderr (default: when stderr is a terminal). */
  progress?: boolean;
}

/** The hex digest of a file. */
export async function fileDigest(file: string, algorithm: HashAlgorithm): Promise<string> {
  const hash = createHash(algorithm);
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

/** Whether a hex digest is the expected one (or starts with the expected leading digits). */
export function digestMatches(digest: string, expected: string): boolean {
  return digest.startsWith(expected.toLowerCase());
}

/** Whether a process runs (a writer whose temporary file may still grow). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the DEST.PID.partial files of downloads whose process died (killed mid-download). */
function removeStalePartials(dest: string): void {
  const prefix = `${path.basename(dest)}.`;
  for (const name of fs.readdirSync(path.dirname(dest))) {
    const pid = Number(name.slice(prefix.length, -'.partial'.length));
    if (name.startsWith(prefix) && name.endsWith('.partial') && Number.isInteger(pid) && pid > 0 && !running(pid)) {
      fs.rmSync(path.join(path.dirname(dest), name), { force: true });
    }
  }
}

function mismatch(algorithm: HashAlgorithm, digest: string, expected: string): string {
  const name = algorithm.toUpperCase().replace('SHA', 'SHA-');
  return expected.length === digest.length
    ? `checksum mismatch: ${name} ${digest} does not match the expected ${expected}; removed`
    : `checksum mismatch: ${name} ${digest} does not start with ${expected}; removed`;
}

/**
 * Downloads url to dest and returns its digest. Any failure (HTTP error, dropped connection,
 * short body, wrong checksum) removes the temporary file and throws
 * "downloading NAME from URL failed: REASON".
 */
export async function downloadVerified(options: VerifiedDownload): Promise<string> {
  const { url, dest, algorithm, expected } = options;
  if (!/^[0-9a-fA-F]{8,}$/.test(expected)) {
    throw new RangeError(
      `expected: the ${algorithm} of ${path.basename(dest)} as 8 or more hex digits, got '${expected}'`,
    );
  }
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  removeStalePartials(dest);
  const partial = `${dest}.${process.pid}.partial`;
  const hash = createHash(algorithm);
  const showProgress = options.progress ?? process.stderr.isTTY === true;
  // The progress bar's library is loaded only when a bar is shown.
  const bar = showProgress
    ? new (await import('cli-progress')).default.SingleBar({
        format: `${path.basename(dest)} [{bar}] {percentage}% {value}/{total} MB`,
      })
    : null;
  let res: Response | undefined;
  try {
    res = await fetch(url);
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    const total = Number(res.headers.get('content-length') ?? 0);
    bar?.start(Math.round(total / 2 ** 20), 0);
    let received = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        received += chunk.length;
        bar?.update(Math.round(received / 2 ** 20));
        done(null, chunk);
      },
    });
    // The file is created before any byte flows: a stream still opening when the body fails
    // would create it after the cleanup below removed the name.
    const out = fs.createWriteStream(partial);
    await once(out, 'ready');
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), meter, out);
    if (total > 0 && received !== total) throw new Error(`got ${received} of ${total} bytes`);
    const digest = hash.digest('hex');
    if (!digestMatches(digest, expected)) throw new Error(mismatch(algorithm, digest, expected));
    fs.renameSync(partial, dest);
    return digest;
  } catch (err) {
    await res?.body?.cancel().catch(() => undefined); // a body never read would hold its connection
    fs.rmSync(partial, { force: true });
    // fetch's own message is "fetch failed"; what failed is in its cause (no route, refused, ...).
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause ? ` (${cause.code ?? cause.message ?? String(cause)})` : '';
    throw new Error(`downloading ${path.basename(dest)} from ${url} failed: ${(err as Error).message}${why}`);
  } finally {
    bar?.stop();
  }
}
