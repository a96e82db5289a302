"""PyTorch's side of the segmentation-model section of `npm run bench`: torchvision's
fcn_resnet50 and lraspp_mobilenet_v3_large (random weights, nothing downloaded) in eval mode,
eager and channels_last, driven by JSON lines on stdin as bench_model.py is (one command per
line, one JSON answer per line)."""
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from make_segmentation_fixtures import import_torchvision  # noqa: E402

DEVICE = torch.device(os.environ.get('BENCH_DEVICE', 'cpu'))


def sync():
    if DEVICE.type == 'cuda':
        torch.cuda.synchronize(DEVICE)


class Bench:
    def __init__(self):
        self.tv = import_torchvision()
        self.models = {}

    def model(self, name, channels_last):
        key = (name, channels_last)
        if key not in self.models:
            torch.manual_seed(0)
            model = getattr(self.tv.models.segmentation, name)(weights=None, weights_backbone=None).to(DEVICE).eval()
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            self.models[key] = model
        return self.models[key]

    def infer(self, name, channels_last, size, iters):
        model = self.model(name, channels_last)
        X = torch.rand(1, 3, size, size, device=DEVICE)
        if channels_last:
            X = X.contiguous(memory_format=torch.channels_last)
        times = []
        with torch.no_grad():
            for _ in range(iters):
                start = time.perf_counter()
                model(X)['out'].argmax(dim=1)
                sync()
                times.append(time.perf_counter() - start)
        return statistics.median(times)


def main():
    torch.set_num_threads(int(os.environ.get('BENCH_THREADS', '2')))
    bench = Bench()
    for line in sys.stdin:
        request = json.loads(line)
        command = request.pop('command')
        result = getattr(bench, command)(**request)
        print(json.dumps({'result': result}), flush=True)


if __name__ == '__main__':
    main()
