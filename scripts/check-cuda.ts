/**
 * The CUDA build on a GPU, checked against the CPU path of the same build (run with
 * FCN_TORCH_ADDON pointing at the CUDA build): forward, training steps, whole-image
 * prediction, bfloat16 autocast and a NCCL process group. Prints one line per check and exits 1 on a failure.
 *   FCN_TORCH_ADDON=build-cuda/Release/fcn_torch.node node dist/scripts/check-cuda.js
 * cuDNN convolutions may use TF32 and its backward kernels add in no fixed order, so results
 * agree to about 1e-3, not bit for bit. Training is compared by its losses on the FCN, and
 * by its updates on a net without BatchNorm: a randomly initialised FCN's updates amplify
 * rounding (on the CPU alone, channels-last vs contiguous kernels move them by ~14%).
 */
import {
  createFcn,
  type Device,
  freePort,
  initProcessGroup,
  nn,
  optim,
  predict,
  type Tensor,
  Trainer,
  torch,
} from '../src';
import type { Module } from '../src/nn/module';

let failures = 0;
function check(name: string, ok: boolean, detail: string): void {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
  if (!ok) failures++;
}

/** max |a - b| / max |a|, over all elements. */
function relativeDiff(a: Tensor, b: Tensor): number {
  const x = a.to('cpu').to('float64').toTypedArray() as Float64Array;
  const y = b.to('cpu').to('float64').toTypedArray() as Float64Array;
  let diff = 0;
  let scale = 1e-12;
  for (let i = 0; i < x.length; i++) {
    diff = Math.max(diff, Math.abs(x[i] - y[i]));
    scale = Math.max(scale, Math.abs(x[i]));
  }
  return diff / scale;
}

const fcn8s = () => createFcn({ arch: 'fcn8s', numClasses: 6 });
const plainNet = () =>
  new nn.Sequential(
    new nn.Conv2d(3, 16, { kernelSize: 3, padding: 1 }),
    new nn.ReLU(),
    new nn.Conv2d(16, 6, { kernelSize: 1 }),
  );

/** Two copies of one seeded net, on cpu and on device. */
function twins(device: Device, make: () => Module = fcn8s): [Module, Module] {
  torch.manualSeed(0);
  const cpu = make();
  const gpu = make();
  gpu.loadStateDict(cpu.stateDict());
  return [cpu, gpu.to(device)];
}

/** ||updates of a - updates of b|| / ||updates of a||, over all parameters, from start. */
function updateDiff(start: Map<string, Tensor>, a: Module, b: Module): number {
  let diff = 0;
  let norm = 0;
  const pb = b.namedParameters();
  for (const [name, p] of a.namedParameters()) {
    const s = (start.get(name) as Tensor).to('float64').toTypedArray() as Float64Array;
    const x = p.to('cpu').to('float64').toTypedArray() as Float64Array;
    const y = (pb.get(name) as Tensor).to('cpu').to('float64').toTypedArray() as Float64Array;
    for (let i = 0; i < x.length; i++) {
      diff += (x[i] - y[i]) ** 2;
      norm += (x[i] - s[i]) ** 2;
    }
  }
  return Math.sqrt(diff / norm);
}

const snapshot = (m: Module) => new Map([...m.namedParameters()].map(([k, p]) => [k, p.to('cpu').clone()]));

async function trainSteps(
  model: Module,
  device: Device,
  steps: number,
  processGroup?: Awaited<ReturnType<typeof initProcessGroup>>,
) {
  const trainer = new Trainer(
    model,
    new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-3 }),
    {
      devices: [device],
      processGroup,
    },
  );
  torch.manualSeed(7);
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const X = torch.rand([4, 3, 128, 160]);
    const Y = torch.rand([4, 128, 160]).mul(6).to('int64');
    losses.push((await trainer.step(X, Y)).loss);
  }
  return losses;
}

