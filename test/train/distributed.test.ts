/**
 * Distributed data-parallel training over c10d's Gloo backend on loopback: ranks are real
 * processes (test/distributed-worker.ts), compared with each other and with one process
 * training on the union of their batches.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import test from 'ava';
import {
  type EpochMetrics,
  freePort,
  initProcessGroup,
  load,
  loadCheckpoint,
  optim,
  type ReduceOp,
  shardOf,
  type Tensor,
  torch,
  torchrunEnv,
  train,
  voc,
} from '../../src';
import { LR, MOMENTUM, makeNet, sliceBatches, unionBatches, WD, type WorkerJob } from '../distributed-worker';
import { cli, exactlyEqual, fixture, maxAbsDiff, runNode, scratchDir } from '../helpers';

const worker = path.resolve(__dirname, '..', 'distributed-worker.js');
const tmp = scratchDir('fcn-torch-dist-');

/**
 * Runs `node args...` in tmp at a low priority (nice 10; its workers inherit it): the ranks
 * keep both cores busy, and the test files running beside this one (the event-loop timing of
 * the reliability tests among them) keep their share.
 */
const run = (args: string[], env: NodeJS.ProcessEnv = {}) => runNode(args, { cwd: tmp, env, nice: 10 });

const runRank = (job: WorkerJob) => run([worker, JSON.stringify(job)]);

async function ranks(worldSize: number, job: Omit<WorkerJob, 'rank' | 'worldSize' | 'port' | 'out'>) {
  const port = await freePort();
  const out = (rank: number) => path.join(tmp, `w${worldSize}-p${port}-r${rank}`);
  const exits = await Promise.all(
    Array.from({ length: worldSize }, (_, rank) => runRank({ ...job, rank, worldSize, port, out: out(rank) })),
  );
  return { exits, out };
}

for (const [worldSize, accumulate] of [
  [2, 1],
  [3, 1],
  [2, 2],
]) {
  const accumulating = accumulate > 1 ? `, accumulating ${accumulate} micro-batches per update,` : '';
  test.serial(
    `${worldSize} processes${accumulating} end with bit-identical parameters, equal to one process on the union of their batches`,
    async (t) => {
      const batch = 2;
      const epochs = 2;
      const { exits, out } = await ranks(worldSize, { batch, epochs, accumulate });
      exits.forEach((e, rank) => {
        t.is(e.code, 0, `rank ${rank}: ${e.stderr}`);
      });
      const params = await Promise.all(exits.map((_, rank) => load(`${out(rank)}.safetensors`)));
      const histories = exits.map(
        (_, rank) => JSON.parse(fs.readFileSync(`${out(rank)}.json`, 'utf8')) as EpochMetrics[],
      );

      // DDP averages the ranks' gradients, and the chapter's loss sums over a batch: one process
      // on the union batches takes the same steps with lr / N and weight decay x N.
      const reference = makeNet(1);
      const optimizer = new optim.SGD(reference.parameters(), {
        lr: LR / worldSize,
        weightDecay: WD * worldSize,
        momentum: MOMENTUM,
      });
      const union = sliceBatches(unionBatches(worldSize, batch), 0, 1);
      const expected = await train(reference, union, union, { epochs, optimizer, progress: false, log: null });

      for (const [name, p] of reference.namedParameters()) {
        const rank0 = params[0].get(name) as Tensor;
        for (let rank = 1; rank < worldSize; rank++) {
          t.true(exactlyEqual(rank0, params[rank].get(name) as Tensor), `${name}: rank ${rank} differs from rank 0`);
        }
        const diff = maxAbsDiff(rank0, p);
        t.true(diff < 1e-5, `${name}: ${diff} from one process on the union batches`);
      }
      // Metrics summed over the ranks: every rank reports the union's numbers.
      for (const history of histories) {
        t.deepEqual(
          history.map((m) => m.testClassIoU),
          histories[0].map((m) => m.testClassIoU),
        );
        history.forEach((m, e) => {
          t.true(Math.abs(m.trainLoss - expected[e].trainLoss) < 1e-5, `epoch ${e + 1} train loss`);
          t.true(Math.abs(m.testLoss - expected[e].testLoss) < 1e-5, `epoch ${e + 1} test loss`);
          t.true(Math.abs(m.testAccuracy - expected[e].testAccuracy) < 1e-9, `epoch ${e + 1} test accuracy`);
          t.true(Math.abs(m.testMeanIoU - expected[e].testMeanIoU) < 1e-6, `epoch ${e + 1} test mIoU`);
        });
      }
    },
  );
}

