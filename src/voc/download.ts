/**
 * Downloads and unpacks VOC2012 (VOCtrainval_11-May-2012.tar, about 2 GB) as d2l does:
 * a progress bar, a SHA-1 check, extraction with the tar package. Only verified, fully
 * extracted data ever takes its final place, so an interrupted run leaves nothing a later
 * run would trust.
 */
import fs from 'node:fs';
import path from 'node:path';
import { digestMatches, downloadVerified, fileDigest } from '../download';

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
  if (fs.existsSync(archive) && !digestMatches(await fileDigest(archive, 'sha1'), expected)) fs.rmSync(archive);
  if (!fs.existsSync(archive)) {
    const url = options.mirror
      ? `${options.mirror.replace(/\/+$/, '')}/${VOC2012_TRAINVAL.fileName}`
      : VOC2012_TRAINVAL.url;
    await downloadVerified({ url, dest: archive, algorithm: 'sha1', expected, progress: options.progress });
  }
  // Extract beside the destination, then move the finished tree into place.
  const staging = fs.mkdtempSync(path.join(root, '.extracting-'));
  try {
    // tar is loaded here, not with the library: only a VOC download needs it.
    const tar = await import('tar');
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
