/**
 * `fcn eval`: pixel accuracy, mean IoU and per-class IoU of a trained model on one split,
 * from random crops as training measures it, or from whole images with --whole. Only the
 * evaluated split is read.
 */
import path from 'node:path';
import { Command } from '@commander-js/extra-typings';
import type { ClassInfo } from '../data/classes';
import { detectFormat, problemsError, readDataset } from '../data/dataset';
import { classesOf, modelFromFile } from '../model-file';
import type { ModelSpec } from '../model-spec';
import type { Module } from '../nn/module';
import type { Device } from '../tensor';
import { evaluate, evaluateWholeImages } from '../trainer';
import * as voc from '../voc';
import { VOCBatches } from '../voc/loader';
import { action, precisionOption, setPrecision, setThreads } from './common';
import { cropSize, device, existingDir, existingFile, integer } from './options';

export const evalCommand = new Command('eval')
  .description('pixel accuracy, mean IoU and per-class IoU of a trained model on the val split')
  .requiredOption(
    '--checkpoint <file>',
    'the checkpoint.safetensors or model.safetensors that fcn train writes, or a checkpoint or state dict saved from the API',
    existingFile,
  )
  .requiredOption(
    '--data <dir>',
    'the dataset trained on: a VOC2012 folder (or the folder given to fcn synth --out), or image/mask folders',
    existingDir,
  )
  .option('--crop <HxW>', 'crop size (default: the one trained with)', cropSize)
  .option('--whole', 'evaluate whole images at their own size instead of crops', false)
  .option('--batch-size <n>', 'batch size (crops)', integer(1), 8)
  .option('--device <device>', 'cpu, cuda or cuda:N', device, 'cpu' as Device)
  .option('--threads <n>', 'CPU threads for libtorch', integer(1, 65_536))
  .addOption(precisionOption('float32'));

evalCommand.action(
  action('eval', async (o) => {
    setThreads(o.threads);
    console.log(setPrecision(o.precision, o.device));
    const { net, spec } = await modelFromFile(o.checkpoint, o.device);
    const classes = classesOf(spec);
    const r =
      (spec.dataset?.format ?? detectFormat(o.data)) === 'voc'
        ? await evaluateVoc(net, spec, o)
        : await evaluateDataset(net, spec, classes, o);
    console.log(
      `pixel accuracy ${r.pixelAccuracy.toFixed(4)}, mean IoU ${r.meanIoU.toFixed(4)}` +
        (Number.isNaN(r.loss) ? '' : `, loss ${r.loss.toFixed(4)}`),
    );
    const width = Math.max(16, ...classes.map((c) => c.name.length + 1));
    console.log(`${'class'.padEnd(width)} IoU`);
    r.classIoU.forEach((iou, c) => {
      console.log(`${(classes[c]?.name ?? String(c)).padEnd(width)} ${iou === null ? '   -' : iou.toFixed(4)}`);
    });
  }),
);

type EvalFlags = ReturnType<typeof evalCommand.opts>;
type Evaluation = Awaited<ReturnType<typeof evaluate>>;

/** The crop to evaluate with: --crop, or the one trained with. */
function cropOf(o: EvalFlags, spec: ModelSpec): [number, number] {
  const crop = o.crop ?? spec.crop;
  if (!crop) {
    throw new Error(`'${o.checkpoint}' does not say which crop it was trained with; give --crop HxW or --whole`);
  }
  return crop;
}

/** A model trained on VOC2012 (or its synthetic likeness), on that tree's val split. */
async function evaluateVoc(net: Module, spec: ModelSpec, o: EvalFlags): Promise<Evaluation> {
  const root = voc.resolveVocRoot(o.data);
  if (spec.numClasses !== voc.VOC_CLASSES.length) {
    throw new Error(
      `'${o.checkpoint}' has ${spec.numClasses} classes, but '${o.data}' is a VOC2012 tree of ` +
        `${voc.VOC_CLASSES.length}; give the dataset it was trained on`,
    );
  }
  if (o.whole) {
    const dataset = new voc.VOCSegDataset(root, { split: 'val', cropSize: [1, 1] });
    return evaluateWholeImages(net, await dataset.load(), { numClasses: spec.numClasses });
  }
  const testIter = await voc.loadSplit('val', o.batchSize, cropOf(o, spec), { root, dropLast: false });
  return evaluate(net, testIter, { device: o.device });
}

/**
 * A model trained on a dataset of its own, on that dataset's val split: read as training read
 * it (its layout, ignore value, and the split: the dataset's own, or the run's split.json
 * beside the checkpoint, or the same seeded random split). A model whose file does not say
 * how (a checkpoint written from the API) takes `data.loadData`'s defaults.
 */
async function evaluateDataset(net: Module, spec: ModelSpec, classes: ClassInfo[], o: EvalFlags): Promise<Evaluation> {
  const settings = spec.dataset ?? { format: detectFormat(o.data), ignoreIndex: 255, valFraction: 0.1, seed: 0 };
  const data = await readDataset(o.data, {
    ...settings,
    classes,
    only: 'val',
    splitFile: path.join(path.dirname(o.checkpoint), 'split.json'),
  });
  if (data.problems.length > 0) throw problemsError(data, o.data);
  if (data.classes.length !== classes.length) {
    throw new Error(`'${o.checkpoint}' has ${classes.length} classes, but '${o.data}' has ${data.classes.length}`);
  }
  const examples = data.val.examples;
  if (examples.length === 0) throw new Error(`the val split of '${o.data}' is empty`);
  console.log(`${examples.length} val images of '${o.data}' (${data.split} split)`);
  const options = { numClasses: classes.length, ignoreIndex: data.ignoreIndex };
  if (o.whole) return evaluateWholeImages(net, examples, options);
  const crop = cropOf(o, spec);
  const testIter = new VOCBatches(
    { examples, cropSize: crop, length: examples.length, ignoreIndex: data.ignoreIndex },
    o.batchSize,
    { shuffle: false, dropLast: false, seed: settings.seed + 1_000_003 },
  );
  return evaluate(net, testIter, { device: o.device, loss: { ignoreIndex: data.ignoreIndex } });
}
