import test from 'ava';
import { optim, type Tensor, torch } from '../../src';
import { fixture, maxAbsDiff, pick } from '../helpers';

const numbers = (t: Tensor) => Array.from(t.toTypedArray() as Float64Array, Number);

/** An optimizer over one parameter (the fixture's setup: SGD([p], lr=0.01)). */
const sgd = () => new optim.SGD([torch.zeros([1], { requiresGrad: true })], { lr: 0.01 });

const SCHEDULES: [string, (o: optim.SGD) => optim.LRScheduler][] = [
  ['polynomial', (o) => new optim.PolynomialLR(o, { totalIters: 20, power: 0.9 })],
  ['step', (o) => new optim.StepLR(o, { stepSize: 5, gamma: 0.5 })],
  ['cosine', (o) => new optim.CosineAnnealingLR(o, { tMax: 20, etaMin: 1e-4 })],
  [
    'warmup_polynomial',
    (o) =>
      new optim.SequentialLR(o, {
        schedulers: [
          new optim.LinearLR(o, { startFactor: 0.01, endFactor: 1, totalIters: 5 }),
          new optim.PolynomialLR(o, { totalIters: 15, power: 0.9 }),
        ],
        milestones: [5],
      }),
  ],
];

for (const [name, make] of SCHEDULES) {
  test(`${name}: the learning rates of 20 steps equal PyTorch's within 1e-12`, async (t) => {
    const expected = numbers(pick(await fixture('schedulers.safetensors'), name));
    const optimizer = sgd();
    const scheduler = make(optimizer);
    const got = [optimizer.lrs[0]];
    for (let step = 0; step < 20; step++) {
      optimizer.step();
      scheduler.step();
      got.push(optimizer.lrs[0]);
    }
    t.is(got.length, expected.length);
    got.forEach((lr, i) => {
      t.true(Math.abs(lr - expected[i]) <= 1e-12, `step ${i}: ${lr} vs ${expected[i]}`);
    });
    t.deepEqual(scheduler.getLastLr(), [got[20]]);
  });
}

test('schedulers scale every parameter group from its own initial lr, and resume from their state', (t) => {
  const a = torch.zeros([2], { requiresGrad: true });
  const b = torch.zeros([3], { requiresGrad: true });
  const optimizer = new optim.SGD([{ params: [a] }, { params: [b], lr: 0.1 }], { lr: 0.01, momentum: 0.9 });
  t.deepEqual(optimizer.initialLrs, [0.01, 0.1]);
  const scheduler = new optim.PolynomialLR(optimizer, { totalIters: 10, power: 0.9 });
  scheduler.step();
  const factor = 0.9 ** 0.9; // torchvision's recipe: step 2 runs at lr x 0.9^0.9
  t.true(Math.abs(optimizer.lrs[0] - 0.01 * factor) < 1e-15);
  t.true(Math.abs(optimizer.lrs[1] - 0.1 * factor) < 1e-15);
  const again = new optim.PolynomialLR(optimizer, { totalIters: 10, power: 0.9 });
  t.deepEqual(optimizer.lrs, [0.01, 0.1], 'a new scheduler starts from the initial rates');
  again.loadStateDict(scheduler.stateDict());
  t.deepEqual(optimizer.lrs, scheduler.getLastLr());
  for (let i = 0; i < 20; i++) again.step();
  t.deepEqual(optimizer.lrs, [0, 0], 'polynomial decay ends at 0');
});

test('bad scheduler and optimizer options are clear errors', (t) => {
  const optimizer = sgd();
  t.throws(() => new optim.StepLR(optimizer, { stepSize: 0 }), {
    message: /StepLR: stepSize: expected an integer >= 1/,
  });
  t.throws(() => new optim.PolynomialLR(optimizer, { power: -1 }), { message: /PolynomialLR: power/ });
  t.throws(() => new optim.LinearLR(optimizer, { startFactor: 0 }), { message: /startFactor must be > 0/ });
  t.throws(
    () =>
      new optim.SequentialLR(optimizer, {
        schedulers: [new optim.StepLR(optimizer, { stepSize: 2 })],
        milestones: [3],
      }),
    { message: /expected 0 milestones/ },
  );
  t.throws(() => new optim.StepLR({} as optim.SGD, { stepSize: 2 }), { message: /expected an optimizer/ });
  t.throws(() => optimizer.setLrs([0.1, 0.2]), { message: /expected 1 learning rates/ });
  const p = torch.zeros([1], { requiresGrad: true });
  t.throws(() => new optim.SGD([{ params: [p] }, { params: [] }], { lr: 0.1 }), {
    message: /params\[1\]\.params is empty/,
  });
  t.throws(() => new optim.SGD([{ params: [p], lr: -1 }], { lr: 0.1 }), {
    message: /lr: expected a finite number >= 0/,
  });
  t.throws(() => new optim.AdamW([p], { betas: [0.9, 2] }), {
    message: /betas\[1\]: expected a finite number in \[0, 1\]/,
  });
  t.throws(() => new optim.AdamW([p], { betas: [0.9] as unknown as [number, number] }), { message: /betas/ });
});

