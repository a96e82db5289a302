/**
 * `fcn eval`: pixel accuracy, mean IoU and per-class IoU of a trained model on one split,
 * from random crops as training measures it, or from whole images with --whole. Only the
 * evaluated split is read.
 */
import { Command } from '@commander-js/extra-typings';
import { modelFromFile } from '../model-file';
import type { Device } from '../tensor';
import { evaluate, evaluateWholeImages } from '../trainer';
import * as voc from '../voc';
import { action, setThreads } from './common';
import { cropSize, device, existingDir, existingFile, integer } from './options';

export const evalCommand = new Command('eval')
  .description('pixel accuracy, mean IoU and per-class IoU of a trained model on the val split')
  .requiredOption(
    '--checkpoint <file>',
    'the checkpoint.safetensors or model.safetensors that fcn train writes',
    existingFile,
  )
  .requiredOption('--data <dir>', 'a VOC2012 folder (or the folder given to fcn synth --out)', existingDir)
  .option('--crop <HxW>', 'crop size (default: the one trained with)', cropSize)
  .option('--whole', 'evaluate whole images at their own size instead of crops', false)
  .option('--batch-size <n>', 'batch size (crops)', integer(1), 8)
  .option('--device <device>', 'cpu, cuda or cuda:N', device, 'cpu' as Device)
  .option('--threads <n>', 'CPU threads for libtorch', integer(1, 65_536));

evalCommand.action(
  action('eval', async (o) => {
    setThreads(o.threads);
    const { net, spec } = await modelFromFile(o.checkpoint, o.device);
    const root = voc.resolveVocRoot(o.data);
    let r: Awaited<ReturnType<typeof evaluate>>;
    if (o.whole) {
      const dataset = new voc.VOCSegDataset(root, { split: 'val', cropSize: [1, 1] });
      r = await evaluateWholeImages(net, await dataset.load());
    } else {
      const crop = o.crop ?? spec.crop;
      if (!crop) {
        throw new Error(`'${o.checkpoint}' does not say which crop it was trained with; give --crop HxW or --whole`);
      }
      const testIter = await voc.loadSplit('val', o.batchSize, crop, { root, dropLast: false });
      r = await evaluate(net, testIter, { device: o.device });
    }
    console.log(
      `pixel accuracy ${r.pixelAccuracy.toFixed(4)}, mean IoU ${r.meanIoU.toFixed(4)}` +
        (Number.isNaN(r.loss) ? '' : `, loss ${r.loss.toFixed(4)}`),
    );
    console.log('class            IoU');
    r.classIoU.forEach((iou, c) => {
      console.log(`${(voc.VOC_CLASSES[c] ?? String(c)).padEnd(16)} ${iou === null ? '   -' : iou.toFixed(4)}`);
    });
  }),
);
