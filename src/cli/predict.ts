/**
 * `fcn predict`: labels images with a model `fcn train` wrote, each at its own size (or the
 * chapter's top-left crop with --crop): a colour label map per image, and a grid of input |
 * prediction. Outputs never overwrite an input, and two inputs of the same name get two
 * outputs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { label2image, readImage, saveImageGrid } from '../image';
import { PREDICT_MAX_PIXELS, predict } from '../predict';
import type { Device, Tensor } from '../tensor';
import { action, modelFromFile } from './common';
import { cropSize, device, existingFile, integer, isFile } from './options';

export const predictCommand = new Command('predict')
  .description('label images with a trained model: a colour label map per image, and a grid of input | prediction')
  .argument('<images...>', 'image files (JPEG, PNG, WebP, ...)')
  .requiredOption(
    '--checkpoint <file>',
    'the checkpoint.safetensors or model.safetensors that fcn train writes',
    existingFile,
  )
  .option('--out <dir>', 'output folder', 'fcn-predictions')
  .option('--crop <HxW>', "label only the top-left HxW crop, as the chapter's predict (multiples of 32)", cropSize)
  .option('--max-pixels <n>', 'the largest image labelled whole, in pixels', integer(1), PREDICT_MAX_PIXELS)
  .option('--device <device>', 'cpu, cuda or cuda:N', device, 'cpu' as Device);

/**
 * The output file of each input in out (`NAME.labels.png`, `NAME-2.labels.png` for a second
 * input called NAME) and the grid's; an error when one would replace an input.
 */
export function outputFiles(images: string[], out: string): { labels: string[]; grid: string } {
  const taken = new Map<string, number>();
  const labels = images.map((file) => {
    const name = path.parse(file).name;
    const seen = (taken.get(name) ?? 0) + 1;
    taken.set(name, seen);
    return path.join(out, `${seen === 1 ? name : `${name}-${seen}`}.labels.png`);
  });
  const grid = path.join(out, 'grid.png');
  const inputs = new Set(images.map((file) => path.resolve(file)));
  for (const target of [...labels, grid]) {
    if (inputs.has(path.resolve(target))) {
      throw new Error(`refusing to overwrite the input '${target}' with a prediction; choose another --out folder`);
    }
  }
  return { labels, grid };
}

predictCommand.action(
  action('predict', async (images, o) => {
    const missing = images.find((image) => !isFile(image));
    if (missing !== undefined) throw new Error(`no such image file '${missing}'`);
    const targets = outputFiles(images, o.out);
    const { net } = await modelFromFile(o.checkpoint, o.device);
    const rows: Tensor[][] = [];
    for (const [i, file] of images.entries()) {
      const pixels = await readImage(file, { maxPixels: o.maxPixels });
      const [, height, width] = pixels.shape;
      if (o.crop && (height < o.crop[0] || width < o.crop[1])) {
        throw new Error(
          `'${file}' is ${height}x${width}, smaller than --crop ${o.crop.join('x')}; leave out --crop to label the whole image`,
        );
      }
      const labels = await predict(net, pixels, {
        ...(o.crop ? { mode: 'crop', cropSize: o.crop } : { mode: 'whole' }),
        maxPixels: o.maxPixels,
      });
      const colour = label2image(labels);
      fs.mkdirSync(o.out, { recursive: true });
      await saveImageGrid([[colour]], targets.labels[i], { gap: 0 });
      rows.push([o.crop ? pixels.narrow(1, 0, o.crop[0]).narrow(2, 0, o.crop[1]) : pixels, colour]);
      console.log(`${file} -> ${targets.labels[i]} (${labels.shape.join('x')})`);
    }
    await saveImageGrid(rows, targets.grid);
    console.log(`input | prediction: ${targets.grid}`);
  }),
);
