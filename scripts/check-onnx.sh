#!/usr/bin/env bash
# The ONNX exports checked by ONNX itself and by PyTorch: exports ResNet-18, the chapter's FCN
# (also in int8, QDQ), torchvision's fcn_resnet50 (with its aux output) and
# lraspp_mobilenet_v3_large (random weights and BatchNorm statistics) with their weights as
# safetensors, then
# scripts/check_onnx.py runs onnx.checker and Python's onnxruntime against PyTorch's forward
# (the scratch venv of scripts/python-env.sh). Needs `npm run build` first.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
node - "$dir" <<'JS'
const path = require('node:path');
const { createFcn, exportOnnx, models, nn, quantizeInt8, save, torch } = require('./dist/src');
(async () => {
  const dir = process.argv[2];
  torch.manualSeed(7);
  const nets = [
    ['resnet18', nn.resnet18()],
    ['fcn32s', createFcn({ numClasses: 5 })],
    ['fcn_resnet50', await models.segmentation.fcnResnet50({ numClasses: 3, auxLoss: true })],
    ['lraspp_mobilenet_v3_large', await models.segmentation.lrasppMobilenetV3Large({ numClasses: 3 })],
  ];
  for (const [name, net] of nets) {
    for (const [key, t] of net.stateDict()) {
      if (key.endsWith('running_var')) t.copy_(torch.rand(t.shape).add(0.5));
      if (key.endsWith('running_mean')) t.copy_(torch.randn(t.shape).mul(0.1));
    }
    net.eval();
    await save(net.stateDict(), path.join(dir, `${name}.safetensors`));
    await exportOnnx(net, path.join(dir, `${name}.onnx`), { aux: name === 'fcn_resnet50' });
    if (name === 'fcn32s') {
      await exportOnnx(net, path.join(dir, 'fcn32s-labels.onnx'), { labels: true, preprocess: true });
      const int8 = await quantizeInt8(net, [torch.randn([2, 3, 64, 96])]);
      await exportOnnx(int8, path.join(dir, 'fcn32s-int8.onnx'), { labels: true });
    }
  }
})().catch((e) => { console.error(e); process.exit(1); });
JS
"$(bash scripts/python-env.sh)" scripts/check_onnx.py "$dir"
