/** `fcn synth`, `fcn download-voc` and `fcn data check`: the data the other commands read. */
import { Command } from '@commander-js/extra-typings';
import { disposeDataset, readDataset } from '../data/dataset';
import { describeDataset } from '../data/report';
import * as voc from '../voc';
import { action } from './common';
import { datasetOptions, integer } from './options';

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

const checkCommand = new Command('check')
  .description(
    'read a whole dataset as fcn train would and say what was found (layout, classes, splits, sizes, pixels per ' +
      'class) and every problem with its file; exits with 1 when there are problems',
  )
  .argument('<dir>', 'the dataset folder')
  .addOption(datasetOptions.format())
  .addOption(datasetOptions.ignoreIndex())
  .addOption(datasetOptions.valFraction())
  .option('--seed <n>', 'seed of that random split', integer(0), 0);

checkCommand.action(
  action('data check', async (dir, o) => {
    const data = await readDataset(dir, {
      format: o.format,
      ignoreIndex: o.ignoreIndex,
      valFraction: o.valFraction,
      seed: o.seed,
    });
    for (const line of describeDataset(data)) console.log(line);
    disposeDataset(data);
    if (data.problems.length > 0) process.exitCode = 1;
  }),
);

export const dataCommand = new Command('data')
  .description('look at a dataset before training on it')
  .addCommand(checkCommand);