async function main(): Promise<void> {
  if (!torch.cuda.isAvailable()) throw new Error('no GPU visible to this build (is FCN_TORCH_ADDON the CUDA build?)');
  const device: Device = 'cuda:0';
  console.log(`libtorch ${torch.version}, ${torch.cuda.deviceCount()} GPU(s)`);

  const [cpu, gpu] = twins(device);
  cpu.eval();
  gpu.eval();
  const X = torch.rand([2, 3, 160, 224]);
  const yCpu = await torch.noGrad(() => cpu.forwardAsync(X));
  const yGpu = await torch.noGrad(() => gpu.forwardAsync(X.to(device)));
  const forwardDiff = relativeDiff(yCpu, yGpu);
  check('FCN-8s forward, cuda vs cpu', forwardDiff < 5e-3, `relative max difference ${forwardDiff.toExponential(2)}`);

  const image = torch.rand([3, 75, 101]).mul(255).to('uint8');
  const labelsCpu = await predict(cpu, image, { mode: 'whole', tileSize: [64, 64] });
  const labelsGpu = await predict(gpu, image, { mode: 'whole', tileSize: [64, 64] });
  const a = labelsCpu.toTypedArray() as BigInt64Array;
  const b = labelsGpu.to('cpu').toTypedArray() as BigInt64Array;
  const same = a.filter((v, i) => v === b[i]).length / a.length;
  check('whole-image prediction (tiles), cuda vs cpu', same > 0.99, `${(same * 100).toFixed(2)}% of labels equal`);

  const [fCpu, fGpu] = twins(device);
  const lossesCpu = await trainSteps(fCpu, 'cpu', 3);
  const lossesGpu = await trainSteps(fGpu, device, 3);
  const lossDiff = Math.max(...lossesCpu.map((l, i) => Math.abs(l - lossesGpu[i]) / Math.abs(l)));
  check('3 FCN-8s SGD steps, cuda vs cpu', lossDiff < 2e-3, `losses ${lossDiff.toExponential(2)} (relative)`);
  const [tCpu, tGpu] = twins(device, plainNet);
  const start = snapshot(tCpu);
  await trainSteps(tCpu, 'cpu', 3);
  await trainSteps(tGpu, device, 3);
  const paramDiff = updateDiff(start, tCpu, tGpu);
  check(
    '3 SGD steps of a net without BatchNorm, cuda vs cpu',
    paramDiff < 1e-2,
    `updates ${paramDiff.toExponential(2)} (relative)`,
  );

  // Labels that are no class (on the host or already on the GPU) are refused before the
  // loss (their range is read before the forward, compared with the output's classes after
  // it): a clear error, the weights untouched, and the GPU still usable (an out-of-range
  // class in CUDA's cross-entropy would be a device-side assert that ends the process).
  const [, guarded] = twins(device, plainNet);
  const untouched = snapshot(guarded);
  const guardedTrainer = new Trainer(guarded, new optim.SGD(guarded.parameters(), { lr: 0.1 }), { devices: [device] });
  const badLabels = torch.full([2, 32, 32], 99, { dtype: 'int64' });
  const refusals: string[] = [];
  for (const labels of [badLabels, badLabels.to(device)]) {
    try {
      await guardedTrainer.step(torch.rand([2, 3, 32, 32]), labels);
    } catch (err) {
      refusals.push((err as Error).message);
    }
  }
  const unchanged = [...guarded.namedParameters()].every(([k, p]) => relativeDiff(untouched.get(k) as Tensor, p) === 0);
  const after = await guardedTrainer.step(torch.rand([2, 3, 32, 32]), torch.zeros([2, 32, 32], { dtype: 'int64' }));
  check(
    'labels that are no class, on the host and on the GPU',
    refusals.length === 2 &&
      refusals.every((m) => /label 99 is not a class/.test(m)) &&
      unchanged &&
      Number.isFinite(after.loss),
    `${refusals.length} refused (${refusals[0] ?? 'none'}); weights unchanged: ${unchanged}; a later step's loss ${after.loss.toFixed(4)}`,
  );

  // bfloat16 autocast on the GPU (torch.setAutocast): the same steps' losses within 1e-2 of
  // float32's, weights and outputs still float32, labels mostly the same.
  const [fp32, mixed] = twins(device);
  fp32.to(device);
  const lossesFp32 = await trainSteps(fp32, device, 3);
  torch.setAutocast('cuda', 'bfloat16');
  const lossesMixed = await trainSteps(mixed, device, 3);
  fp32.eval();
  mixed.eval();
  const labelsMixed = await predict(mixed, image, { mode: 'whole', tileSize: [64, 64] });
  const outMixed = await torch.noGrad(() => mixed.forwardAsync(X.to(device)));
  torch.setAutocast('cuda', null);
  const labelsFp32 = await predict(mixed, image, { mode: 'whole', tileSize: [64, 64] });
  const mixedDiff = Math.max(...lossesFp32.map((l, i) => Math.abs(l - lossesMixed[i]) / Math.abs(l)));
  check(
    '3 FCN-8s SGD steps under bfloat16 autocast vs float32, cuda',
    mixedDiff < 1e-2 && outMixed.dtype === 'float32' && mixed.parameters()[0].dtype === 'float32',
    `losses ${mixedDiff.toExponential(2)} (relative); outputs ${outMixed.dtype}`,
  );
  const m = labelsMixed.to('cpu').toTypedArray() as BigInt64Array;
  const f32 = labelsFp32.to('cpu').toTypedArray() as BigInt64Array;
  const agree = m.filter((v, i) => v === f32[i]).length / m.length;
  check(
    'prediction under bfloat16 autocast vs float32, cuda',
    agree > 0.95,
    `${(agree * 100).toFixed(2)}% of labels equal`,
  );

  // CUDA graphs (torch.backends.cudaGraphs): the first call of a shape runs as usual, the
  // second is captured and replayed, later ones replayed; each must equal the plain forward,
  // see weights loaded in place, and hand out copies that later replays leave alone.
  torch.manualSeed(1);
  const chapter = createFcn().to(device);
  chapter.eval();
  const inputs = [0, 1, 2, 3].map(() => torch.rand([1, 3, 160, 224], { device }));
  const forwardAll = () => Promise.all(inputs.map((x) => torch.noGrad(() => chapter.forwardAsync(x))));
  const plain: Tensor[] = [];
  for (const x of inputs) plain.push(await torch.noGrad(() => chapter.forwardAsync(x)));
  torch.backends.cudaGraphs = true;
  const replayed: Tensor[] = [];
  for (const x of inputs) replayed.push(await torch.noGrad(() => chapter.forwardAsync(x)));
  const graphDiff = Math.max(...plain.map((y, i) => relativeDiff(y, replayed[i])));
  const kept = torch.backends.cudaGraphsKept();
  check(
    'CUDA graphs: four forwards (plain, captured, replayed) vs without',
    graphDiff < 1e-5 && kept === 1,
    `relative max difference ${graphDiff.toExponential(2)}; graphs kept ${kept}`,
  );
  torch.manualSeed(2);
  chapter.loadStateDict(createFcn().stateDict());
  const afterLoad = await forwardAll();
  torch.backends.cudaGraphs = false;
  const afterLoadPlain = await forwardAll();
  const loadDiff = Math.max(...afterLoad.map((y, i) => relativeDiff(afterLoadPlain[i], y)));
  const keptDiff = relativeDiff(plain[1], replayed[1]);
  check(
    'CUDA graphs: weights loaded in place are seen; earlier outputs are kept',
    loadDiff < 1e-5 && keptDiff < 1e-5 && relativeDiff(plain[1], afterLoadPlain[1]) > 1e-3,
    `after loading ${loadDiff.toExponential(2)}, an earlier output ${keptDiff.toExponential(2)}`,
  );
  torch.backends.cudaGraphs = true;
  torch.setAutocast('cuda', 'bfloat16');
  const mixedGraphs: Tensor[] = [];
  for (const x of inputs) mixedGraphs.push(await torch.noGrad(() => chapter.forwardAsync(x)));
  const labelsGraphs = await predict(chapter, image, { mode: 'whole', tileSize: [64, 64] });
  await predict(chapter, image, { mode: 'whole', tileSize: [64, 64] });
  const labelsGraphs3 = await predict(chapter, image, { mode: 'whole', tileSize: [64, 64] });
  const keptMixed = torch.backends.cudaGraphsKept();
  torch.backends.cudaGraphs = false;
  const mixedPlain = await forwardAll();
  const labelsPlain = await predict(chapter, image, { mode: 'whole', tileSize: [64, 64] });
  torch.setAutocast('cuda', null);
  // A graph captured inside predict (inference mode) is replayed by a plain no-grad forward
  // of the same input shape, and the other way round.
  torch.backends.cudaGraphs = true;
  const tile = torch.rand([1, 3, 64, 64], { device });
  const fromPredict: string[] = [];
  for (let i = 0; i < 2; i++) await predict(chapter, image, { mode: 'whole', tileSize: [64, 64] });
  try {
    await torch.noGrad(() => chapter.forwardAsync(tile));
  } catch (err) {
    fromPredict.push((err as Error).message);
  }
  torch.backends.cudaGraphs = false;
  const mixedGraphDiff = Math.max(...mixedPlain.map((y, i) => relativeDiff(y, mixedGraphs[i])));
  const lp = labelsPlain.toTypedArray() as BigInt64Array;
  const sameLabels = [labelsGraphs, labelsGraphs3].every((l) =>
    (l.toTypedArray() as BigInt64Array).every((v, i) => v === lp[i]),
  );
  check(
    'CUDA graphs: a graph captured in predict serves a plain no-grad forward',
    fromPredict.length === 0,
    fromPredict[0] ?? 'no error',
  );
  check(
    'CUDA graphs under bfloat16 autocast, and in predict',
    mixedGraphDiff < 1e-5 && sameLabels,
    `forwards ${mixedGraphDiff.toExponential(2)}; predict's labels equal: ${sameLabels}; ` +
      `graphs kept before switching off ${keptMixed}, after ${torch.backends.cudaGraphsKept()}`,
  );

  const group = await initProcessGroup({
    rank: 0,
    worldSize: 1,
    device,
    masterPort: await freePort(),
    timeoutMs: 60_000,
  });
  check('NCCL process group', group.backend === 'nccl', `backend ${group.backend} on ${group.device}`);
  const t = torch.full([1000], 2, { device });
  await group.allReduce(t, 'avg');
  check(
    'NCCL all-reduce',
    Math.abs((t.to('cpu').toTypedArray() as Float32Array)[999] - 2) < 1e-6,
    'a group of one averages to itself',
  );
  const [alone, grouped] = twins(device, plainNet);
  const before = snapshot(alone);
  alone.to(device);
  const lossesAlone = await trainSteps(alone, device, 2);
  await group.broadcastModule(grouped);
  const lossesGrouped = await trainSteps(grouped, device, 2, group);
  const ddpDiff = updateDiff(before, alone, grouped);
  check(
    'distributed steps over NCCL (one rank) vs plain steps',
    ddpDiff < 1e-4 && lossesAlone.every((l, i) => Math.abs(l - lossesGrouped[i]) < 1e-4 * Math.abs(l)),
    `updates ${ddpDiff.toExponential(2)} (relative)`,
  );
  await group.close();
  console.log(failures === 0 ? 'all CUDA checks passed' : `${failures} CUDA check(s) failed`);
  process.exitCode = failures === 0 ? 0 : 1;
}

main().catch((err: unknown) => {
  console.error(`check-cuda: ${(err as Error).stack}`);
  process.exit(1);
});