test.serial('a peer killed mid-training makes the others fail with a clear error, not hang', async (t) => {
  const { exits } = await ranks(2, { batch: 2, epochs: 1000, dieAtStep: 1, timeoutMs: 30_000 });
  t.not(exits[1].code, 0);
  t.is(exits[0].code, 1);
  t.regex(exits[0].stderr, /the all-reduce of the gradients failed: a peer process stopped/);
  // Found by the broken connection, not by the 30 s timeout: rank 0 ends soon after rank 1
  // died. Both started together, so the difference leaves out their start-up (loading
  // libtorch), which a loaded machine stretches: 20.9 s in all once, while CI compiled.
  const afterPeer = exits[0].seconds - exits[1].seconds;
  t.true(afterPeer < 15, `rank 0 ended ${afterPeer.toFixed(1)} s after rank 1 died`);
});

test.serial('a wrong master port, address or rank fails fast with a clear message', async (t) => {
  const port = await freePort();
  let started = performance.now();
  await t.throwsAsync(initProcessGroup({ rank: 1, worldSize: 2, masterPort: port, timeoutMs: 1500 }), {
    message: new RegExp(
      `rank 1 of 2 could not reach the master at 127\\.0\\.0\\.1:${port} within 1500 ms \\(ECONNREFUSED\\)`,
    ),
  });
  t.true(performance.now() - started < 5000);
  started = performance.now();
  await t.throwsAsync(initProcessGroup({ rank: 1, worldSize: 2, masterAddr: 'no-such-host.invalid' }), {
    message: /master address 'no-such-host\.invalid' does not resolve/,
  });
  await t.throwsAsync(initProcessGroup({ rank: 0, worldSize: 2, masterAddr: '192.0.2.1' }), {
    message: /rank 0 hosts the rendezvous, so the master address '192\.0\.2\.1' .* must be an address of this machine/,
  });
  t.true(performance.now() - started < 10_000);
  // The port taken by something else: rank 0 cannot host the rendezvous there.
  const server = net.createServer().listen(port, '0.0.0.0');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    await t.throwsAsync(initProcessGroup({ rank: 0, worldSize: 2, masterPort: port, timeoutMs: 5000 }), {
      message: new RegExp(`rank 0 of 2 could not host the rendezvous at 127\\.0\\.0\\.1:${port}`),
    });
  } finally {
    server.close();
  }
  await t.throwsAsync(initProcessGroup({ rank: 2, worldSize: 2 }), {
    message: /rank: expected an integer in \[0, 1\]/,
  });
  await t.throwsAsync(initProcessGroup({ rank: 0, worldSize: 1, masterPort: 70000 }), {
    message: /masterPort: expected an integer in \[1, 65535\], got 70000/,
  });
  await t.throwsAsync(initProcessGroup({ rank: 0, worldSize: 1, backend: 'nccl' }), {
    message: /backend 'nccl' does not work on 'cpu' tensors/,
  });
});

test('a group of one process works, and its collectives check their tensors', async (t) => {
  const group = await initProcessGroup({ rank: 0, worldSize: 1, masterPort: await freePort(), timeoutMs: 10_000 });
  t.deepEqual(await group.allReduceNumbers([1.5, 2]), [1.5, 2]);
  const net = makeNet(3);
  await group.broadcastModule(net);
  await t.throwsAsync(group.allReduce('x' as unknown as Tensor), { message: /tensor: expected a Tensor/ });
  await t.throwsAsync(group.allReduce(torch.ones([2]), 'mean' as ReduceOp), {
    message: /op: expected 'sum', 'avg', 'max', 'min' or 'product', got 'mean'/,
  });
  await group.barrier();
  await group.close();
  await t.throwsAsync(group.barrier(), { message: /the process group is not connected/ });
});

