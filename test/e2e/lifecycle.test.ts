/**
 * The process and its threads (issue 16, issue 15): a worker that ends while one of its
 * native calls runs, a process that exits during a training step, a model changed while a
 * job runs, memory given back after work, and plain loops of forward calls in constant
 * memory. Each case runs in a child process, which must end cleanly: an exit code, never a
 * signal.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import { voc } from '../../src';
import { cli, packageEntry, runScript, scratchDir } from '../helpers';

const tmp = scratchDir('fcn-torch-lifecycle-');

test('a worker that ends while its native call runs leaves the process running', async (t) => {
  for (const ending of ['terminate', 'exit', 'throw']) {
    const r = await runScript(`
      const { Worker } = require('node:worker_threads');
      const entry = ${JSON.stringify(packageEntry)};
      const body = \`
        const pkg = require(\${JSON.stringify(entry)});
        const { parentPort } = require('node:worker_threads');
        const net = pkg.createFcn({ numClasses: 3 }).eval();
        const x = pkg.torch.rand([2, 3, 320, 480]);
        parentPort.postMessage('ready');
        for (let i = 0; i < 4; i++) net.forwardAsync(x);
        if (${JSON.stringify(ending)} === 'exit') setTimeout(() => process.exit(3), 30);
        if (${JSON.stringify(ending)} === 'throw') setTimeout(() => { throw new Error('boom'); }, 30);
      \`;
      (async () => {
        for (const delay of [0, 10, 60, 250]) {
          const w = new Worker(body, { eval: true });
          w.on('error', () => {});
          const exited = new Promise((resolve) => w.once('exit', resolve));
          await new Promise((resolve) => w.once('message', resolve));
          await new Promise((resolve) => setTimeout(resolve, delay));
          if (${JSON.stringify(ending)} === 'terminate') await w.terminate();
          await exited;
        }
        const y = await pkg.createFcn({ numClasses: 3 }).eval().forwardAsync(pkg.torch.rand([1, 3, 64, 96]));
        console.log('alive ' + y.shape.join('x'));
      })();
    `);
    t.is(r.signal, null, `${ending}: ${r.stderr}`);
    t.is(r.code, 0, `${ending}: ${r.stderr}`);
    t.regex(r.stdout, /alive 1x3x64x96/, ending);
  }
});

test('process.exit() during a training step ends the process at once with its code', async (t) => {
  for (const delay of [0, 50, 300, 800]) {
    const r = await runScript(`
      const net = pkg.createFcn({ numClasses: 3 });
      const trainer = new pkg.Trainer(net, new pkg.optim.SGD(net.parameters(), { lr: 0.01 }));
      const X = pkg.torch.rand([4, 3, 160, 224]);
      const Y = pkg.torch.zeros([4, 160, 224], { dtype: 'int64' });
      trainer.step(X, Y);
      trainer.step(X, Y);
      setTimeout(() => process.exit(7), ${delay});
    `);
    t.is(r.signal, null, `exit after ${delay} ms: ${r.stderr}`);
    t.is(r.code, 7, `exit after ${delay} ms: ${r.stderr}`);
  }
});

test('changing a model while a job runs waits for the job instead of racing it', async (t) => {
  const r = await runScript(`
    (async () => {
      for (let i = 0; i < 8; i++) {
        const net = new pkg.nn.Sequential(new pkg.nn.Conv2d(3, 8, { kernelSize: 3 }), new pkg.nn.ReLU());
        const running = net.forwardAsync(pkg.torch.rand([4, 3, 128, 128]));
        for (let k = 0; k < 20; k++) net.addModule('extra' + k, new pkg.nn.ReLU());
        net.namedParameters();
        await running;
      }
      console.log('done');
    })();
  `);
  t.is(r.signal, null, r.stderr);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /done/);
});

test('memory is given back after a burst of work', async (t) => {
  const r = await runScript(`
    const rss = () => process.memoryUsage().rss / 2 ** 20;
    (async () => {
      const net = new pkg.nn.Sequential(new pkg.nn.Conv2d(3, 64, { kernelSize: 3, padding: 1 }), new pkg.nn.ReLU()).eval();
      const x = pkg.torch.rand([1, 3, 64, 96]);
      await pkg.torch.noGrad(() => net.forwardAsync(x));
      global.gc();
      const before = rss();
      const ys = await pkg.torch.noGrad(() => Promise.all(Array.from({ length: 200 }, () => net.forwardAsync(x))));
      const peak = rss();
      ys.forEach((y) => y.dispose());
      global.gc();
      await new Promise((resolve) => setTimeout(resolve, 3000));
      console.log(JSON.stringify({ before, peak, after: rss() }));
    })();
  `);
  t.is(r.code, 0, r.stderr);
  const { before, peak, after } = JSON.parse(r.stdout);
  t.true(peak - before > 100, `the burst used memory (${before.toFixed(0)} -> ${peak.toFixed(0)} MiB)`);
  t.true(
    after - before < 0.25 * (peak - before) + 30,
    `given back: ${before.toFixed(0)} -> ${peak.toFixed(0)} -> ${after.toFixed(0)} MiB`,
  );
});

test('1000 forward calls in a plain loop, without dispose, run in constant memory', async (t) => {
  for (const grad of [true, false]) {
    const r = await runScript(`
      const rss = () => process.memoryUsage().rss / 2 ** 20;
      const net = pkg.createFcn({ numClasses: 21 });
      const samples = [];
      const run = () => {
        for (let i = 0; i < 1000; i++) {
          net.forward(pkg.torch.rand([1, 3, 64, 96]));
          if (i === 99 || i === 999) samples.push(rss());
        }
      };
      ${grad ? 'run();' : 'pkg.torch.noGrad(run);'}
      console.log(JSON.stringify(samples));
    `);
    t.is(r.code, 0, r.stderr);
    const [first100, last] = JSON.parse(r.stdout);
    t.true(
      last < 1.5 * first100,
      `${grad ? 'with' : 'without'} grad: ${first100.toFixed(0)} MiB after 100 calls, ${last.toFixed(0)} MiB after 1000`,
    );
  }
});

test('Ctrl-C twice during fcn train exits at once with code 130', async (t) => {
  const data = await voc.synthesize(path.join(tmp, 'voc'), { count: 24, height: 72, width: 104 });
  for (const delay of [0, 400]) {
    const child = spawn(
      process.execPath,
      [cli, 'train', '--data', data, '--crop', '64x96', '--batch-size', '4', '--epochs', '50', '--threads', '1'].concat(
        ['--out', path.join(tmp, `run-${delay}`)],
      ),
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.resume();
    // Once training runs (the data is read), two Ctrl-C: the second ends the process at once.
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (/read \d+ examples \(val/.test(stdout)) {
          clearInterval(poll);
          resolve();
        }
      }, 20);
    });
    await new Promise((resolve) => setTimeout(resolve, delay));
    child.kill('SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 50));
    child.kill('SIGINT');
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
      child.once('exit', (c, s) => resolve([c, s])),
    );
    t.is(signal, null, `after ${delay} ms`);
    t.is(code, 130, `after ${delay} ms`);
  }
});
