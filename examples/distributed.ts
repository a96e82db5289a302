/**
 * One worker of a distributed run (README: "Training on several machines"): started by a
 * launcher (`fcn train --nproc-per-node`, torchrun), it joins the others and trains its shard.
 *   WORLD_SIZE=1 RANK=0 MASTER_PORT=29500 node dist/examples/distributed.js
 */
import { createFcn, initProcessGroup, optim, torchrunEnv, train, voc } from 'fcn-torch';

async function main() {
  const env = torchrunEnv(); // null outside a launcher
  if (!env) throw new Error('run me under a launcher (torchrun, or set WORLD_SIZE, RANK and MASTER_PORT)');
  const root = await voc.synthesize(`data-rank${env.rank}`, { count: 48, height: 96, width: 128 });
  const group = await initProcessGroup({ ...env, device: 'cpu' }); // backend: gloo on 'cpu', nccl on 'cuda:N'
  const shard = { rank: group.rank, worldSize: group.worldSize };
  const { trainIter, testIter } = await voc.loadDataVoc(4, [96, 128], { root, shard });
  const net = createFcn();
  const optimizer = new optim.SGD(net.parameters(), {
    lr: 0.005 / group.worldSize,
    weightDecay: 1e-3 * group.worldSize,
  });
  await train(net, trainIter, testIter, { epochs: 1, optimizer, devices: ['cpu'], processGroup: group });
  await group.close();
}

main();
