/**
 * Exit at any moment is clean (issue 30): process.exit() at every moment of a native call's
 * span, from its start to past its end, ends the process with the code asked for, never by
 * a signal. Each child first measures one call, then sweeps the exit time over that span.
 */
import test from 'ava';
import { runScript } from '../helpers';

/** The span of one call in ms, as a child process measures it (after a warm-up call). */
async function span(setup: string, call: string): Promise<number> {
  const r = await runScript(`${setup}
    (async () => {
      await ${call};
      const started = performance.now();
      await ${call};
      console.log(Math.ceil(performance.now() - started));
    })();`);
  if (r.code !== 0) throw new Error(r.stderr);
  return Number(r.stdout.trim().split('\n').at(-1));
}

/** Exits with code 7 at `delay` ms after the call starts; the result of the sweep's point. */
function exitDuring(setup: string, call: string, delay: number) {
  return runScript(`${setup}
    (async () => {
      await ${call};
      setTimeout(() => process.exit(7), ${delay});
      for (;;) await ${call};
    })();`);
}

const cases: [string, string, string][] = [
  [
    'a training step',
    `const net = pkg.createFcn({ numClasses: 3 });
     const trainer = new pkg.Trainer(net, new pkg.optim.SGD(net.parameters(), { lr: 0.01 }));
     const X = pkg.torch.rand([2, 3, 128, 160]);
     const Y = pkg.torch.zeros([2, 128, 160], { dtype: 'int64' });`,
    'trainer.step(X, Y)',
  ],
  [
    'a predict loop',
    `const net = pkg.createFcn({ numClasses: 3 }).eval();
     const image = pkg.torch.zeros([3, 96, 128], { dtype: 'uint8' });`,
    'pkg.predict(net, image).then((labels) => labels.dispose())',
  ],
];

for (const [name, setup, call] of cases) {
  test(`process.exit() at any moment of ${name} ends the process with its code`, async (t) => {
    const ms = await span(setup, call);
    // Every step of the span (20 points, and past its end), so that the end of a call, where
    // its results are handed back and its tensors freed, is hit too.
    const delays = Array.from({ length: 24 }, (_, i) => Math.round((i * 1.2 * ms) / 20));
    const codes: string[] = [];
    for (let i = 0; i < delays.length; i += 2) {
      const pair = await Promise.all(delays.slice(i, i + 2).map((d) => exitDuring(setup, call, d)));
      for (const [k, r] of pair.entries()) {
        codes.push(`${delays[i + k]} ms: ${r.signal ?? r.code}${r.signal ? ` ${r.stderr}` : ''}`);
      }
    }
    t.log(`one call: ${ms} ms`);
    t.deepEqual(
      codes.filter((c) => !c.endsWith(': 7')),
      [],
      codes.join('\n'),
    );
  });
}
