/**
 * The chapter's model in TypeScript, step by step (README: "The chapter in TypeScript").
 * Run it with `node dist/examples/quickstart.js`.
 */
import { bilinearKernel, init, nn, save, torch } from 'fcn-torch';

async function main() {
  torch.manualSeed(0);
  const X = torch.rand([1, 3, 320, 480]); // the same numbers as PyTorch's torch.rand after manual_seed(0)
  const pretrained = nn.resnet18(); // torchvision's architecture and state-dict names
  // With torchvision's ImageNet weights (downloaded once, SHA-256 checked):
  //   const pretrained = await nn.resnet18({ weights: 'IMAGENET1K_V1' });
  const net = new nn.Sequential(...pretrained.children().slice(0, -2));
  console.log(net.forward(X).shape); // [1, 512, 10, 15]
  net.addModule('final_conv', new nn.Conv2d(512, 21, { kernelSize: 1 }));
  net.addModule('transpose_conv', new nn.ConvTranspose2d(21, 21, { kernelSize: 64, padding: 16, stride: 32 }));
  net.get('transpose_conv').weight.copy_(bilinearKernel(21, 21, 64));
  init.xavierUniform_(net.get('final_conv').weight);
  const Y = await net.forwardAsync(X); // off the event loop
  console.log(Y.shape); // [1, 21, 320, 480]
  console.log(Y.sum().item() * 2); // item() is a number
  console.log(torch.tensor(new Float32Array([1, 2, 3, 4]), { shape: [2, 2] })); // printed as PyTorch does
  await save(net.stateDict(), 'fcn.safetensors');
}

main();
