/**
 * The `fcn` commands that use the library: synthetic or real VOC data, training, evaluation
 * and prediction of the chapter's FCN, and a local web viewer, from the shell, one module per
 * command. User mistakes end in one line on stderr and exit code 1.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from '@commander-js/extra-typings';
import { dataCommand, downloadVocCommand, synthCommand } from './data';
import { evalCommand } from './evaluate';
import { exportCommand } from './export';
import { predictCommand } from './predict';
import { serveCommand } from './serve';
import { setupCommand } from './setup';
import { trainCommand } from './train';

const packageJson = path.join(__dirname, '..', '..', '..', 'package.json');

/** Every `fcn` command; `fcn setup` is listed here and run by ./index before the addon loads. */
export const program = new Command()
  .name('fcn')
  .description('Fully Convolutional Networks (the d2l chapter) and torchvision segmentation models, on libtorch')
  .version(JSON.parse(fs.readFileSync(packageJson, 'utf8')).version)
  .addCommand(synthCommand)
  .addCommand(downloadVocCommand)
  .addCommand(dataCommand)
  .addCommand(trainCommand)
  .addCommand(evalCommand)
  .addCommand(predictCommand)
  .addCommand(exportCommand)
  .addCommand(serveCommand)
  .addCommand(setupCommand);
