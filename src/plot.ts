/**
 * The training curves as d2l's animator draws them (loss, train accuracy, test accuracy,
 * and here test mean IoU, per epoch), rendered by vega-lite to SVG, or to PNG by sharp.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { EpochMetrics } from './metrics';

const SERIES: [keyof EpochMetrics, string][] = [
  ['trainLoss', 'train loss'],
  ['trainAccuracy', 'train acc'],
  ['testAccuracy', 'test acc'],
  ['testMeanIoU', 'test mIoU'],
];

/** The curves of history as an SVG document. */
export async function historySvg(history: EpochMetrics[]): Promise<string> {
  // vega and vega-lite are ES modules with top-level await: loaded only when plotting.
  const [vl, vega] = await Promise.all([import('vega-lite'), import('vega')]);
  const values = history.flatMap((m) => SERIES.map(([key, series]) => ({ epoch: m.epoch, series, value: m[key] })));
  const spec = vl.compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 420,
    height: 260,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
      y: { field: 'value', type: 'quantitative', title: null },
      color: { field: 'series', type: 'nominal', title: null, sort: SERIES.map(([, s]) => s) },
    },
  }).spec;
  return new vega.View(vega.parse(spec), { renderer: 'none' }).toSVG();
}

/** Writes the curves of history to file: SVG, or PNG when the name ends in .png. */
export async function plotHistory(history: EpochMetrics[], file: string): Promise<void> {
  const svg = await historySvg(history);
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const temp = `${file}.partial`;
  if (file.toLowerCase().endsWith('.png')) await sharp(Buffer.from(svg), { density: 144 }).png().toFile(temp);
  else await fs.writeFile(temp, svg);
  await fs.rename(temp, file);
}
