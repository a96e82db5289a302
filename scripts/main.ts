/**
 * `npm start`: the model-building half of the FCN chapter, printing each shape. Uses
 * torchvision's ImageNet ResNet-18 when `--weights FILE` names it (or FCN_RESNET18_WEIGHTS
 * does), else a freshly initialised one (no network is needed).
 */
import { bilinearKernel, init, nn, save, torch } from '../src';

async function main(): Promise<void> {
  const weightsAt = process.argv.indexOf('--weights');
  const weights = weightsAt > 0 ? process.argv[weightsAt + 1] : process.env.FCN_RESNET18_WEIGHTS;
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

  const out = 'fcn.safetensors';
  await save(net.stateDict(), out);
  console.log(`saved ${net.stateDict().size} tensors to ${out}`);
}

function fmt(shape: number[]): string {
  return `[${shape.join(', ')}]`;
}

main().catch((err: unknown) => {
  console.error(`error: ${(err as Error).message}`);
  process.exit(1);
});
