/** `fcn synth` and `fcn download-voc`: the data the other commands read. */
import { Command } from '@commander-js/extra-typings';
import * as voc from '../voc';
import { action } from './common';
import { integer } from './options';

export const synthCommand = new Command('synth')
  .description('write a synthetic VOC2012 (shapes whose colour and form tell their class)')
  .requiredOption('--out <dir>', 'folder to write into (the data lands in DIR/VOCdevkit/VOC2012)')
  .option('--count <n>', 'images', integer(2), 48)
  .option('--height <px>', 'image height', integer(8), 160)
  .option('--width <px>', 'image width', integer(8), 240)
  .option('--seed <n>', 'seed of the scenes', integer(0), 0);

synthCommand.action(
  action('synth', async (o) => {
    console.log(await voc.synthesize(o.out, { count: o.count, height: o.height, width: o.width, seed: o.seed }));
  }),
);

export const downloadVocCommand = new Command('download-voc')
  .description('download and unpack Pascal VOC2012 (2 GB; checked by SHA-1)')
  .requiredOption('--out <dir>', 'folder to download into (the data lands in DIR/VOCdevkit/VOC2012)')
  .option('--mirror <url>', 'base URL of a mirror holding VOCtrainval_11-May-2012.tar');

downloadVocCommand.action(
  action('download-voc', async (o) => {
    console.log(await voc.download({ root: o.out, mirror: o.mirror }));
  }),
);
