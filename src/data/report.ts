/**
 * What `fcn data check` says of a dataset read by {@link readDataset}: layout, classes, how
 * masks became classes, splits, sizes, each class's share of the labelled pixels, and every
 * problem with its file.
 */
import type { SegmentationData } from './dataset';

const SPLIT_WORDS = {
  official: "the dataset's own train and val",
  folders: 'train/ and val/ folders',
  files: 'train.txt/val.txt at the root',
  run: "the run's split.json",
  random: 'random (no split of its own; fcn train writes the one it draws into its --out as split.json)',
} as const;

const FORMAT_WORDS = {
  voc: 'VOC2012',
  folders: 'image/mask folders',
  cityscapes: 'Cityscapes',
  ade20k: 'ADE20K',
  coco: 'COCO',
} as const;

const MASK_WORDS = {
  'voc palette': "VOC's palette colours (boundary colour ignored)",
  index: 'one value per pixel, the class index',
  binary: 'binary: 0 background, 255 foreground',
  colour: "RGB colours of the class file's classes",
  cityscapes: "gtFine's label ids to the 19 training classes, others ignored",
  ade20k: 'class k stored as k + 1, 0 ignored',
  coco: "instances of VOC's 20 categories drawn as torchvision's references draw them, overlaps ignored",
} as const;

/** Pixels per class id (and ignored pixels) over every decoded example. */
export function classPixels(data: SegmentationData): { perClass: number[]; ignored: number } {
  const perClass = new Array<number>(data.classes.length).fill(0);
  let ignored = 0;
  for (const e of [...data.train.examples, ...data.val.examples]) {
    const ids = e.label.toTypedArray() as Uint8Array | Int32Array;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id === data.ignoreIndex || id >= perClass.length) ignored += 1;
      else perClass[id] += 1;
    }
  }
  return { perClass, ignored };
}

/** The report's lines. */
export function describeDataset(data: SegmentationData): string[] {
  const examples = [...data.train.examples, ...data.val.examples];
  const lines = [
    `dataset: ${data.root} (${FORMAT_WORDS[data.format]})`,
    `classes: ${data.classes.length}, ${data.classSource}`,
    `masks: ${MASK_WORDS[data.masks]}${data.masks === 'index' ? ` (value ${data.ignoreIndex} ignored)` : ''}`,
    `split: ${SPLIT_WORDS[data.split]}; train ${data.train.pairs.length} images, val ${data.val.pairs.length}`,
  ];
  if (examples.length > 0) {
    const heights = examples.map((e) => e.image.shape[0]);
    const widths = examples.map((e) => e.image.shape[1]);
    lines.push(
      `sizes (HxW): ${Math.min(...heights)}x${Math.min(...widths)} to ${Math.max(...heights)}x${Math.max(...widths)}, ` +
        `${examples.length} read`,
    );
    const { perClass, ignored } = classPixels(data);
    const total = perClass.reduce((a, b) => a + b, 0) + ignored;
    const width = Math.max(12, ...data.classes.map((c) => c.name.length + 1));
    lines.push(`${'class'.padEnd(width)}   id  pixels`);
    data.classes.forEach((c, id) => {
      lines.push(
        `${c.name.padEnd(width)} ${String(id).padStart(4)}  ${((100 * perClass[id]) / total).toFixed(2).padStart(6)} %`,
      );
    });
    lines.push(`${'(ignored)'.padEnd(width)}       ${((100 * ignored) / total).toFixed(2).padStart(6)} %`);
  }
  if (data.problems.length === 0) {
    lines.push('no problems found');
  } else {
    lines.push(`${data.problems.length} problem${data.problems.length === 1 ? '' : 's'}:`);
    for (const p of data.problems) lines.push(`  ${p.file}: ${p.message}`);
  }
  return lines;
}
