/**
 * Training and prediction as the chapter's `train_ch13` and `predict` (README: "Training,
 * prediction, the exercises"), on a small synthetic VOC so that it runs in a minute on a CPU.
 * The chapter's own settings on VOC2012: batch 32, crop [320, 480], 5 epochs, lr 0.001, and
 * `backbone: await nn.resnet18({ weights: 'IMAGENET1K_V1' })`.
 */
import {
  createFcn,
  label2image,
  loadCheckpoint,
  optim,
  predict,
  readImage,
  saveImageGrid,
  train,
  voc,
} from 'fcn-torch';

async function main() {
  const root = await voc.synthesize('data', { count: 64, height: 160, width: 240 });
  const { trainIter, testIter } = await voc.loadDataVoc(8, [160, 224], { root });
  const net = createFcn({ arch: 'fcn32s' }); // 'fcn16s' | 'fcn8s': skip connections (exercise 4)
  const history = await train(net, trainIter, testIter, {
    epochs: 2,
    optimizer: new optim.SGD(net.parameters(), { lr: 0.005, momentum: 0.9, weightDecay: 1e-3 }),
    devices: ['cpu'], // ['cuda:0', 'cuda:1']: each batch split data-parallel
    checkpoint: 'checkpoint.safetensors', // every epoch, atomically; resume: { resume: await loadCheckpoint(...) }
    plot: 'curves.svg', // loss, train acc, test acc, test mIoU (vega-lite)
  });
  console.log(history.at(-1)?.testMeanIoU, (await loadCheckpoint('checkpoint.safetensors')).epoch);
  const photo = await readImage(`${root}/JPEGImages/synth_000000.jpg`); // uint8 [3, H, W]
  const labels = await predict(net, photo); // int64 [H, W]: every pixel, at the photo's own size (exercise 3)
  const corner = await predict(net, photo, { mode: 'crop', cropSize: [128, 224] }); // the chapter's top-left crop
  await saveImageGrid([[photo, label2image(labels)]], 'prediction.png'); // label2image: VOC colours, uint8 [H, W, 3]
  console.log(labels.shape, corner.shape);
}

main();
