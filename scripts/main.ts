/**
 * `npm start`: the model-building half of the FCN chapter, printing each shape, then one
 * batch of VOC data through it (synthetic VOC unless `--data VOC2012_DIR`), with a picture
 * of input | prediction | ground truth. Uses torchvision's ImageNet ResNet-18 when
 * `--weights FILE` names it (or FCN_RESNET18_WEIGHTS does), else a freshly initialised one.
 * Needs no network. Writes into fcn-output/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { bilinearKernel, init, label2image, nn, save, saveImageGrid, torch, voc } from '../src';

function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
}

async function main(): Promise<void> {
  const weights = option('--weights') ?? process.env.FCN_RESNET18_WEIGHTS;
  const out = 'fcn-output';
  fs.mkdirSync(out, { recursive: true });
  torch.manualSeed(0);

  const pretrained = weights ? await nn.resnet18({ weights: { path: weights } }) : nn.resnet18();
  console.log(
    `ResNet-18 (${weights ? `weights from ${weights}` : 'random init: pass --weights resnet18-f37072fd.pth for ImageNet'})`,
  );
  console.log(
    `children: ${pretrained
      .namedChildren()
      .map(([name]) => name)
      .join(', ')}`,
  );

  const net = new nn.Sequential(...pretrained.children().slice(0, -2));
  const X = torch.rand([1, 3, 320, 480]);
  console.log(`body: X ${fmt(X.shape)} -> ${fmt(net.forward(X).shape)}`);

  const numClasses = 21;
  net.addModule('final_conv', new nn.Conv2d(512, numClasses, { kernelSize: 1 }));
  net.addModule(
    'transpose_conv',
    new nn.ConvTranspose2d(numClasses, numClasses, { kernelSize: 64, padding: 16, stride: 32 }),
  );
  net.get('transpose_conv').weight.copy_(bilinearKernel(numClasses, numClasses, 64));
  init.xavierUniform_(net.get('final_conv').weight);

  const started = Date.now();
  const Y = await net.forwardAsync(X);
  console.log(`FCN:  X ${fmt(X.shape)} -> Y ${fmt(Y.shape)} (forwardAsync, ${Date.now() - started} ms)`);

  // The chapter's 2x bilinear upsampling by a transposed convolution.
  const convTrans = new nn.ConvTranspose2d(3, 3, { kernelSize: 4, padding: 1, stride: 2, bias: false });
  convTrans.weight.copy_(bilinearKernel(3, 3, 4));
  const image = torch.rand([1, 3, 40, 60]);
  console.log(`2x bilinear upsampling: ${fmt(image.shape)} -> ${fmt(convTrans.forward(image).shape)}`);

  const weightsFile = path.join(out, 'fcn.safetensors');
  await save(net.stateDict(), weightsFile);
  console.log(`saved ${net.stateDict().size} tensors to ${weightsFile}`);

  // One batch of VOC data through the (untrained) FCN.
  const root = option('--data') ?? (await voc.synthesize(path.join(out, 'synthetic-voc'), { count: 12 }));
  const { testIter } = await voc.loadDataVoc(2, [160, 224], { root });
  const batch = await testIter[Symbol.asyncIterator]().next();
  if (batch.done) throw new Error(`no batch: ${root} has fewer than 2 val images of at least 160x224`);
  const { X: images, Y: labels } = batch.value;
  const pred = (await net.eval().forwardAsync(images)).argmax(1);
  console.log(`VOC batch: X ${fmt(images.shape)} -> prediction ${fmt(pred.shape)} (untrained, so mostly noise)`);
  // The crop itself, un-normalised back to bytes.
  const std = torch.tensor([...voc.IMAGENET_STD]).reshape([3, 1, 1]);
  const mean = torch.tensor([...voc.IMAGENET_MEAN]).reshape([3, 1, 1]);
  const picture = images.narrow(0, 0, 1).squeeze(0).mul(std).add(mean).mul(255).add(0.5).to('uint8');
  const grid = path.join(out, 'prediction-grid.png');
  const first = (t: typeof pred) => label2image(t.narrow(0, 0, 1).squeeze(0));
  await saveImageGrid([[picture, first(pred), first(labels)]], grid);
  console.log(`input | prediction | ground truth: ${grid}`);
}

function fmt(shape: number[]): string {
  return `[${shape.join(', ')}]`;
}

main().catch((err: unknown) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
