/**
 * `fcn predict`: for each image, the colour label map, an overlay (the image blended with
 * the colours) and a legend of the classes found, from a checkpoint of `fcn train` or a
 * torchvision segmentation model (`--model`, its published weights or a file); a grid of
 * input | prediction too.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from '@commander-js/extra-typings';
import { label2image, readImage, saveImageGrid } from '../image';
import { getModel, SEGMENTATION_MODELS, SegmentationModel } from '../models/segmentation';
import type { Module } from '../nn/module';
import { predict } from '../predict';
import type { Device, Tensor } from '../tensor';
import { VOC_CLASSES, VOC_COLORMAP, VOC_VOID_COLOUR } from '../voc/colours';
import { action, modelFromCheckpoint, modelWeights, setThreads } from './common';
import { cropSize, device, existingFile, integer, isFile } from './options';

export const predictCommand = new Command('predict')
  .description('colour label maps, overlays and legends of images, and a grid of input | prediction')
  .argument('<images...>', 'image files (JPEG, PNG, ...)')
  .option('--checkpoint <file>', 'a checkpoint.safetensors written by fcn train', existingFile)
  .addOption(new Option('--model <name>', 'a torchvision segmentation model instead').choices(SEGMENTATION_MODELS))
  .option('--weights <w>', 'with --model: COCO_WITH_VOC_LABELS_V1 or DEFAULT (download once), or a file', 'DEFAULT')
  .option('--num-classes <n>', 'with --model and a weights file: its classes (default: read from the file)', integer(1))
  .option('--out <dir>', 'output folder', 'fcn-predictions')
  .option('--full', "the chapter's FCN: label whole images of any size (tiles), not the top-left crop", false)
  .option('--crop <HxW>', "the chapter's FCN: crop size (default: the one trained with)", cropSize)
  .option('--device <device>', 'cpu, cuda or cuda:N', device, 'cpu' as Device)
  .option('--threads <n>', 'CPU threads for libtorch', integer(1));

type PredictFlags = ReturnType<typeof predictCommand.opts>;

predictCommand.action(
  action('predict', async (images, o) => {
    setThreads(o.threads);
    const missing = images.find((image) => !isFile(image));
    if (missing !== undefined) throw new Error(`no such image file '${missing}'`);
    const { net, classes, crop } = await modelOf(o);
    fs.mkdirSync(o.out, { recursive: true });
    const rows: Tensor[][] = [];
    for (const file of images) {
      const pixels = await readImage(file);
      const segmentation = net instanceof SegmentationModel; // its weights' preprocessing, the whole image
      const whole = o.full || segmentation;
      const labels = await predict(net, pixels, segmentation ? {} : { mode: whole ? 'whole' : 'crop', cropSize: crop });
      const shown = whole ? pixels : pixels.narrow(1, 0, crop[0]).narrow(2, 0, crop[1]);
      const colour = label2image(labels);
      const stem = path.join(o.out, path.parse(file).name);
      await saveImageGrid([[colour]], `${stem}.png`, { gap: 0 });
      await saveImageGrid([[overlay(shown, colour)]], `${stem}.overlay.png`, { gap: 0 });
      const found = legend(labels, classes);
      fs.writeFileSync(`${stem}.legend.svg`, legendSvg(found));
      rows.push([shown, colour]);
      console.log(`${file} -> ${stem}.png (${labels.shape.join('x')}), ${stem}.overlay.png, ${stem}.legend.svg`);
      for (const c of found) console.log(`  ${c.name.padEnd(16)} ${c.hex}  ${(100 * c.share).toFixed(1)} %`);
    }
    const grid = path.join(o.out, 'grid.png');
    await saveImageGrid(rows, grid);
    console.log(`input | prediction: ${grid}`);
  }),
);

/** The model to run, its class names and (for the chapter's FCN) its crop. */
async function modelOf(o: PredictFlags): Promise<{ net: Module; classes: readonly string[]; crop: [number, number] }> {
  if (o.model && o.checkpoint) throw new RangeError('give --checkpoint or --model, not both');
  if (o.model) {
    const weights = modelWeights(o.weights);
    const net = await getModel(o.model, {
      weights,
      ...(o.numClasses !== undefined ? { numClasses: o.numClasses } : {}),
    });
    const classes = net.categories ?? (classCount(net) === VOC_CLASSES.length ? VOC_CLASSES : []);
    return { net: net.to(o.device), classes, crop: [0, 0] };
  }
  if (!o.checkpoint) throw new RangeError('give --checkpoint FILE (a run of fcn train) or --model NAME');
  const { net, config } = await modelFromCheckpoint(o.checkpoint, o.device);
  return { net, classes: VOC_CLASSES, crop: o.crop ?? config.crop };
}

/** The classes a segmentation model gives (the bias of its last classifier layer). */
function classCount(net: Module): number {
  const biases = [...net.get('classifier').namedParameters().entries()].filter(([n]) => n.endsWith('bias'));
  return biases.at(-1)?.[1].shape[0] ?? 0;
}

/** The image blended half and half with the label colours, uint8 [H, W, 3]. */
function overlay(pixels: Tensor, colour: Tensor): Tensor {
  return pixels.permute([1, 2, 0]).to('float32').add(colour.to('float32')).div(2).add(0.5).to('uint8');
}

interface LegendEntry {
  id: number;
  name: string;
  hex: string;
  share: number;
}

/** The classes present in labels, most pixels first, with their colour and share. */
function legend(labels: Tensor, names: readonly string[]): LegendEntry[] {
  const ids = labels.to('int32').toTypedArray() as Int32Array;
  const counts = new Map<number, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  const hex = (rgb: readonly number[]) => `#${rgb.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([id, n]) => ({
      id,
      name: names[id] ?? `class ${id}`,
      hex: hex(VOC_COLORMAP[id] ?? VOC_VOID_COLOUR),
      share: n / ids.length,
    }));
}

const escapeXml = (text: string) => text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** A legend as SVG: a swatch, the class name and its share of the pixels per row. */
function legendSvg(entries: LegendEntry[]): string {
  const rows = entries.map(
    (e, i) =>
      `  <rect x="8" y="${8 + i * 24}" width="16" height="16" fill="${e.hex}" stroke="#000"/>\n` +
      `  <text x="32" y="${21 + i * 24}">${escapeXml(e.name)} (${(100 * e.share).toFixed(1)} %)</text>`,
  );
  const height = 16 + entries.length * 24;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="260" height="${height}" font-family="sans-serif" font-size="13">\n` +
    `  <rect width="100%" height="100%" fill="#fff"/>\n${rows.join('\n')}\n</svg>\n`
  );
}
