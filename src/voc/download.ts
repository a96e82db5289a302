/**
 * Downloads and unpacks VOC2012 (VOCtrainval_11-May-2012.tar, about 2 GB) as d2l does:
 * a progress bar, a SHA-1 check, extraction with the tar package. Only verified, fully
 * extracted data ever takes its final place, so an interrupted run leaves nothing a later
 * run would trust.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import cliProgress from 'cli-progress';
import * as tar from 'tar';

/** The archive d2l downloads, with its SHA-1. */
export const VOC2012_TRAINVAL = {
  fileName: 'VOCtrainval_11-May-2012.tar',
  url: 'http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar',
  sha1: '4e443f8a2eca6b1dac8a6c57641b67dd40621a49',
} as const;

/** Options of {@link download}. */
export interface DownloadOptions {
  /** Folder to download into; the data lands in root/VOCdevkit/VOC2012. */
  root: string;
  /** Base URL of a mirror holding the archive (its file name is appended). */
  mirror?: string;
  /** Expected SHA-1 of the archive (default VOC2012's). */
  sha1?: string;
  /** Draw a progress bar on stderr (default: when stderr is a terminal). */
  progress?: boolean;
}

const COMPLETE = '.fcn-torch-complete';

async function sha1Of(file: string): Promise<string> {
  const hash = createHash('sha1');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

async function fetchArchive(url: string, dest: string, showProgress: boolean): Promise<string> {
  const partial = `${dest}.${process.pid}.partial`;
  const hash = createHash('sha1');
  const bar = showProgress
    ? new cliProgress.SingleBar({ format: 'VOC2012 [{bar}] {percentage}% {value}/{total} MB' })
    : null;
  try {
    const res = await fetch(url);
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
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), meter, fs.createWriteStream(partial));
    if (total > 0 && received !== total) throw new Error(`got ${received} of ${total} bytes`);
    fs.renameSync(partial, dest);
    return hash.digest('hex');
  } catch (err) {
    fs.rmSync(partial, { force: true });
    throw new Error(`downloading ${url} failed: ${(err as Error).message}`);
  } finally {
    bar?.stop();
  }
}

/**
 * Makes root/VOCdevkit/VOC2012 hold VOC2012 and returns that folder; a no-op when a
 * previous run completed. The archive is kept only once its SHA-1 matches.
 */
export async function download(options: DownloadOptions): Promise<string> {
  const root = path.resolve(options.root);
  const voc = path.join(root, 'VOCdevkit', 'VOC2012');
  if (fs.existsSync(path.join(voc, COMPLETE))) return voc;
  fs.mkdirSync(root, { recursive: true });
  const expected = (options.sha1 ?? VOC2012_TRAINVAL.sha1).toLowerCase();
  const archive = path.join(root, VOC2012_TRAINVAL.fileName);
  if (fs.existsSync(archive) && (await sha1Of(archive)) !== expected) fs.rmSync(archive);
  if (!fs.existsSync(archive)) {
    const url = options.mirror
      ? `${options.mirror.replace(/\/+$/, '')}/${VOC2012_TRAINVAL.fileName}`
      : VOC2012_TRAINVAL.url;
    const actual = await fetchArchive(url, archive, options.progress ?? process.stderr.isTTY === true);
    if (actual !== expected) {
      fs.rmSync(archive, { force: true });
      throw new Error(`${VOC2012_TRAINVAL.fileName}: SHA-1 ${actual} does not match the expected ${expected}; removed`);
    }
  }
  // Extract beside the destination, then move the finished tree into place.
  const staging = fs.mkdtempSync(path.join(root, '.extracting-'));
  try {
    await tar.x({ file: archive, cwd: staging, strict: true });
    const extracted = path.join(staging, 'VOCdevkit', 'VOC2012');
    if (!fs.existsSync(path.join(extracted, 'ImageSets', 'Segmentation'))) {
      throw new Error(`${archive} holds no VOCdevkit/VOC2012/ImageSets/Segmentation`);
    }
    fs.rmSync(voc, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(voc), { recursive: true });
    fs.renameSync(extracted, voc);
    fs.writeFileSync(path.join(voc, COMPLETE), `${expected}\n`);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  return voc;
}
