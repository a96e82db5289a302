"""PyTorch's side of scripts/bench-distributed.ts: one rank of the chapter's FCN under
torch.nn.parallel.DistributedDataParallel on the Gloo backend (env:// rendezvous: RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT), printing rank 0's median step time, that of the same
step without communication (under no_sync()) and the median time of one all-reduce of a
gradient-sized tensor as JSON.
Usage: bench_ddp.py STEPS BATCH H W"""
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.dirname(__file__))
from bench_model import chapter_net, loss  # noqa: E402


def main():
    steps, batch, h, w = map(int, sys.argv[1:5])
    torch.set_num_threads(int(os.environ.get('BENCH_THREADS', '1')))
    dist.init_process_group('gloo')
    torch.manual_seed(0)
    net = DistributedDataParallel(chapter_net())
    trainer = torch.optim.SGD(net.parameters(), lr=0.001, weight_decay=1e-3)
    X = torch.rand(batch, 3, h, w)
    y = torch.randint(0, 21, (batch, h, w))
    def timed_steps(sync):
        times = []
        for step in range(steps + 1):
            dist.barrier()
            start = time.perf_counter()
            trainer.zero_grad()
            if sync:
                loss(net(X), y).sum().backward()
            else:
                with net.no_sync():
                    loss(net(X), y).sum().backward()
            trainer.step()
            if step > 0:  # the first step is warm-up
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    step_time = timed_steps(True)
    local_time = timed_steps(False)
    grads = torch.zeros(sum(p.numel() for p in net.parameters()))
    reduces = []
    for _ in range(5):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(grads)
        reduces.append(time.perf_counter() - start)
    if dist.get_rank() == 0:
        print(json.dumps({'step': step_time, 'local': local_time, 'allreduce': statistics.median(reduces[1:]),
                          'floats': grads.numel()}))
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