test('shards follow DistributedSampler (PyTorch fixture), and unpadded shards are a partition', async (t) => {
  const expected = await fixture('distributed-sampler.safetensors');
  t.is(expected.size, 50);
  for (const [key, indices] of expected) {
    const [n, w, r] = (/^n(\d+)_w(\d+)_r(\d+)$/.exec(key) as RegExpExecArray).slice(1).map(Number);
    const order = Array.from({ length: n }, (_, i) => i);
    t.deepEqual(shardOf(order, r, w, true), Array.from(indices.toTypedArray() as BigInt64Array, Number), key);
  }
  const order = [4, 9, 1, 7, 0, 3, 8];
  const parts = [0, 1, 2].map((r) => shardOf(order, r, 3, false));
  t.deepEqual(parts.flat().sort(), [...order].sort());
  t.throws(() => shardOf(order, 3, 3, true), { message: /rank: expected an integer in \[0, 2\], got 3/ });
});

test('the torchrun environment is read, and a malformed one is named', (t) => {
  t.is(torchrunEnv({}), null);
  t.deepEqual(torchrunEnv({ WORLD_SIZE: '4', RANK: '3', LOCAL_RANK: '1', MASTER_ADDR: 'node0', MASTER_PORT: '1234' }), {
    rank: 3,
    worldSize: 4,
    localRank: 1,
    masterAddr: 'node0',
    masterPort: 1234,
    agentStore: false,
  });
  t.throws(() => torchrunEnv({ WORLD_SIZE: '2' }), {
    message: /RANK: expected an integer >= 0 in the environment, got undefined/,
  });
  t.throws(() => torchrunEnv({ WORLD_SIZE: '2', RANK: '2' }), { message: /expected 0 <= RANK < WORLD_SIZE/ });
  t.throws(() => torchrunEnv({ WORLD_SIZE: 'two', RANK: '0' }), { message: /WORLD_SIZE: expected an integer/ });
});

