/**
 * `npm start`: the "Fully Convolutional Networks" chapter of Dive into Deep Learning, in
 * order, on fcn-torch: the model's shapes, the 2x bilinear upsampling of an image, the FCN,
 * training with its curves, and the prediction grid (the chapter's top-left crops, plus a
 * whole-image prediction, exercise 3). Writes into fcn-output/.
 *
 *   node dist/examples/chapter.js [--data VOC2012_DIR] [--weights resnet18-f37072fd.pth]
 *                                [--epochs N] [--batch-size N] [--arch fcn32s|fcn16s|fcn8s]
 *
 * With --data it uses the chapter's settings (crop 320x480, batch 32, SGD lr 0.001, weight
 * decay 1e-3, 5 epochs). Without it, it writes a synthetic VOC2012 and trains a smaller
 * problem that a fresh (not ImageNet) body learns in a few minutes on two CPU cores.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  bilinearKernel,
  createFcn,
  type FcnArch,
  label2image,
  nn,
  optim,
  plotHistory,
  predict,
  readImage,
  save,
  saveImageGrid,
  type Tensor,
  torch,
  train,
  voc,
} from 'fcn-torch';

const out = 'fcn-output';
const shape = (t: Tensor) => `[${t.shape.join(', ')}]`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      weights: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      arch: { type: 'string', default: 'fcn32s' },
    },
  });
  fs.mkdirSync(out, { recursive: true });
  torch.manualSeed(0);
  const real = values.data !== undefined;
  // The chapter's settings on VOC2012; a smaller problem on synthetic data.
  const settings = real
    ? { crop: [320, 480] as [number, number], batchSize: 32, epochs: 5, lr: 0.001, momentum: 0 }
    : { crop: [160, 224] as [number, number], batchSize: 8, epochs: 5, lr: 0.005, momentum: 0.9 };
  if (values.epochs) settings.epochs = Number(values.epochs);
  if (values['batch-size']) settings.batchSize = Number(values['batch-size']);

  console.log('## The model');
  const weights = values.weights ?? process.env.FCN_RESNET18_WEIGHTS;
  const pretrainedNet = weights ? await nn.resnet18({ weights: { path: weights } }) : nn.resnet18();
  console.log(weights ? `ResNet-18 with weights from ${weights}` : 'ResNet-18, fresh (pass --weights for ImageNet)');
  console.log(
    `last children: ${pretrainedNet
      .namedChildren()
      .slice(-3)
      .map(([name]) => name)
      .join(', ')}`,
  );
  const body = new nn.Sequential(...pretrainedNet.children().slice(0, -2));
  const X = torch.rand([1, 3, 320, 480]);
  console.log(`net(X): ${shape(X)} -> ${shape(body.forward(X))}`);
  const net = createFcn({ arch: values.arch as FcnArch, backbone: pretrainedNet });
  console.log(`${values.arch}: ${shape(X)} -> ${shape(await net.forwardAsync(X))}`);

  console.log('\n## Initializing transposed convolutional layers');
  const root =
    values.data ??
    (await voc.synthesize(path.join(out, 'synthetic-voc'), {
      count: 200,
      height: 192,
      width: 256,
      classes: [1, 2, 3, 4, 5, 6],
    }));
  const split = fs.readFileSync(path.join(root, 'ImageSets', 'Segmentation', 'train.txt'), 'utf8').split('\n')[0];
  const image = await readImage(path.join(root, 'JPEGImages', `${split}.jpg`));
  const convTrans = new nn.ConvTranspose2d(3, 3, { kernelSize: 4, padding: 1, stride: 2, bias: false });
  convTrans.weight.copy_(bilinearKernel(3, 3, 4));
  const upsampled = convTrans.forward(image.to('float32').unsqueeze(0)).squeeze(0).detach().add(0.5).to('uint8');
  console.log(`input image shape: ${shape(image)}, output image shape: ${shape(upsampled)}`);
  await saveImageGrid([[image], [upsampled]], path.join(out, 'bilinear-upsampling.png'));

  console.log('\n## Reading the dataset');
  const { trainIter, testIter } = await voc.loadDataVoc(settings.batchSize, settings.crop, { root });

  console.log('\n## Training');
  console.log(
    `crop ${settings.crop.join('x')}, batch ${settings.batchSize}, SGD lr ${settings.lr}, momentum ` +
      `${settings.momentum}, weight decay 1e-3, ${settings.epochs} epochs`,
  );
  const optimizer = new optim.SGD(net.parameters(), {
    lr: settings.lr,
    momentum: settings.momentum,
    weightDecay: 1e-3,
  });
  const history = await train(net, trainIter, testIter, {
    epochs: settings.epochs,
    optimizer,
    plot: path.join(out, 'curves.svg'),
    checkpoint: path.join(out, 'checkpoint.safetensors'),
    config: { arch: values.arch, init: 'bilinear', numClasses: 21, ...settings, wd: 1e-3, seed: 0, data: root },
  });
  await plotHistory(history, path.join(out, 'curves.png'));
  await save(net.stateDict(), path.join(out, 'fcn.safetensors'));
  const last = history[history.length - 1];
  console.log(
    `loss ${last.trainLoss.toFixed(3)}, train acc ${last.trainAccuracy.toFixed(3)}, test acc ` +
      `${last.testAccuracy.toFixed(3)}, test mIoU ${last.testMeanIoU.toFixed(3)}; curves in ${out}/curves.svg|png`,
  );

  console.log('\n## Prediction');
  const test = new voc.VOCSegDataset(root, { split: 'val', cropSize: settings.crop, log: null });
  await test.load();
  const rows: Tensor[][] = [];
  const [h, w] = settings.crop;
  for (const example of test.examples.slice(0, 4)) {
    const pixels = example.image.permute([2, 0, 1]).contiguous();
    const pred = await predict(net, pixels, { mode: 'crop', cropSize: settings.crop });
    const crop = (t: Tensor) => t.narrow(0, 0, h).narrow(1, 0, w);
    rows.push([crop(example.image), label2image(pred), label2image(crop(example.label))]);
  }
  await saveImageGrid(rows, path.join(out, 'prediction-grid.png'));
  console.log(`image | prediction | label, top-left ${h}x${w} crops: ${out}/prediction-grid.png`);
  const first = test.examples[0];
  const whole = await predict(net, first.image.permute([2, 0, 1]).contiguous(), {
    mode: 'whole',
    tileSize: settings.crop,
  });
  await saveImageGrid(
    [[first.image, label2image(whole), label2image(first.label)]],
    path.join(out, 'prediction-whole.png'),
  );
  console.log(`whole ${first.image.shape[0]}x${first.image.shape[1]} image (exercise 3): ${out}/prediction-whole.png`);
}

main().catch((err: unknown) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
