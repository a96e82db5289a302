"""PyTorch's side of `npm run bench`: the chapter's FCN in eager mode, driven by JSON lines
on stdin (one command per line, one JSON answer per line on stdout), so that the Node side
interleaves its own runs with these in one process each. Also `rss STEPS CROP_H CROP_W
BATCH`: a fresh process that trains and prints its RSS samples and peak (MB)."""
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from make_fixtures import ResNet18, bilinear_kernel  # noqa: E402


def chapter_net():
    pretrained = ResNet18()
    net = nn.Sequential(*list(pretrained.children())[:-2])
    net.add_module('final_conv', nn.Conv2d(512, 21, kernel_size=1))
    net.add_module('transpose_conv', nn.ConvTranspose2d(21, 21, kernel_size=64, padding=16, stride=32))
    net.transpose_conv.weight.data.copy_(bilinear_kernel(21, 21, 64))
    return net


def loss(inputs, targets):
    return F.cross_entropy(inputs, targets, reduction='none', ignore_index=255).mean(1).mean(1)


DEVICE = torch.device(os.environ.get('BENCH_DEVICE', 'cpu'))


def sync():
    if DEVICE.type == 'cuda':
        torch.cuda.synchronize(DEVICE)


class Bench:
    def __init__(self):
        torch.manual_seed(0)
        self.net = chapter_net().to(DEVICE)
        self.trainer = torch.optim.SGD(self.net.parameters(), lr=0.001, weight_decay=1e-3)

    def infer(self, batch, iters, h=320, w=480):
        X = torch.rand(batch, 3, h, w, device=DEVICE)
        self.net.eval()
        times = []
        with torch.no_grad():
            for _ in range(iters):
                start = time.perf_counter()
                self.net(X).argmax(dim=1)
                sync()
                times.append(time.perf_counter() - start)
        return statistics.median(times)

    def train(self, batch, iters, h=320, w=480):
        X = torch.rand(batch, 3, h, w, device=DEVICE)
        y = torch.randint(0, 21, (batch, h, w), device=DEVICE)
        self.net.train()
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            self.trainer.zero_grad()
            pred = self.net(X)
            l = loss(pred, y)
            l.sum().backward()
            self.trainer.step()
            float(l.sum().detach()), int((pred.argmax(dim=1) == y).sum())  # train_batch_ch13's metrics
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def device_name(self):
        return torch.cuda.get_device_name(DEVICE) if DEVICE.type == 'cuda' else 'cpu'

    def save_weights(self, path):
        torch.save(ResNet18().state_dict(), path)
        return os.path.getsize(path)

    def load(self, path):
        start = time.perf_counter()
        torch.load(path, weights_only=True)
        return time.perf_counter() - start


def memory_mb(field):
    """VmRSS or VmHWM of this process in MB (getrusage's peak survives exec)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f'no {field} in /proc/self/status')


def rss_run(steps, h, w, batch):
    bench = Bench()
    samples = []
    for step in range(steps):
        bench.train(batch, 1, h, w)
        if step % max(1, steps // 10) == 0 or step == steps - 1:
            samples.append(round(memory_mb('VmRSS'), 1))
    print(json.dumps({'samples': samples, 'peak': round(memory_mb('VmHWM'), 1)}))


def main():
    torch.set_num_threads(int(os.environ.get('BENCH_THREADS', '2')))
    if len(sys.argv) > 1 and sys.argv[1] == 'rss':
        rss_run(*map(int, sys.argv[2:6]))
        return
    bench = Bench()
    for line in sys.stdin:
        request = json.loads(line)
        command = request.pop('command')
        print(json.dumps({'result': getattr(bench, command)(**request)}), flush=True)


if __name__ == '__main__':
    main()