test.serial('fcn train --nproc-per-node 2 trains on shards; rank 0 alone logs and writes', async (t) => {
  const synth = await run([cli, 'synth', '--out', 'data', '--count', '16', '--height', '72', '--width', '104']);
  t.is(synth.code, 0, synth.stderr);
  const root = synth.stdout.trim();
  const port = `${await freePort()}`;
  const args = ['train', '--data', root, '--crop', '64x96', '--batch-size', '2', '--epochs', '1', '--out', 'dist'];
  const launched = await run([cli, ...args, '--nproc-per-node', '2', '--master-port', port]);
  t.is(launched.code, 0, launched.stderr);
  t.is(launched.stdout.match(/2 processes joined at 127\.0\.0\.1:\d+ \(gloo\)/g)?.length, 1, launched.stdout);
  t.is(launched.stdout.match(/epoch 1\/1: loss [\d.]+, train acc [\d.]+, .* on 2 processes/g)?.length, 1);
  const checkpoint = await loadCheckpoint(path.join(tmp, 'dist', 'checkpoint.safetensors'));
  t.is(checkpoint.epoch, 1);
  // A launcher's mistakes, and a worker's: one line each, exit code 1.
  const twoDevices = await run([cli, ...args, '--device', 'cpu,cpu'], {
    WORLD_SIZE: '1',
    RANK: '0',
    MASTER_PORT: port,
  });
  t.is(twoDevices.code, 1);
  t.regex(twoDevices.stderr, /^fcn train \[rank 0\]: --device: each process of a distributed run trains on one device/);
  const launcherInWorker = await run([cli, ...args, '--nproc-per-node', '4', '--master-port', port], {
    WORLD_SIZE: '2',
    RANK: '1',
  });
  t.is(launcherInWorker.code, 1);
  t.regex(
    launcherInWorker.stderr,
    /--nproc-per-node, --master-port: this process is a worker of a distributed run \(WORLD_SIZE=2 and RANK=1 in its environment/,
  );
  const badRank = await run([cli, ...args, '--nproc-per-node', '2', '--nnodes', '2', '--node-rank', '2']);
  t.is(badRank.code, 1);
  t.regex(badRank.stderr, /--node-rank 2 must be below --nnodes 2/);
  // A worker whose peer never comes fails within its timeout and takes the launcher down with it.
  const lonely = await run([
    cli,
    ...args,
    '--nproc-per-node',
    '1',
    '--nnodes',
    '2',
    '--node-rank',
    '1',
    '--master-port',
    port,
    '--dist-timeout',
    '2',
  ]);
  t.is(lonely.code, 1);
  t.regex(lonely.stderr, /rank 1 of 2 could not reach the master at 127\.0\.0\.1:\d+ within 2000 ms/);
});

test('a group of one process trains as no group does; a distributed trainer takes one device', async (t) => {
  const group = await initProcessGroup({ rank: 0, worldSize: 1, masterPort: await freePort(), timeoutMs: 10_000 });
  const batches = sliceBatches(unionBatches(1, 2), 0, 1);
  const results = [];
  for (const processGroup of [group, undefined]) {
    const net = makeNet(5);
    const optimizer = new optim.SGD(net.parameters(), { lr: 0.01, momentum: 0.9 });
    const history = await train(net, batches, batches, {
      epochs: 2,
      optimizer,
      processGroup,
      log: null,
      progress: false,
    });
    results.push({ net, history });
  }
  t.deepEqual(
    results[0].history.map((m) => m.trainLoss),
    results[1].history.map((m) => m.trainLoss),
  );
  for (const [name, p] of results[0].net.namedParameters()) {
    t.true(exactlyEqual(p, results[1].net.namedParameters().get(name) as Tensor), name);
  }
  const optimizer = new optim.SGD(results[0].net.parameters(), { lr: 0.01 });
  await t.throwsAsync(
    train(results[0].net, batches, batches, {
      epochs: 1,
      optimizer,
      processGroup: group,
      devices: ['cpu', 'cpu'],
      log: null,
    }),
    { message: /a distributed trainer uses one device/ },
  );
  await group.close();
});

test('VOC shards: padded training shards are equally long, unpadded test shards hold the split once', async (t) => {
  const root = await voc.synthesize(path.join(tmp, 'voc'), { count: 14, height: 72, width: 104, valFraction: 0.3 });
  const { trainIter } = await voc.loadDataVoc(1, [64, 96], { root, log: null });
  const n = trainIter.dataset.length;
  for (const pad of [true, false]) {
    const counts: number[] = [];
    for (let rank = 0; rank < 3; rank++) {
      const shard = { rank, worldSize: 3, pad };
      const batches = new voc.VOCBatches(trainIter.dataset, 1, { shuffle: true, dropLast: false, seed: 3, shard });
      let count = 0;
      for await (const { X, Y } of batches.epoch(0)) {
        count += X.shape[0];
        X.dispose();
        Y.dispose();
      }
      t.is(batches.length, count, `rank ${rank}, pad ${pad}`);
      counts.push(count);
    }
    t.is(
      counts.reduce((a, b) => a + b),
      pad ? Math.ceil(n / 3) * 3 : n,
    );
    if (pad) t.deepEqual(counts, [counts[0], counts[0], counts[0]]);
  }
});

test.serial(
  'fcn train --model --nproc-per-node 2 --accumulate 2 trains a torchvision model on shards, with its scheduler',
  async (t) => {
    const synth = await run([cli, 'synth', '--out', 'data-model', '--count', '16', '--height', '72', '--width', '104']);
    t.is(synth.code, 0, synth.stderr);
    const root = synth.stdout.trim();
    const port = `${await freePort()}`;
    const args = [
      'train',
      '--data',
      root,
      '--crop',
      '64x96',
      '--batch-size',
      '2',
      '--epochs',
      '1',
      '--out',
      'dist-model',
    ];
    const model = ['--model', 'lraspp_mobilenet_v3_large', '--threads', '1', '--accumulate', '2'];
    const launched = await run([cli, ...args, ...model, '--nproc-per-node', '2', '--master-port', port]);
    t.is(launched.code, 0, launched.stderr);
    t.is(launched.stdout.match(/epoch 1\/1: loss [\d.]+, train acc [\d.]+, .* on 2 processes/g)?.length, 1);
    const checkpoint = await loadCheckpoint(path.join(tmp, 'dist-model', 'checkpoint.safetensors'));
    t.is(checkpoint.config.model, 'lraspp_mobilenet_v3_large');
    t.is(checkpoint.config.accumulate, 2);
    t.true((checkpoint.scheduler?.lastEpoch ?? 0) > 0);
  },
);

/** The pids of pid's child processes. */
const childrenOf = (pid: number) =>
  execFileSync('pgrep', ['-P', `${pid}`], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .filter(Boolean)
    .map(Number);

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** fcn train --nproc-per-node 2 for many epochs, once both workers have joined. */
async function longRun(out: string) {
  const synth = await run([cli, 'synth', '--out', `${out}-data`, '--count', '16', '--height', '72', '--width', '104']);
  const port = `${await freePort()}`;
  const launcher = spawn(
    process.execPath,
    [cli, 'train', '--data', synth.stdout.trim(), '--crop', '64x96', '--batch-size', '2', '--epochs', '500'].concat([
      '--out',
      out,
      '--nproc-per-node',
      '2',
      '--master-port',
      port,
      '--threads',
      '1',
    ]),
    { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  launcher.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    launcher.once('exit', (code, signal) => resolve({ code, signal })),
  );
  await new Promise<void>((resolve) => {
    let text = '';
    launcher.stdout.on('data', (chunk) => {
      text += chunk;
      if (/processes joined/.test(text)) resolve();
    });
  });
  const workers = childrenOf(launcher.pid as number);
  return { launcher, workers, exited, stderr: () => stderr };
}

test.serial('workers die with their launcher, and a dead worker is named by the launcher', async (t) => {
  const first = await longRun('killed-worker');
  t.is(first.workers.length, 2);
  process.kill(first.workers[1], 'SIGKILL');
  const ended = await first.exited;
  t.is(ended.code, 1);
  t.regex(first.stderr(), /fcn train: worker rank 1 \(pid \d+\) was killed by SIGKILL; stopping the other workers/);

  const second = await longRun('killed-launcher');
  second.launcher.kill('SIGKILL');
  await second.exited;
  const deadline = Date.now() + 20_000;
  while (second.workers.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(second.workers.filter(alive), [], 'no worker outlives its launcher');
});

test.serial(
  'fcn train --max-restarts 1: a worker killed mid-run restarts the workers, which resume from the last checkpoint and end as an uninterrupted run from it',
  async (t) => {
    const synth = await run([
      cli,
      'synth',
      '--out',
      'elastic-data',
      '--count',
      '64',
      '--height',
      '72',
      '--width',
      '104',
    ]);
    t.is(synth.code, 0, synth.stderr);
    const args = ['train', '--data', synth.stdout.trim(), '--crop', '64x96', '--batch-size', '2', '--epochs', '2'];
    const launcher = spawn(
      process.execPath,
      [
        cli,
        ...args,
        '--out',
        'elastic',
        '--nproc-per-node',
        '2',
        '--max-restarts',
        '1',
        '--master-port',
        `${await freePort()}`,
      ],
      { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    launcher.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    launcher.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const exited = new Promise<number | null>((resolve) => launcher.once('exit', (code) => resolve(code)));
    // Epoch 1's checkpoint (written under a temporary name, then renamed): kept, then a worker dies.
    const checkpoint = path.join(tmp, 'elastic', 'checkpoint.safetensors');
    const deadline = Date.now() + 180_000;
    while (!fs.existsSync(checkpoint) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    fs.mkdirSync(path.join(tmp, 'uninterrupted'), { recursive: true });
    fs.copyFileSync(checkpoint, path.join(tmp, 'uninterrupted', 'checkpoint.safetensors'));
    process.kill(childrenOf(launcher.pid as number)[1], 'SIGKILL');
    t.is(await exited, 0, stderr);
    t.regex(stderr, /worker rank 1 \(pid \d+\) was killed by SIGKILL; stopping the other workers/);
    t.regex(stderr, /fcn train: restarting the workers \(restart 1 of 1\); they resume from the last checkpoint/);
    t.regex(stdout, /restart 1: resuming from .*checkpoint\.safetensors/);
    const kept = await loadCheckpoint(path.join(tmp, 'uninterrupted', 'checkpoint.safetensors'));
    t.regex(stdout, new RegExp(`resuming after epoch ${kept.epoch} `));

    const again = await run([
      cli,
      ...args,
      '--out',
      'uninterrupted',
      '--resume',
      '--nproc-per-node',
      '2',
      '--master-port',
      `${await freePort()}`,
    ]);
    t.is(again.code, 0, again.stderr);
    const [restarted, uninterrupted] = await Promise.all(
      ['elastic', 'uninterrupted'].map((out) => loadCheckpoint(path.join(tmp, out, 'checkpoint.safetensors'))),
    );
    t.is(restarted.epoch, 2);
    t.deepEqual(
      restarted.history.map((m) => m.trainLoss),
      uninterrupted.history.map((m) => m.trainLoss),
    );
    for (const [name, p] of uninterrupted.model) {
      t.true(exactlyEqual(p, restarted.model.get(name) as Tensor), name);
    }
  },
);
