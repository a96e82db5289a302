"""Writes test/fixtures/int8.safetensors: PyTorch's own post-training static int8 of the
ResNet-18 body (resnet18-strided.pth's weights, the chapter's FCN without its head), the
reference for fcn-torch's quantizeInt8. FX graph mode with the configuration that
quantizeInt8 follows: activations uint8 in 7 bits (reduce_range) from min/max observers,
weights int8 per output channel (symmetric), on the 'x86' engine; BatchNorm is folded into
the convolutions and ReLUs and residual adds fused by FX's x86 backend config.

The 'x86' engine runs oneDNN's kernels on CPUs with AVX-512 VNNI and FBGEMM's elsewhere
(PyTorch's should_use_onednn_quant), and the two round differently: the same body's outputs
differ by ~5% of their range. So the file holds both: 'int8_fbgemm' (FBGEMM's kernels, the
same on every x86 CPU) and 'int8_onednn' (oneDNN's with VNNI). oneDNN without VNNI halves the
weights to dodge saturation and gives a third answer, not the one 'x86' picks there, so
'int8_onednn' can be written only on a CPU with VNNI; elsewhere the file's own is kept.

Run by `bash scripts/make-fixtures.sh` (torch==2.13.0+cpu, after make_fixtures.py).
"""
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.ao.quantization import MinMaxObserver, QConfig, QConfigMapping, default_per_channel_weight_observer
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

sys.path.insert(0, os.path.dirname(__file__))
from make_fixtures import OUT, ResNet18  # noqa: E402

PATH = os.path.join(OUT, 'int8.safetensors')


def has_vnni():
    with open('/proc/cpuinfo') as f:
        return any(line.startswith('flags') and 'avx512_vnni' in line.split() for line in f)


def quantized_output(engine, body, calibration, x):
    torch.backends.quantized.engine = engine
    qconfig = QConfig(activation=MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=True),
                      weight=default_per_channel_weight_observer)
    with torch.no_grad():
        prepared = prepare_fx(body, QConfigMapping().set_global(qconfig), example_inputs=(x,))
        for batch in calibration:
            prepared(batch)
        quantized = convert_fx(prepared)
        ops = {str(n.target) for n in quantized.graph.nodes if n.op == 'call_function'}
        assert any('add_relu' in op for op in ops), ops  # the blocks' adds fused with their ReLU
        return quantized(x).contiguous()


def main():
    assert torch.__version__.startswith('2.13.0'), torch.__version__
    torch.set_num_threads(1)
    model = ResNet18()
    model.load_state_dict(torch.load(os.path.join(OUT, 'resnet18-strided.pth')))
    body = nn.Sequential(*list(model.children())[:-2]).eval()
    gen = torch.Generator().manual_seed(31)
    calibration = [torch.randn(2, 3, 64, 96, generator=gen) for _ in range(2)]
    x = torch.randn(2, 3, 64, 96, generator=gen)
    with torch.no_grad():
        full = body(x)
    fbgemm = quantized_output('fbgemm', body, calibration, x)
    x86 = quantized_output('x86', body, calibration, x)
    if has_vnni():
        onednn = quantized_output('onednn', body, calibration, x)
        assert torch.equal(x86, onednn), "'x86' did not pick oneDNN on a CPU with VNNI"
    else:
        assert torch.equal(x86, fbgemm), "'x86' did not pick FBGEMM on a CPU without VNNI"
        kept = load_file(PATH) if os.path.exists(PATH) else {}
        if 'int8_onednn' not in kept or not torch.equal(kept['input'], x):
            sys.exit(f'{PATH}: int8_onednn needs a CPU with AVX-512 VNNI to be written')
        onednn = kept['int8_onednn']
        print('int8_onednn kept from the file (this CPU has no AVX-512 VNNI)', file=sys.stderr)
    save_file({'calibration': torch.stack(calibration), 'input': x, 'int8_fbgemm': fbgemm,
               'int8_onednn': onednn, 'float32': full}, PATH)
    for name, out in (('fbgemm', fbgemm), ('onednn', onednn)):
        print(f'int8 ({name}) vs float32: relative error {((out - full).norm() / full.norm()).item():.4f}',
              file=sys.stderr)


if __name__ == '__main__':
    main()