for (const amsgrad of [false, true]) {
  test(`AdamW (amsgrad ${amsgrad}): 10 steps equal PyTorch's within 1e-6 relative, state included`, async (t) => {
    const f = await fixture('adamw.safetensors');
    const run = `amsgrad_${amsgrad}`;
    const p1 = pick(f, 'p1.init').clone();
    const p2 = pick(f, 'p2.init').clone();
    p1.requiresGrad = true;
    p2.requiresGrad = true;
    const [v, target, c] = [pick(f, 'v'), pick(f, 't'), pick(f, 'c')];
    const optimizer = new optim.AdamW([p1, p2], {
      lr: 1e-3,
      betas: [0.9, 0.999],
      eps: 1e-8,
      weightDecay: 1e-2,
      amsgrad,
    });
    const history1 = pick(f, `${run}.p1`);
    const history2 = pick(f, `${run}.p2`);
    const losses = Array.from(pick(f, `${run}.loss`).toTypedArray() as Float32Array);
    const scale = (x: Tensor) => Math.max(...Array.from(x.abs().toTypedArray() as Float32Array));
    for (let step = 0; step < 10; step++) {
      optimizer.zeroGrad();
      const loss = p1
        .matmul(v)
        .sub(target)
        .pow(2)
        .sum()
        .add(c.mul(p2.pow(2)).sum())
        .add(p1.sum(0).mul(p2).sum());
      loss.backward();
      optimizer.step();
      t.true(Math.abs((loss.item() as number) - losses[step]) <= 1e-6 * Math.abs(losses[step]), `loss ${step}`);
      const want1 = history1.narrow(0, step, 1).squeeze(0);
      const want2 = history2.narrow(0, step, 1).squeeze(0);
      t.true(maxAbsDiff(p1.detach(), want1) <= 1e-6 * scale(want1), `p1 after step ${step + 1}`);
      t.true(maxAbsDiff(p2.detach(), want2) <= 1e-6 * scale(want2), `p2 after step ${step + 1}`);
    }
    const state = optimizer.stateDict();
    const fields = ['exp_avg', 'exp_avg_sq', ...(amsgrad ? ['max_exp_avg_sq'] : [])];
    for (const [index, name] of [
      [0, 'p1'],
      [1, 'p2'],
    ] as const) {
      for (const field of fields) {
        const want = pick(f, `${run}.${field}.${name}`);
        t.true(maxAbsDiff(pick(state, `state.${index}.${field}`), want) <= 1e-6 * scale(want), `${field}.${name}`);
      }
      t.is(pick(state, `state.${index}.step`).item(), 10);
    }
    t.is(state.has('state.0.max_exp_avg_sq'), amsgrad);
    // The state goes into a new optimizer, which then steps as this one does.
    const q1 = p1.detach().clone();
    q1.requiresGrad = true;
    const q2 = p2.detach().clone();
    q2.requiresGrad = true;
    const resumed = new optim.AdamW([q1, q2], { lr: 1e-3, weightDecay: 1e-2, amsgrad });
    resumed.loadStateDict(state);
    for (const [opt, a, b] of [
      [optimizer, p1, p2],
      [resumed, q1, q2],
    ] as const) {
      opt.zeroGrad();
      a.sum().add(b.pow(2).sum()).backward();
      opt.step();
    }
    t.is(maxAbsDiff(p1.detach(), q1.detach()), 0);
    t.is(maxAbsDiff(p2.detach(), q2.detach()), 0);
    t.throws(() => resumed.loadStateDict(new Map([['state.0.momentum_buffer', q1]])), {
      message: /unexpected entry 'state\.0\.momentum_buffer' .*for AdamW/,
    });
  });
}

test("each parameter group keeps its own options, even those equal to libtorch's defaults", (t) => {
  const a = torch.zeros([2], { requiresGrad: true });
  const b = torch.zeros([2], { requiresGrad: true });
  const adamw = new optim.AdamW([{ params: [a] }, { params: [b], lr: 1e-3 }], { lr: 0.05 });
  t.deepEqual(adamw.lrs, [0.05, 1e-3]);
  const sgd = new optim.SGD([{ params: [a], momentum: 0 }, { params: [b] }], { lr: 0.1, momentum: 0.9 });
  a.sum().backward();
  b.sum().backward();
  sgd.step();
  sgd.step();
  // Momentum 0 for a: two plain steps; momentum 0.9 for b: the buffer grows (1, then 1.9).
  t.deepEqual(Array.from(a.detach().toTypedArray() as Float32Array), [-0.2, -0.2].map(Math.fround));
  t.deepEqual(Array.from(b.detach().toTypedArray() as Float32Array), [-0.29, -0.29].map(Math.fround));
});
