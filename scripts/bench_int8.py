"""Item 3 of issue 13, probed before building it: what post-training static int8 gives the
chapter's FCN on this CPU, measured with PyTorch's own int8 (FX graph mode, the 'x86' backend:
fbgemm/oneDNN kernels, per-channel weights, calibrated activations), against float32 eager and
channels_last in the same process. With trained weights (an fcn-torch `fcn.safetensors`, whose
names are PyTorch's) and a VOC root, it also compares pixel accuracy and mean IoU of float32 and
int8 on the val split (top-left crops, 320x480 or --crop HxW), calibrating on train crops.
  python scripts/bench_int8.py [WEIGHTS VOC_ROOT] [--crop 320x480] [--threads 2] [--calibration 100]
The transposed convolution stays float32 (quantised, fbgemm's 64x64 kernel took 6.3 s a forward)."""
import argparse
import copy
import os
import statistics
import sys
import time

import torch
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

sys.path.insert(0, os.path.dirname(__file__))
from bench_data import read, voc_colormap2label, voc_label_indices  # noqa: E402
from bench_model import chapter_net  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
H, W = 320, 480


def timed(model, x, iters=5):
    with torch.no_grad():
        model(x).argmax(1)
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            model(x).argmax(1)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def crops(root, split, size, limit=None):
    """Normalised top-left crops [1, 3, h, w] of size (h, w) and their class ids [1, h, w]."""
    h, w = size
    voc = os.path.join(root, 'VOCdevkit', 'VOC2012') if os.path.isdir(os.path.join(root, 'VOCdevkit')) else root
    with open(os.path.join(voc, 'ImageSets', 'Segmentation', f'{split}.txt')) as f:
        names = f.read().split()
    colormap2label = voc_colormap2label()
    for name in names[:limit]:
        image = read(os.path.join(voc, 'JPEGImages', f'{name}.jpg'))
        label = read(os.path.join(voc, 'SegmentationClass', f'{name}.png'))
        if image.shape[1] < h or image.shape[2] < w:
            continue
        x = (image[:, :h, :w].unsqueeze(0).float() / 255 - MEAN) / STD
        yield x, voc_label_indices(label[:, :h, :w], colormap2label).unsqueeze(0)


def scores(model, root, size):
    confusion = torch.zeros(21, 21, dtype=torch.long)
    with torch.no_grad():
        for x, y in crops(root, 'val', size):
            pred = model(x).argmax(1)
            valid = y != 255
            confusion += torch.bincount(y[valid] * 21 + pred[valid], minlength=441).reshape(21, 21)
    accuracy = confusion.diag().sum().item() / confusion.sum().item()
    union = confusion.sum(0) + confusion.sum(1) - confusion.diag()
    present = union > 0
    miou = (confusion.diag()[present].float() / union[present].float()).mean().item()
    return accuracy, miou


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('weights', nargs='?')
    parser.add_argument('root', nargs='?')
    parser.add_argument('--crop', default='320x480')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--calibration', type=int, default=100)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.crop.split('x'))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = chapter_net().eval()
    if args.weights:
        from safetensors.torch import load_file

        net.load_state_dict(load_file(args.weights))
    qconfig = get_default_qconfig_mapping('x86').set_module_name('transpose_conv', None)
    # prepare_fx folds each BatchNorm into its convolution: it gets the loaded model itself
    prepared = prepare_fx(copy.deepcopy(net), qconfig, (torch.rand(1, 3, H, W),))
    with torch.no_grad():
        if args.root:
            for x, _ in crops(args.root, 'train', size, args.calibration):
                prepared(x)
        else:
            for _ in range(16):
                prepared(torch.randn(2, 3, H, W))
    int8 = convert_fx(prepared)
    channels_last = chapter_net().eval().to(memory_format=torch.channels_last)
    channels_last.load_state_dict(net.state_dict())
    print(f'torch {torch.__version__}, {args.threads} threads, quantized engine {torch.backends.quantized.engine}')
    for batch in (1, 8):
        x = torch.randn(batch, 3, H, W)
        eager = timed(net, x)
        cl = timed(channels_last, x.contiguous(memory_format=torch.channels_last))
        q = timed(int8, x)
        print(
            f'batch {batch} (s/iter, forward + argmax): float32 eager {eager:.3f}, channels_last {cl:.3f}, '
            f'int8 {q:.3f}; int8 over the faster float32 {min(eager, cl) / q:.2f}x',
            flush=True,
        )
    if args.root:
        fp32_acc, fp32_miou = scores(net, args.root, size)
        int8_acc, int8_miou = scores(int8, args.root, size)
        print(f'val crops of {args.crop}: float32 pixel accuracy {fp32_acc:.4f}, mIoU {fp32_miou:.4f}; '
              f'int8 {int8_acc:.4f}, {int8_miou:.4f} (calibrated on {args.calibration} train crops)')


if __name__ == '__main__':
    main()
