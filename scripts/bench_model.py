"""PyTorch's side of `npm run bench`: the chapter's FCN run by each peer of scripts/bench_peers.py
(eager, channels_last, torch.compile, ONNX Runtime; on a GPU eager, bf16 autocast, torch.compile),
driven by JSON lines on stdin (one command per line, one JSON answer per line on stdout: {"result":
...} or {"error": "..."}), so that the Node side interleaves its own runs with these in one process
each. Also `rss STEPS CROP_H CROP_W BATCH [PEER]`: a fresh process that trains and prints its RSS
samples and peak (MB)."""
import copy
import json
import os
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from bench_peers import make_peer, peer_names  # noqa: E402
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
THREADS = int(os.environ.get('BENCH_THREADS', '2'))


class Bench:
    def __init__(self, inductor_cache='default'):
        torch.manual_seed(0)
        self.net = chapter_net()
        self.peers = {}
        self.inductor_cache = inductor_cache

    def peer(self, key):
        if key not in self.peers:
            self.peers[key] = make_peer(key, copy.deepcopy(self.net), loss, DEVICE, THREADS)
        return self.peers[key]

    def info(self):
        try:
            import onnxruntime

            ort = onnxruntime.__version__
        except ImportError:
            ort = None
        names = [p for p in peer_names(DEVICE) if p[0] != 'ort' or ort is not None]
        return {'torch': torch.__version__, 'onnxruntime': ort, 'peers': names, 'inductor_cache': self.inductor_cache}

    def setup(self, peer):
        """Builds a peer; for ONNX Runtime, the seconds of its export and session creation."""
        built = self.peer(peer)
        return {'export_s': built.export_s, 'session_s': built.session_s} if peer == 'ort' else {}

    def infer(self, batch, iters, peer='eager', h=320, w=480):
        return self.peer(peer).infer(batch, iters, h, w)

    def train(self, batch, iters, peer='eager', h=320, w=480):
        return self.peer(peer).train(batch, iters, h, w)

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


def rss_run(steps, h, w, batch, peer='eager'):
    torch.manual_seed(0)
    runner = make_peer(peer, chapter_net(), loss, DEVICE, THREADS)  # one copy of the model, as ours
    samples = []  # the highest RSS of each tenth of the run (RSS may alternate step by step)
    window = max(1, steps // 10)
    for step in range(steps):
        runner.train(batch, 1, h, w)
        rss = round(memory_mb('VmRSS'), 1)
        if step % window == 0:
            samples.append(rss)
        samples[-1] = max(samples[-1], rss)
    print(json.dumps({'samples': samples, 'peak': round(memory_mb('VmHWM'), 1)}))


def serve(bench):
    for line in sys.stdin:
        request = json.loads(line)
        command = request.pop('command')
        try:
            answer = {'result': getattr(bench, command)(**request)}
        except Exception as err:  # a peer that fails (a compile error, say) is reported, not fatal
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            answer = {'error': f'{type(err).__name__}: {" / ".join(lines[:3])}'[:300]}
        print(json.dumps(answer), flush=True)


def main():
    torch.set_num_threads(THREADS)
    if len(sys.argv) > 1 and sys.argv[1] == 'rss':
        rss_run(*map(int, sys.argv[2:6]), *sys.argv[6:7])
        return
    given = os.environ.get('TORCHINDUCTOR_CACHE_DIR')
    with tempfile.TemporaryDirectory(prefix='fcn-bench-inductor-') as fresh:
        # a fresh inductor cache unless one is given, so that torch.compile's first call is a
        # cold compile in every run (set before torch._dynamo's import sets its default)
        os.environ['TORCHINDUCTOR_CACHE_DIR'] = given or fresh
        from torch._dynamo import config as dynamo

        dynamo.recompile_limit = 16  # a static graph per (batch, train/eval) pair
        serve(Bench(given or 'fresh'))


if __name__ == '__main__':
    main()
