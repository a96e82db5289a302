/**
 * `fcn predict`: labels images, each at its own size (or the chapter's top-left crop with
 * --crop), with a model `fcn train` wrote or a torchvision segmentation model (`--model`, its
 * published weights or a file): per image the colour label map, an overlay (the image blended
 * with the colours) and a legend of the classes found; a grid of input | prediction too.
 * Outputs never overwrite an input, and two inputs of the same name get two outputs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from '@commander-js/extra-typings';
import { type ClassInfo, classColour, defaultClasses } from '../data/classes';
import { type ClassFound, classesFound, label2image, overlay, readImage, saveImageGrid, saveMask } from '../image';
import { classesOf, modelFromFile, modelWeights } from '../model-file';
import { classTensor } from '../model-kind';
import { getModel, SEGMENTATION_MODELS, SegmentationModel } from '../models/segmentation';
import type { Module } from '../nn/module';
import { PREDICT_MAX_PIXELS, predict } from '../predict';
import type { Device, Tensor } from '../tensor';
import { VOC_VOID_COLOUR } from '../voc/colours';
import { action, precisionOption, setPrecision, setThreads } from './common';
import { cropSize, device, existingFile, integer, isFile } from './options';

export const predictCommand = new Command('predict')
  .description('label images: a colour label map, an overlay and a legend per image, and a grid of input | prediction')
  .argument('<images...>', 'image files (JPEG, PNG, WebP, ...)')
  .option(
    '--checkpoint <file>',
    'the checkpoint.safetensors or model.safetensors that fcn train writes, or a checkpoint or state dict saved from the API',
    existingFile,
  )
  .addOption(new Option('--model <name>', 'a torchvision segmentation model instead').choices(SEGMENTATION_MODELS))
  .option('--weights <w>', 'with --model: COCO_WITH_VOC_LABELS_V1 or DEFAULT (download once), or a file', 'DEFAULT')
  .option('--num-classes <n>', 'with --model and a weights file: its classes (default: read from the file)', integer(1))
  .option('--out <dir>', 'output folder', 'fcn-predictions')
  .option('--crop <HxW>', "the chapter's FCN: label only the top-left HxW crop, as the chapter's predict", cropSize)
  .option('--max-pixels <n>', 'the largest image labelled, in pixels', integer(1), PREDICT_MAX_PIXELS)
  .option('--device <device>', 'cpu, cuda or cuda:N', device, 'cpu' as Device)
  .option('--threads <n>', 'CPU threads for libtorch', integer(1, 65_536))
  .addOption(precisionOption('auto'));

type PredictFlags = ReturnType<typeof predictCommand.opts>;

/** The outputs of each input in out (NAME.labels.png, NAME-2... for a second NAME); an error when one would replace an input. */
export function outputFiles(images: string[], out: string): { stems: string[]; grid: string } {
  const taken = new Map<string, number>();
  const stems = images.map((file) => {
    const name = path.parse(file).name;
    const seen = (taken.get(name) ?? 0) + 1;
    taken.set(name, seen);
    return path.join(out, seen === 1 ? name : `${name}-${seen}`);
  });
  const grid = path.join(out, 'grid.png');
  const inputs = new Set(images.map((file) => path.resolve(file)));
  const outputs = stems.flatMap((stem) => [`${stem}.labels.png`, `${stem}.overlay.png`, `${stem}.legend.svg`]);
  for (const target of [...outputs, grid]) {
    if (inputs.has(path.resolve(target))) {
      throw new Error(`refusing to overwrite the input '${target}' with a prediction; choose another --out folder`);
    }
  }
  return { stems, grid };
}

