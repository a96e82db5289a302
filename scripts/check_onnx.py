"""Checks fcn-torch's ONNX exports against ONNX's own checker and PyTorch (scripts/check-onnx.sh).

For each MODEL in DIR (resnet18, fcn32s, and torchvision's fcn_resnet50 with its aux classifier
and lraspp_mobilenet_v3_large, 3 classes): DIR/MODEL.onnx passes onnx.checker's full check
(with shape inference), and Python's onnxruntime running it equals PyTorch's forward of the
same weights (DIR/MODEL.safetensors, loaded into torchvision's module tree written in plain
torch, scripts/make_fixtures.py) at two input sizes, relative error <= 1e-4, every output
(fcn_resnet50: 'out' and 'aux'). DIR/fcn32s-labels.onnx (uint8 pixels in, labels out) gives the
argmax of PyTorch's logits of the normalised pixels. DIR/fcn32s-int8.onnx (QDQ) passes the full
check and runs in onnxruntime.
Prints one line per check; exits 1 when one fails.
"""
import functools
import os
import sys

import numpy as np
import onnx
import onnxruntime
import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(__file__))
from bench_model import chapter_net  # noqa: E402
from make_fixtures import ResNet18  # noqa: E402
from make_segmentation_fixtures import import_torchvision  # noqa: E402
from torch import nn  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)


@functools.cache
def segmentation_models():
    """torchvision.models.segmentation, imported once (import_torchvision defines its namespace)."""
    return import_torchvision().models.segmentation


class Outputs(nn.Module):
    """A torchvision segmentation model's forward() dict as a tuple: 'out', then 'aux' if it has one."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return tuple(self.net(x).values())


def model_of(name, weights):
    if name in ('fcn_resnet50', 'lraspp_mobilenet_v3_large'):
        aux = any(key.startswith('aux_classifier.') for key in weights)
        net = getattr(segmentation_models(), name)(weights=None, weights_backbone=None, num_classes=3,
                                                   aux_loss=aux or None)
        net.load_state_dict(weights, strict=True)
        return Outputs(net).eval()
    if name == 'resnet18':
        net = ResNet18()
    else:
        classes = weights['final_conv.weight'].shape[0]
        net = chapter_net()
        net.final_conv = nn.Conv2d(512, classes, kernel_size=1)
        net.transpose_conv = nn.ConvTranspose2d(classes, classes, kernel_size=64, padding=16, stride=32)
    net.load_state_dict(weights, strict=True)
    return net.eval()


def main(folder):
    failed = 0
    torch.manual_seed(0)
    for name, sizes in (('resnet18', [(1, 64, 64), (2, 96, 128)]), ('fcn32s', [(1, 64, 96), (2, 160, 128)]),
                        ('fcn_resnet50', [(1, 64, 64), (2, 72, 88)]),
                        ('lraspp_mobilenet_v3_large', [(1, 64, 64), (2, 72, 88)])):
        path = os.path.join(folder, name + '.onnx')
        onnx.checker.check_model(path, full_check=True)
        print(f'{name}.onnx: onnx.checker full check passed')
        net = model_of(name, load_file(os.path.join(folder, name + '.safetensors')))
        session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
        for n, h, w in sizes:
            x = torch.randn(n, 3, h, w)
            with torch.no_grad():
                expected = net(x)
            expected = [t.numpy() for t in (expected if isinstance(expected, tuple) else (expected,))]
            outputs = session.run(None, {session.get_inputs()[0].name: x.numpy()})
            failed += len(outputs) != len(expected)
            for output, ours, theirs in zip(session.get_outputs(), expected, outputs):
                error = float(np.abs(ours - theirs).max() / np.abs(ours).max())
                ok = theirs.shape == ours.shape and error <= 1e-4
                failed += not ok
                print(f'{name} {output.name} [{n}, 3, {h}, {w}]: onnxruntime vs PyTorch relative error {error:.2e} '
                      f'{"ok" if ok else "FAILED"}')
    path = os.path.join(folder, 'fcn32s-labels.onnx')
    onnx.checker.check_model(path, full_check=True)
    net = model_of('fcn32s', load_file(os.path.join(folder, 'fcn32s.safetensors')))
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    pixels = torch.randint(0, 256, (2, 3, 96, 160), dtype=torch.uint8)
    with torch.no_grad():
        expected = net((pixels.float() / 255 - MEAN) / STD).argmax(1).numpy()
    labels = session.run(None, {'image': pixels.numpy()})[0]
    share = float((labels == expected).mean())
    failed += share < 0.999
    print(f'fcn32s-labels.onnx: checker passed; labels equal PyTorch argmax on {100 * share:.2f} % of pixels')
    path = os.path.join(folder, 'fcn32s-int8.onnx')
    onnx.checker.check_model(path, full_check=True)
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    labels = session.run(None, {'input': torch.randn(1, 3, 64, 96).numpy()})[0]
    ok = labels.shape == (1, 64, 96) and labels.dtype == np.int64
    failed += not ok
    ops = sorted({node.op_type for node in onnx.load(path).graph.node})
    print(f'fcn32s-int8.onnx: checker passed; onnxruntime runs it ({", ".join(ops)}) {"ok" if ok else "FAILED"}')
    print(f'onnx check: {"FAILED" if failed else "all passed"}')
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main(sys.argv[1])
