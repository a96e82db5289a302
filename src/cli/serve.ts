/**
 * `fcn serve`: the local web viewer (src/serve) from the shell: a model from a checkpoint or
 * weights file, a named model, or the run's checkpoint, and the run view of an `fcn train`
 * folder; it runs until Ctrl-C.
 */
import path from 'node:path';
import { Command, InvalidArgumentError } from '@commander-js/extra-typings';
import { FCN_ARCHS, type FcnArch } from '../fcn';
import { SEGMENTATION_MODELS, type SegmentationModelName } from '../models/segmentation';
import { DEFAULT_LIMITS } from '../serve/limits';
import { chapterModel, fileModel, type ModelSource, segmentationModel } from '../serve/models';
import type { Device } from '../tensor';
import { action, precisionOption, setPrecision, setThreads } from './common';
import { device, existingDir, existingFile, integer, tcpPort } from './options';

/**
 * The names --model takes: the chapter's FCNs with fresh weights, and torchvision's
 * segmentation models with their published weights (or --weights FILE).
 */
export const MODEL_NAMES: readonly string[] = [...FCN_ARCHS, ...SEGMENTATION_MODELS];

function modelName(value: string): string {
  if (!MODEL_NAMES.includes(value)) {
    throw new InvalidArgumentError(`expected one of ${MODEL_NAMES.join(', ')}`);
  }
  return value;
}

/** The model source a --model name stands for. */
function namedModel(name: string, on: Device, weights: string | undefined): ModelSource {
  if ((SEGMENTATION_MODELS as readonly string[]).includes(name)) {
    return segmentationModel(name as SegmentationModelName, { weights, device: on });
  }
  if (weights !== undefined) throw new Error(`--weights goes with a segmentation --model; ${name} has fresh weights`);
  return chapterModel(name as FcnArch, { device: on });
}

export const serveCommand = new Command('serve')
  .description('a local web page: label images with a model, and watch and evaluate a training run')
  .option(
    '--checkpoint <file>',
    'a checkpoint.safetensors or model.safetensors of fcn train, or a checkpoint or state dict saved from the API',
    existingFile,
  )
  .option(
    '--model <name>',
    `a named model: ${MODEL_NAMES.join(', ')} (the chapter's FCNs untrained, the others with published weights)`,
    modelName,
  )
  .option('--weights <w>', 'with a segmentation --model: COCO_WITH_VOC_LABELS_V1 or DEFAULT (download once), or a file')
  .option('--run <dir>', 'an fcn train --out folder: curves, evaluation, validation images', existingDir)
  .option('--data <dir>', "the VOC2012 folder whose val split evaluates the run (default: the run's own)", existingDir)
  .option('--host <host>', 'address to listen on (anything but loopback is reachable by others)', '127.0.0.1')
  .option('--port <port>', 'TCP port (0: any free one)', (v) => (v === '0' ? 0 : tcpPort(v)), 8080)
  .option('--device <device>', 'cpu, cuda or cuda:N', device, 'cpu' as Device)
  .option('--threads <n>', 'CPU threads for libtorch', integer(1))
  .option('--max-upload-mb <n>', 'largest upload, MB', integer(1), DEFAULT_LIMITS.maxUploadBytes / 2 ** 20)
  .option('--max-pixels <n>', 'largest image, pixels (checked before decoding)', integer(1), DEFAULT_LIMITS.maxPixels)
  .option('--queue <n>', 'predictions that may wait behind the running one (more get 503)', integer(0), 4)
  .addOption(precisionOption('auto'));

serveCommand.action(
  action('serve', async (o) => {
    if (o.checkpoint !== undefined && o.model !== undefined) {
      throw new Error('give --checkpoint or --model, not both');
    }
    if (o.weights !== undefined && o.model === undefined) throw new Error('--weights goes with --model');
    setThreads(o.threads);
    const precision = setPrecision(o.precision, o.device);
    const model =
      o.checkpoint !== undefined
        ? fileModel(path.resolve(o.checkpoint), { device: o.device })
        : o.model !== undefined
          ? namedModel(o.model, o.device, o.weights)
          : undefined;
    // Load the model first, so that a bad file is said at once rather than on the first upload.
    await model?.load();
    // The server library loads only for this command, not for every fcn command.
    const { serve } = await import('../serve/index.js');
    const server = await serve({
      model,
      run: o.run,
      data: o.data,
      device: o.device,
      host: o.host,
      port: o.port,
      limits: { maxUploadBytes: o.maxUploadMb * 2 ** 20, maxPixels: o.maxPixels, maxWaiting: o.queue },
    });
    console.log(`fcn serve: ${server.url} (Ctrl-C stops); ${precision}`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await server.close();
  }),
);
