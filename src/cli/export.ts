/**
 * `fcn export`: a model `fcn train` wrote (or a torchvision segmentation model) as an ONNX file
 * for ONNX Runtime and other runtimes, with its class names and colours in the metadata.
 */
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from '@commander-js/extra-typings';
import { SEGMENTATION_MODELS } from '../models/segmentation';
import { exportOnnx, ONNX_OPSETS } from '../onnx/export';
import { action } from './common';
import { existingFile, integer } from './options';
import { modelOf } from './predict';

/** "HxW" to [h, w], positive integers. */
function size(value: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(value);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
    throw new InvalidArgumentError('expected HEIGHTxWIDTH, positive integers (e.g. 320x480)');
  }
  return [Number(m[1]), Number(m[2])];
}

export const exportCommand = new Command('export')
  .description('write a model as an ONNX file (ONNX Runtime in Node, browsers, Python, C++, ...)')
  .option('--checkpoint <file>', 'the checkpoint.safetensors or model.safetensors that fcn train writes', existingFile)
  .addOption(new Option('--model <name>', 'a torchvision segmentation model instead').choices(SEGMENTATION_MODELS))
  .option('--weights <w>', 'with --model: COCO_WITH_VOC_LABELS_V1 or DEFAULT (download once), or a file', 'DEFAULT')
  .option('--num-classes <n>', 'with --model and a weights file: its classes (default: read from the file)', integer(1))
  .requiredOption('--out <file>', 'the ONNX file to write (e.g. model.onnx)')
  .option(
    '--opset <n>',
    `ONNX opset, ${ONNX_OPSETS.min} to ${ONNX_OPSETS.max}`,
    integer(ONNX_OPSETS.min, ONNX_OPSETS.max),
    ONNX_OPSETS.default,
  )
  .option('--static <HxW>', 'fixed input height and width instead of any size', size)
  .option('--batch <n>', 'with --static: the fixed batch size (default 1)', integer(1))
  .option('--labels', 'end the graph with the argmax: int64 class ids [N, H, W] instead of logits', false)
  .option('--preprocess', 'take uint8 RGB pixels [N, 3, H, W] and normalise them inside the graph', false)
  .option(
    '--aux',
    "also output the auxiliary classifier's logits (aux_logits; torchvision's pretrained weights have one)",
    false,
  );

exportCommand.action(
  action('export', async (o) => {
    if (o.batch !== undefined && o.static === undefined) {
      throw new Error('--batch needs --static HxW: without it the file takes any batch size');
    }
    const { net, classes } = await modelOf({ ...o, device: 'cpu' });
    const result = await exportOnnx(net, o.out, {
      opset: o.opset,
      dynamic: o.static === undefined,
      ...(o.static
        ? { inputShape: [o.batch ?? 1, 3, o.static[0], o.static[1]] as [number, number, number, number] }
        : {}),
      aux: o.aux,
      labels: o.labels,
      preprocess: o.preprocess,
      classes: classes.map((c) => c.name),
      palette: classes.map((c) => c.color),
      metadata: o.model
        ? { source: o.model, weights: o.weights }
        : { source: path.basename(o.checkpoint ?? ''), weights: o.checkpoint ?? '' },
    });
    console.log(
      `${result.file}: ${(result.bytes / 2 ** 20).toFixed(1)} MiB, opset ${o.opset}, ${result.nodes} nodes, ` +
        `input '${result.input}', output '${result.output}'${result.auxOutput ? ` and '${result.auxOutput}'` : ''}`,
    );
  }),
);
