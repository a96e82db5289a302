import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { load, models, nn, optim, type Tensor, Trainer } from '../../src';
import { fixture, fixtures, maxAbsDiff, pick } from '../helpers';

const seg = models.segmentation;

const maxAbs = (x: Tensor) => x.abs().max().item() as number;

/** |got - expected| <= tolerance x max|expected|. */
function near(t: ExecutionContext, got: Tensor, expected: Tensor, tolerance: number, what: string) {
  const diff = maxAbsDiff(got, expected);
  t.true(diff <= tolerance * maxAbs(expected), `${what}: max |diff| ${diff} vs max|expected| ${maxAbs(expected)}`);
}

/**
 * torchvision's reference recipe, two steps (scripts/make_segmentation_fixtures.py): SGD
 * momentum 0.9, weight decay 1e-4, groups backbone / classifier / aux classifier (10 x lr),
 * PolynomialLR(totalIters 10, power 0.9) stepped after each step, the mean cross-entropy with
 * 0.5 x the aux term, ignore index 255; Dropout in eval mode (identity), BatchNorm training.
 */
for (const [name, build] of [
  ['fcn_resnet50', () => seg.fcnResnet50({ auxLoss: true })],
  ['lraspp_mobilenet_v3_large', () => seg.lrasppMobilenetV3Large()],
] as const) {
  test.serial(
    `${name}: two steps of torchvision's recipe equal PyTorch's (loss, grads, params, BN stats)`,
    async (t) => {
      const f = await fixture(`train-${name}.safetensors`);
      const model: models.segmentation.SegmentationModel = await build();
      model.loadStateDict(await load(path.join(fixtures, `seg-${name}.pth`)));
      model.train();
      for (const [, child] of model.namedChildren()) {
        if (child.namedChildren().length > 3 && child.get(3) instanceof nn.Dropout) child.get(3).eval();
      }
      const lr = 0.01;
      const groups = model.namedChildren().map(([child, m]) => ({
        params: m.parameters(),
        ...(child === 'aux_classifier' ? { lr: lr * 10 } : {}),
      }));
      const optimizer = new optim.SGD(groups, { lr, momentum: 0.9, weightDecay: 1e-4 });
      const scheduler = new optim.PolynomialLR(optimizer, { totalIters: 10, power: 0.9 });
      const trainer = new Trainer(model, optimizer);
      const params = model.namedParameters();
      const buffers = () => model.namedBuffers();
      const losses = Array.from(pick(f, 'loss').toTypedArray() as Float32Array);
      const lrs = Array.from(pick(f, 'lr').toTypedArray() as Float64Array);
      for (const step of [1, 2]) {
        const got = optimizer.lrs;
        got.forEach((value, g) => {
          t.true(Math.abs(value - lrs[(step - 1) * got.length + g]) < 1e-12, `lr of group ${g} at step ${step}`);
        });
        const r = await trainer.step(pick(f, `X${step}`), pick(f, `Y${step}`));
        scheduler.step();
        const loss = r.loss / 2; // the mean loss times the batch's 2 images
        const want = losses[step - 1];
        t.true(Math.abs(loss - want) <= 1e-5 * Math.abs(want), `loss of step ${step}: ${loss} vs ${want}`);
        for (const [key, expected] of f) {
          const prefix = `step${step}.`;
          if (!key.startsWith(prefix) || key.includes('momentum_buffer')) continue;
          const rest = key.slice(prefix.length);
          if (rest.startsWith('grad.')) {
            near(t, params.get(rest.slice(5))?.grad as Tensor, expected, 1e-4, key);
          } else if (rest.endsWith('running_mean') || rest.endsWith('running_var')) {
            near(t, buffers().get(rest) as Tensor, expected, 1e-5, key);
          } else {
            near(t, (params.get(rest) as Tensor).detach(), expected, 1e-5, key);
          }
        }
      }
      const state = optimizer.stateDict();
      const names = [...params.keys()];
      for (const [key, expected] of f) {
        if (!key.startsWith('step2.momentum_buffer.')) continue;
        const index = names.indexOf(key.slice('step2.momentum_buffer.'.length));
        near(t, pick(state, `state.${index}.momentum_buffer`), expected, 1e-4, key);
      }
    },
  );
}

test('the torchvision loss: mean over labelled pixels, aux weighted; the chapter loss is the per-image mean', async (t) => {
  const f = await fixture('train-lraspp_mobilenet_v3_large.safetensors');
  const model = await seg.lrasppMobilenetV3Large({ numClasses: 21 });
  model.loadStateDict(await load(path.join(fixtures, 'seg-lraspp_mobilenet_v3_large.pth')));
  const X = pick(f, 'X1');
  const Y = pick(f, 'Y1');
  const evaluator = new Trainer(model, null);
  const mean = await evaluator.evaluate(X, Y);
  const logits = model.eval().forward(X);
  const expected = nn.functional.crossEntropy(logits, Y, { ignoreIndex: 255 }).item() as number;
  t.true(Math.abs(mean.loss / 2 - expected) <= 1e-5 * expected, `${mean.loss / 2} vs ${expected}`);
  const chapter = await new Trainer(model, null, { loss: { kind: 'chapter' } }).evaluate(X, Y);
  const perImage = nn.functional.crossEntropy(logits, Y, { reduction: 'none', ignoreIndex: 255 }).mean(1).mean(1);
  t.true(Math.abs(chapter.loss - (perImage.sum().item() as number)) <= 1e-5 * chapter.loss);
  t.throws(() => new Trainer(model, null, { loss: { kind: 'mean' as 'chapter' } }), {
    message: /loss\.kind: expected one of chapter, torchvision/,
  });
});

test('data-parallel steps with the torchvision loss equal one device (the mean over the whole batch)', async (t) => {
  const f = await fixture('train-lraspp_mobilenet_v3_large.safetensors');
  const weights = await load(path.join(fixtures, 'seg-lraspp_mobilenet_v3_large.pth'));
  const X = pick(f, 'X1');
  const Y = pick(f, 'Y1');
  const results = [];
  for (const devices of [['cpu'], ['cpu', 'cpu']] as const) {
    const model = await seg.lrasppMobilenetV3Large();
    model.loadStateDict(weights);
    model.train();
    // BatchNorm frozen, so that each part normalises as the whole batch does.
    for (const m of [model.get('backbone'), model.get('classifier')]) m.eval();
    const optimizer = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    const r = await new Trainer(model, optimizer, { devices: [...devices] }).step(X, Y);
    results.push({ loss: r.loss, params: model.namedParameters() });
  }
  const [one, two] = results;
  t.true(Math.abs(one.loss - two.loss) <= 1e-5 * one.loss, `${one.loss} vs ${two.loss}`);
  for (const [name, p] of one.params) near(t, (two.params.get(name) as Tensor).detach(), p.detach(), 1e-5, name);
});
