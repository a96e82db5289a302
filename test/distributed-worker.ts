/**
 * A rank of the distributed-training tests (run as `node distributed-worker.js JSON`), and
 * the data and model those tests share with their single-process reference.
 */
import fs from 'node:fs';
import {
  type EpochBatches,
  type EpochMetrics,
  initProcessGroup,
  nn,
  optim,
  save,
  type Tensor,
  torch,
  train,
} from '../src';

export interface WorkerJob {
  rank: number;
  worldSize: number;
  port: number;
  /** Images per rank per step. */
  batch: number;
  epochs: number;
  /** Where this rank writes its parameters (.safetensors) and history (.json). */
  out: string;
  /** Rank 1 kills itself (SIGKILL) at this step of epoch 1, for the lost-peer test. */
  dieAtStep?: number;
  timeoutMs?: number;
  /** Each rank's batch split into this many micro-batches whose gradients make one update. */
  accumulate?: number;
}

export const STEPS = 3;
export const LR = 0.05;
export const WD = 1e-3;
export const MOMENTUM = 0.9;

/** A net without BatchNorm, seeded: every process builds the same one. */
export function makeNet(seed: number): nn.Sequential {
  torch.manualSeed(seed);
  return new nn.Sequential(
    new nn.Conv2d(3, 8, { kernelSize: 3, padding: 1 }),
    new nn.ReLU(),
    new nn.Conv2d(8, 5, { kernelSize: 1 }),
  );
}

/** The union batches: STEPS batches of worldSize x batch images, the same in every process. */
export function unionBatches(worldSize: number, batch: number): { X: Tensor; Y: Tensor }[] {
  torch.manualSeed(100);
  return Array.from({ length: STEPS }, () => ({
    X: torch.rand([worldSize * batch, 3, 16, 24]),
    Y: torch
      .rand([worldSize * batch, 16, 24])
      .mul(5)
      .to('int64'),
  }));
}

/** Epochs of the given rank's slice of every union batch (rank 0 of 1: the whole batch). */
export function sliceBatches(
  union: { X: Tensor; Y: Tensor }[],
  rank: number,
  size: number,
  onStep?: (step: number) => void,
): EpochBatches {
  return {
    length: union.length,
    async *epoch(e: number) {
      for (const [step, { X, Y }] of union.entries()) {
        if (e === 0) onStep?.(step);
        const n = X.shape[0] / size;
        yield { X: X.narrow(0, rank * n, n).clone(), Y: Y.narrow(0, rank * n, n).clone() };
      }
    },
  };
}

/** batches with each batch split into `parts` micro-batches, in order. */
export function microBatches(batches: EpochBatches, parts: number): EpochBatches {
  return {
    length: batches.length * parts,
    async *epoch(e: number) {
      for await (const { X, Y } of batches.epoch(e)) {
        const n = X.shape[0] / parts;
        for (let i = 0; i < parts; i++) yield { X: X.narrow(0, i * n, n).clone(), Y: Y.narrow(0, i * n, n).clone() };
        X.dispose();
        Y.dispose();
      }
    },
  };
}

async function main(job: WorkerJob): Promise<void> {
  const group = await initProcessGroup({
    rank: job.rank,
    worldSize: job.worldSize,
    masterPort: job.port,
    timeoutMs: job.timeoutMs ?? 60_000,
  });
  // Each rank starts from different weights: train() must broadcast rank 0's.
  const net = makeNet(1 + job.rank);
  const optimizer = new optim.SGD(net.parameters(), { lr: LR, weightDecay: WD, momentum: MOMENTUM });
  const union = unionBatches(job.worldSize, job.batch);
  const die = (step: number) => {
    if (job.rank === 1 && step === job.dieAtStep) process.kill(process.pid, 'SIGKILL');
  };
  const batches = microBatches(sliceBatches(union, job.rank, job.worldSize, die), job.accumulate ?? 1);
  const history: EpochMetrics[] = await train(net, batches, batches, {
    epochs: job.epochs,
    optimizer,
    accumulate: job.accumulate,
    processGroup: group,
    progress: false,
    log: null,
  });
  await save(net.stateDict(), `${job.out}.safetensors`);
  fs.writeFileSync(`${job.out}.json`, JSON.stringify(history));
  await group.close();
}

if (require.main === module) {
  main(JSON.parse(process.argv[2]) as WorkerJob).catch((e: Error) => {
    console.error(e.message);
    process.exit(1);
  });
}
