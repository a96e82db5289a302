/**
 * A torchvision segmentation model fine-tuned and run (README: "Pretrained segmentation
 * models"), on a small synthetic VOC so that it runs in a minute on a CPU. With
 * `weights: 'COCO_WITH_VOC_LABELS_V1'` (or `{ path: 'lraspp_mobilenet_v3_large-d234d4ea.pth' }`)
 * it starts from torchvision's published weights, downloaded once and checked by SHA-256.
 */
import { models, optim, predict, readImage, train, voc } from 'fcn-torch';

async function main() {
  const root = await voc.synthesize('data', { count: 32, height: 160, width: 240 });
  const { trainIter, testIter } = await voc.loadDataVoc(4, [160, 224], { root });
  const net = await models.segmentation.lrasppMobilenetV3Large({ numClasses: 21 }); // weights: 'COCO_WITH_VOC_LABELS_V1'
  const optimizer = new optim.AdamW(net.parameters(), { lr: 1e-3, weightDecay: 1e-4 });
  const scheduler = new optim.PolynomialLR(optimizer, { totalIters: 2 * trainIter.length, power: 0.9 });
  const history = await train(net, trainIter, testIter, { epochs: 2, optimizer, scheduler }); // torchvision's loss
  const labels = await predict(net, await readImage(`${root}/JPEGImages/synth_000000.jpg`)); // the photo's own size
  console.log(history.at(-1)?.testMeanIoU, labels.shape, scheduler.getLastLr());
}

main();
