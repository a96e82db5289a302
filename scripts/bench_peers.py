"""The peers that `npm run bench` races fcn-torch against: the ways a PyTorch user who cares
about speed would run the chapter's FCN (eager, channels_last, torch.compile, bf16 autocast on
a GPU, ONNX Runtime from Python), each with the same timed loops, so that scripts/bench_model.py
only has to pick them by name."""
import os
import statistics
import tempfile
import time

import torch
from torch import nn


def timed(step, iters, sync):
    """Median seconds of `iters` calls of step(), each waited for with sync()."""
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class TorchPeer:
    """The FCN in PyTorch: eager, or with its model and inputs channels_last, or under bf16
    autocast, or compiled by torch.compile (the model only: loss and SGD step stay eager)."""

    trains = True

    def __init__(self, net, loss, device, channels_last=False, autocast=False, compiled=False):
        self.net = net.to(device)
        self.format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = self.net.to(memory_format=self.format)
        # dynamic=False: one static graph per batch size, the fastest code for each shape
        self.model = torch.compile(self.net, dynamic=False) if compiled else self.net
        self.loss = loss
        self.device = device
        self.autocast = autocast
        self.trainer = torch.optim.SGD(self.net.parameters(), lr=0.001, weight_decay=1e-3)

    def sync(self):
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def forward(self, X):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            return self.model(X)

    def infer(self, batch, iters, h, w):
        X = torch.rand(batch, 3, h, w, device=self.device).contiguous(memory_format=self.format)
        self.net.eval()
        with torch.no_grad():
            return timed(lambda: self.forward(X).argmax(dim=1), iters, self.sync)

    def train(self, batch, iters, h, w):
        X = torch.rand(batch, 3, h, w, device=self.device).contiguous(memory_format=self.format)
        y = torch.randint(0, 21, (batch, h, w), device=self.device)
        self.net.train()

        def step():
            self.trainer.zero_grad()
            pred = self.forward(X)
            l = self.loss(pred, y)
            l.sum().backward()
            self.trainer.step()
            float(l.sum().detach()), int((pred.argmax(dim=1) == y).sum())  # train_batch_ch13's metrics

        return timed(step, iters, self.sync)


class Labels(nn.Module):
    """The FCN with the argmax over channels in its graph, for the ONNX export."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, X):
        return self.net(X).argmax(dim=1)


class OnnxRuntimePeer:
    """The FCN exported by torch.onnx.export (TorchScript exporter, opset 17, dynamic batch,
    fixed 320x480, argmax inside the graph) and run by Python onnxruntime on the CPU execution
    provider with all graph optimisations; inference only."""

    trains = False

    def __init__(self, net, threads, h=320, w=480):
        import onnxruntime as ort

        start = time.perf_counter()
        # eval mode for the wrapper too: the exporter puts the module it is given back in its
        # own mode, which for a fresh wrapper would be training mode, recursively
        model = Labels(net).eval()
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, 'fcn.onnx')
            torch.onnx.export(
                model,
                (torch.rand(1, 3, h, w),),
                path,
                dynamo=False,
                opset_version=17,
                input_names=['X'],
                output_names=['labels'],
                dynamic_axes={'X': {0: 'batch'}, 'labels': {0: 'batch'}},
            )
            self.export_s = time.perf_counter() - start
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            start = time.perf_counter()
            self.session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
            self.session_s = time.perf_counter() - start
        self.h, self.w = h, w

    def infer(self, batch, iters, h, w):
        if (h, w) != (self.h, self.w):
            raise ValueError(f'the ONNX model was exported for {self.h}x{self.w}, not {h}x{w}')
        X = torch.rand(batch, 3, h, w).numpy()
        return timed(lambda: self.session.run(None, {'X': X})[0], iters, lambda: None)

    def train(self, batch, iters, h, w):
        raise NotImplementedError('ONNX Runtime is measured for inference only')


def peer_names(device):
    """[key, label, trains] of each peer on this device, in the order they run."""
    if device.type == 'cuda':
        return [
            ['eager', 'PyTorch eager fp32', True],
            ['autocast', 'PyTorch autocast bf16 + channels_last', True],
            ['compile', 'torch.compile (fp32, channels_last)', True],
        ]
    return [
        ['eager', 'PyTorch eager', True],
        ['channels_last', 'PyTorch channels_last', True],
        ['compile', 'torch.compile (channels_last)', True],
        ['ort', 'ONNX Runtime (Python)', False],
    ]


def make_peer(key, net, loss, device, threads):
    """The peer `key` of scripts/bench_model.py, which owns `net` from then on."""
    if key == 'eager':
        return TorchPeer(net, loss, device)
    if key == 'channels_last':
        return TorchPeer(net, loss, device, channels_last=True)
    if key == 'autocast':
        return TorchPeer(net, loss, device, channels_last=True, autocast=True)
    if key == 'compile':
        return TorchPeer(net, loss, device, channels_last=True, compiled=True)
    if key == 'ort':
        return OnnxRuntimePeer(net, threads)
    raise ValueError(f'no peer {key!r}')
