/**
 * Deploying without libtorch (README: "Deploying"): the chapter's FCN exported to ONNX, then
 * labelled by ONNX Runtime for Node alone (`npm install onnxruntime-node`: Windows, macOS and
 * Linux, x64 and arm64). Run it with `node dist/examples/deploy.js`.
 */
import { createFcn, exportOnnx } from 'fcn-torch';
import * as ort from 'onnxruntime-node';

async function main() {
  // Where the model was trained: uint8 pixels in, a class id per pixel out.
  const net = createFcn({ numClasses: 21 });
  await exportOnnx(net, 'fcn.onnx', { preprocess: true, labels: true });

  // Where it is deployed: ONNX Runtime only.
  const session = await ort.InferenceSession.create('fcn.onnx');
  const pixels = Uint8Array.from({ length: 3 * 320 * 480 }, () => Math.random() * 256); // RGB planes
  const { labels } = await session.run({ image: new ort.Tensor('uint8', pixels, [1, 3, 320, 480]) });
  console.log(labels.dims, labels.type); // [ 1, 320, 480 ] int64
}

main();
