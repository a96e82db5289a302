"""Item 3 of issue 13, probed before building it: what post-training static int8 gives the
chapter's FCN on this CPU, measured with PyTorch's own int8 (FX graph mode, the 'x86' backend:
fbgemm/oneDNN kernels, per-channel weights, calibrated activations), against float32 eager and
channels_last in the same process. With trained weights (an fcn-torch `fcn.safetensors`, whose
names are PyTorch's) and a VOC root, it also compares pixel accuracy and mean IoU of float32 and
int8 on the val split (top-left crops, 320x480 or --crop HxW), calibrating on train crops.
  python scripts/bench_int8.py [WEIGHTS VOC_ROOT] [--crop 320x480] [--threads 2] [--calibration 100]
The transposed convolution stays float32 (quantised, fbgemm's 64x64 kernel took 6.3 s a forward).
ONNX Runtime's own int8 of the same model runs beside it: exported to ONNX, quantize_static
(QDQ, int8 weights per output channel, uint8 activations from MinMax ranges over the same
calibration batches, the transposed convolution left float32), CPU execution provider with all
graph optimisations."""
import argparse
import copy
import os
import statistics
import sys
import tempfile
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


class OrtModel:
    """An ONNX Runtime session called like a module: float32 images in, logits out (torch)."""

    def __init__(self, session):
        self.session = session

    def __call__(self, x):
        return torch.from_numpy(self.session.run(None, {'X': x.numpy()})[0])


def ort_int8(net, calibration, threads):
    """ONNX Runtime's post-training static int8 of net: (seconds to export and quantize, model)."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration)

        def get_next(self):
            x = next(self.batches, None)
            return None if x is None else {'X': x.numpy()}

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        exported, prepared, quantized = (os.path.join(folder, f) for f in ('fcn.onnx', 'pre.onnx', 'int8.onnx'))
        torch.onnx.export(net, (torch.rand(1, 3, H, W),), exported, dynamo=False, opset_version=17,
                          input_names=['X'], output_names=['logits'],
                          dynamic_axes={'X': {0: 'n', 2: 'h', 3: 'w'}, 'logits': {0: 'n', 2: 'h', 3: 'w'}})
        quant_pre_process(exported, prepared, skip_symbolic_shape=True)
        import onnx

        upsampling = [n.name for n in onnx.load(prepared).graph.node if n.op_type == 'ConvTranspose']
        quantize_static(prepared, quantized, Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=upsampling)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(quantized, options, providers=['CPUExecutionProvider'])
    return time.perf_counter() - start, OrtModel(session)


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
    if args.root:
        calibration = [x for x, _ in crops(args.root, 'train', size, args.calibration)]
    else:
        calibration = [torch.randn(2, 3, H, W) for _ in range(16)]
    with torch.no_grad():
        for x in calibration:
            prepared(x)
    int8 = convert_fx(prepared)
    ort_seconds, ort_model = ort_int8(net, calibration, args.threads)
    channels_last = chapter_net().eval().to(memory_format=torch.channels_last)
    channels_last.load_state_dict(net.state_dict())
    import onnxruntime

    print(f'torch {torch.__version__}, {args.threads} threads, quantized engine {torch.backends.quantized.engine}; '
          f'onnxruntime {onnxruntime.__version__} (int8 exported and quantized in {ort_seconds:.1f} s)')
    for batch in (1, 8):
        x = torch.randn(batch, 3, H, W)
        eager = timed(net, x)
        cl = timed(channels_last, x.contiguous(memory_format=torch.channels_last))
        q = timed(int8, x)
        o = timed(ort_model, x)
        print(
            f'batch {batch} (s/iter, forward + argmax): float32 eager {eager:.3f}, channels_last {cl:.3f}, '
            f'int8 {q:.3f}; int8 over the faster float32 {min(eager, cl) / q:.2f}x; '
            f'ONNX Runtime int8 {o:.3f}',
            flush=True,
        )
    if args.root:
        fp32_acc, fp32_miou = scores(net, args.root, size)
        int8_acc, int8_miou = scores(int8, args.root, size)
        ort_acc, ort_miou = scores(ort_model, args.root, size)
        print(f'val crops of {args.crop}: float32 pixel accuracy {fp32_acc:.4f}, mIoU {fp32_miou:.4f}; '
              f'int8 {int8_acc:.4f}, {int8_miou:.4f}; ONNX Runtime int8 {ort_acc:.4f}, {ort_miou:.4f} '
              f'(calibrated on {args.calibration} train crops)')


if __name__ == '__main__':
    main()
