/**
 * VOC2012 data as the chapter's `d2l.load_data_voc` gives it (README: "VOC2012 data"): here a
 * synthetic VOC2012 (the real one: `await voc.download({ root: 'data' })`, 2 GB), batches of
 * random crops, and a picture of a batch's first image and label.
 */
import { label2image, saveImageGrid, voc } from 'fcn-torch';

async function main() {
  // The chapter crops 320x480 out of VOC2012's ~500x375 images; the synthetic images are made as large.
  const root = await voc.synthesize('data', { count: 48, height: 352, width: 512 });
  const { trainIter, testIter } = await voc.loadDataVoc(8, [320, 480], { root }); // "read 36 examples (train; ...)"
  for await (const { X, Y } of trainIter) {
    // X float32 [8, 3, 320, 480], ImageNet-normalised; Y int64 [8, 320, 480], 255 = boundary (ignored)
    console.log(X.shape, Y.shape, `${trainIter.length} batches per epoch, ${testIter.length} test batches`);
  }
  const { image, label } = trainIter.dataset.examples[0]; // decoded once: uint8 [H, W, 3] and class ids [H, W]
  await saveImageGrid([[image, label2image(label)]], 'example.png'); // the photo and its colour labels
}

main();
