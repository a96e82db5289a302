/** `fcn eval`: pixel accuracy, mean IoU and per-class IoU of a checkpoint on the val split. */
import { Command } from '@commander-js/extra-typings';
import type { Device } from '../tensor';
import { evaluate } from '../trainer';
import * as voc from '../voc';
import { action, modelFromCheckpoint, setThreads } from './common';
import { cropSize, device, existingDir, existingFile, integer } from './options';

export const evalCommand = new Command('eval')
  .description('pixel accuracy, mean IoU and per-class IoU of a checkpoint on the val split')
  .requiredOption('--checkpoint <file>', 'a checkpoint.safetensors written by fcn train', existingFile)
  .requiredOption('--data <dir>', 'a VOC2012 folder', existingDir)
  .option('--crop <HxW>', 'crop size (default: the one trained with)', cropSize)
  .option('--batch-size <n>', 'batch size', integer(1), 8)
  .option('--device <device>', 'cpu, cuda or cuda:N', device, 'cpu' as Device)
  .option('--threads <n>', 'CPU threads for libtorch', integer(1));

evalCommand.action(
  action('eval', async (o) => {
    setThreads(o.threads);
    const { net, config } = await modelFromCheckpoint(o.checkpoint, o.device);
    const { testIter } = await voc.loadDataVoc(o.batchSize, o.crop ?? config.crop, {
      root: o.data,
      seed: config.seed,
      dropLast: false,
    });
    const r = await evaluate(net, testIter, { device: o.device });
    console.log(
      `pixel accuracy ${r.pixelAccuracy.toFixed(4)}, mean IoU ${r.meanIoU.toFixed(4)}, loss ${r.loss.toFixed(4)}`,
    );
    console.log('class            IoU');
    r.classIoU.forEach((iou, c) => {
      console.log(`${(voc.VOC_CLASSES[c] ?? String(c)).padEnd(16)} ${iou === null ? '   -' : iou.toFixed(4)}`);
    });
  }),
);