predictCommand.action(
  action('predict', async (images, o) => {
    setThreads(o.threads);
    const precision = setPrecision(o.precision, o.device);
    const missing = images.find((image) => !isFile(image));
    if (missing !== undefined) throw new Error(`no such image file '${missing}'`);
    const targets = outputFiles(images, o.out);
    const { net, classes } = await modelOf(o);
    const segmentation = net instanceof SegmentationModel; // its weights' preprocessing, the whole image
    if (segmentation && o.crop) throw new RangeError("--crop is for the chapter's FCN; --model labels whole images");
    const rows: Tensor[][] = [];
    for (const [i, file] of images.entries()) {
      const pixels = await readImage(file, { maxPixels: o.maxPixels });
      const [, height, width] = pixels.shape;
      if (o.crop && (height < o.crop[0] || width < o.crop[1])) {
        throw new Error(
          `'${file}' is ${height}x${width}, smaller than --crop ${o.crop.join('x')}; leave out --crop to label the whole image`,
        );
      }
      const mode = o.crop
        ? { mode: 'crop' as const, cropSize: o.crop }
        : segmentation
          ? {}
          : { mode: 'whole' as const };
      const labels = await predict(net, pixels, { ...mode, maxPixels: o.maxPixels });
      const shown = o.crop ? pixels.narrow(1, 0, o.crop[0]).narrow(2, 0, o.crop[1]) : pixels;
      const colours = classes.map((c) => c.color);
      const colour = label2image(labels, colours);
      const stem = targets.stems[i];
      fs.mkdirSync(o.out, { recursive: true });
      await saveMask(labels, colours, `${stem}.labels.png`);
      await saveImageGrid([[overlay(shown, colour)]], `${stem}.overlay.png`, { gap: 0 });
      const found = classesFound(
        labels,
        classes.map((c) => c.name),
      );
      fs.writeFileSync(`${stem}.legend.svg`, legendSvg(found, classes));
      rows.push([shown, colour]);
      console.log(`${file} -> ${stem}.labels.png (${labels.shape.join('x')}), ${stem}.overlay.png, ${stem}.legend.svg`);
      for (const c of found)
        console.log(`  ${c.name.padEnd(16)} ${hex(classes, c.id)}  ${(100 * c.share).toFixed(1)} %`);
    }
    await saveImageGrid(rows, targets.grid);
    console.log(`input | prediction: ${targets.grid}`);
    console.log(precision);
  }),
);

/** The model of --checkpoint or --model (with --weights, --num-classes) and its classes (names and colours). */
export async function modelOf(
  o: Pick<PredictFlags, 'checkpoint' | 'model' | 'weights' | 'numClasses' | 'device'>,
): Promise<{ net: Module; classes: ClassInfo[] }> {
  if (o.model && o.checkpoint) throw new RangeError('give --checkpoint or --model, not both');
  if (o.model) {
    const net = await getModel(o.model, {
      weights: modelWeights(o.weights),
      ...(o.numClasses !== undefined ? { numClasses: o.numClasses } : {}),
    });
    const names =
      net.categories ??
      defaultClasses(net.stateDict().get(classTensor({ model: o.model }))?.shape[0] ?? 21).map((c) => c.name);
    return { net: net.to(o.device), classes: names.map((name, id) => ({ name, color: classColour(id) })) };
  }
  if (!o.checkpoint) throw new RangeError('give --checkpoint FILE (written by fcn train) or --model NAME');
  const { net, spec } = await modelFromFile(o.checkpoint, o.device);
  return { net, classes: classesOf(spec) };
}

/** The colour of class id as #rrggbb (the boundary colour past the classes). */
const hex = (classes: readonly ClassInfo[], id: number) =>
  `#${(classes[id]?.color ?? VOC_VOID_COLOUR).map((v) => v.toString(16).padStart(2, '0')).join('')}`;

const escapeXml = (text: string) => text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** A legend as SVG: a swatch, the class name and its share of the pixels per row. */
function legendSvg(entries: ClassFound[], classes: readonly ClassInfo[]): string {
  const rows = entries.map(
    (e, i) =>
      `  <rect x="8" y="${8 + i * 24}" width="16" height="16" fill="${hex(classes, e.id)}" stroke="#000"/>\n` +
      `  <text x="32" y="${21 + i * 24}">${escapeXml(e.name)} (${(100 * e.share).toFixed(1)} %)</text>`,
  );
  const height = 16 + entries.length * 24;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="260" height="${height}" font-family="sans-serif" font-size="13">\n` +
    `  <rect width="100%" height="100%" fill="#fff"/>\n${rows.join('\n')}\n</svg>\n`
  );
}
