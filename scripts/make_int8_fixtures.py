"""Writes test/fixtures/int8.safetensors: PyTorch's own post-training static int8 of the
ResNet-18 body (resnet18-strided.pth's weights, the chapter's FCN without its head), the
reference for fcn-torch's quantizeInt8. FX graph mode with the configuration that
quantizeInt8 follows: activations uint8 in 7 bits (reduce_range) from min/max observers,
weights int8 per output channel (symmetric), on the 'x86' engine; BatchNorm is folded into
the convolutions and ReLUs and residual adds fused by FX's x86 backend config.

Run by `bash scripts/make-fixtures.sh` (torch==2.13.0+cpu, after make_fixtures.py).
"""
import os
import sys

import torch
from safetensors.torch import save_file
from torch import nn
from torch.ao.quantization import MinMaxObserver, QConfig, QConfigMapping, default_per_channel_weight_observer
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

sys.path.insert(0, os.path.dirname(__file__))
from make_fixtures import OUT, ResNet18  # noqa: E402


def main():
    assert torch.__version__.startswith('2.13.0'), torch.__version__
    torch.set_num_threads(1)
    torch.backends.quantized.engine = 'x86'
    model = ResNet18()
    model.load_state_dict(torch.load(os.path.join(OUT, 'resnet18-strided.pth')))
    body = nn.Sequential(*list(model.children())[:-2]).eval()
    gen = torch.Generator().manual_seed(31)
    calibration = [torch.randn(2, 3, 64, 96, generator=gen) for _ in range(2)]
    x = torch.randn(2, 3, 64, 96, generator=gen)
    qconfig = QConfig(activation=MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=True),
                      weight=default_per_channel_weight_observer)
    with torch.no_grad():
        prepared = prepare_fx(body, QConfigMapping().set_global(qconfig), example_inputs=(x,))
        for batch in calibration:
            prepared(batch)
        quantized = convert_fx(prepared)
        ops = {str(n.target) for n in quantized.graph.nodes if n.op == 'call_function'}
        assert any('add_relu' in op for op in ops), ops  # the blocks' adds fused with their ReLU
        out = quantized(x)
        full = body(x)
    save_file({'calibration': torch.stack(calibration), 'input': x, 'int8': out.contiguous(), 'float32': full},
              os.path.join(OUT, 'int8.safetensors'))
    print(f'int8 vs float32: relative error {((out - full).norm() / full.norm()).item():.4f}', file=sys.stderr)


if __name__ == '__main__':
    main()
