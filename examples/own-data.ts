/**
 * Training on your own data: a folder of images/ and masks/ with a classes.txt, as a user
 * brings it. The first part only makes such a folder (12 photos of a circle or a square on
 * a textured background, and their single-channel masks: 0 background, 1 circle, 2 square,
 * 255 ignored); the rest is what you would write.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createFcn, data, optim, predict, readImage, saveMask, train } from 'fcn-torch';
import sharp from 'sharp';

/** A photo and its mask, 96x128: one shape of class 1 (circle) or 2 (square), a ring of 255 around it. */
async function writeExample(dir: string, stem: string, shape: 1 | 2, seed: number) {
  const [height, width] = [96, 128];
  const photo = Buffer.alloc(height * width * 3);
  const mask = Buffer.alloc(height * width);
  const [cy, cx, r] = [30 + ((seed * 7) % 36), 34 + ((seed * 13) % 60), 18];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const d = shape === 1 ? Math.hypot(y - cy, x - cx) : Math.max(Math.abs(y - cy), Math.abs(x - cx));
      const cls = d < r ? shape : 0;
      mask[y * width + x] = Math.abs(d - r) < 1 ? 255 : cls;
      const texture = ((x * 31 + y * 17 + seed * 5) % 40) - 20;
      const colour = cls === 0 ? [90, 140, 90] : cls === 1 ? [200, 60, 60] : [60, 60, 200];
      for (let c = 0; c < 3; c++) photo[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, colour[c] + texture));
    }
  }
  await sharp(photo, { raw: { width, height, channels: 3 } })
    .jpeg()
    .toFile(path.join(dir, 'images', `${stem}.jpg`));
  await sharp(mask, { raw: { width, height, channels: 1 } })
    .png()
    .toFile(path.join(dir, 'masks', `${stem}.png`));
}

async function makeDataset(dir: string) {
  for (const sub of ['images', 'masks']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  fs.writeFileSync(path.join(dir, 'classes.txt'), 'background\ncircle\nsquare\n');
  for (let i = 0; i < 12; i++) await writeExample(dir, `photo ${i}`, i % 2 === 0 ? 1 : 2, i);
}

async function main() {
  await makeDataset('mydata');
  // mydata/images/*.jpg, mydata/masks/*.png (same names), mydata/classes.txt
  const { trainIter, testIter, classes } = await data.loadData(4, [96, 128], { root: 'mydata', valFraction: 0.25 });
  const net = createFcn({ numClasses: classes.length }); // the head follows the dataset: 3 classes
  const history = await train(net, trainIter, testIter, {
    epochs: 2,
    optimizer: new optim.SGD(net.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-3 }),
  });
  const labels = await predict(net, await readImage('mydata/images/photo 0.jpg'));
  const colours = classes.map((c) => c.color);
  await saveMask(labels, colours, 'photo 0.mask.png'); // an indexed PNG: value = class id, palette = colours
  const names = classes.map((c) => c.name);
  console.log(names, history.at(-1)?.testMeanIoU, labels.shape);
}

main();
