/** `fcn predict`: colour label maps of images, and a grid of input | prediction. */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { label2image, readImage, saveImageGrid } from '../image';
import { predict } from '../predict';
import type { Device, Tensor } from '../tensor';
import { action, modelFromCheckpoint } from './common';
import { cropSize, device, existingFile, isFile } from './options';

export const predictCommand = new Command('predict')
  .description('colour label maps of images, and a grid of input | prediction')
  .argument('<images...>', 'image files (JPEG, PNG, ...)')
  .requiredOption('--checkpoint <file>', 'a checkpoint.safetensors written by fcn train', existingFile)
  .option('--out <dir>', 'output folder', 'fcn-predictions')
  .option('--full', 'label whole images of any size (tiles), not the top-left crop', false)
  .option('--crop <HxW>', 'crop size (default: the one trained with)', cropSize)
  .option('--device <device>', 'cpu, cuda or cuda:N', device, 'cpu' as Device);

predictCommand.action(
  action('predict', async (images, o) => {
    const missing = images.find((image) => !isFile(image));
    if (missing !== undefined) throw new Error(`no such image file '${missing}'`);
    const { net, config } = await modelFromCheckpoint(o.checkpoint, o.device);
    const crop = o.crop ?? config.crop;
    fs.mkdirSync(o.out, { recursive: true });
    const rows: Tensor[][] = [];
    for (const file of images) {
      const pixels = await readImage(file);
      const labels = await predict(net, pixels, { mode: o.full ? 'whole' : 'crop', cropSize: crop });
      const colour = label2image(labels);
      const target = path.join(o.out, `${path.parse(file).name}.png`);
      await saveImageGrid([[colour]], target, { gap: 0 });
      const shown = o.full ? pixels : pixels.narrow(1, 0, crop[0]).narrow(2, 0, crop[1]);
      rows.push([shown, colour]);
      console.log(`${file} -> ${target} (${labels.shape.join('x')})`);
    }
    const grid = path.join(o.out, 'grid.png');
    await saveImageGrid(rows, grid);
    console.log(`input | prediction: ${grid}`);
  }),
);
