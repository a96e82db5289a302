"""PyTorch reference fixtures for torchvision's segmentation and classification models.

Run: `"$(bash scripts/python-env.sh)" scripts/make_segmentation_fixtures.py` (scripts/
make-fixtures.sh runs it too). torch 2.13.0+cpu, torchvision 0.28.0, one thread, fixed seeds:
a rerun rewrites every file byte for byte (the safetensors headers are written with sorted
keys). At the end it reloads every .pth from disk into a fresh torchvision model
(load_state_dict strict) and checks that it reproduces its fixture exactly, and prints how
far float32 is from a float64 forward (at most 6e-6 of max|out| for all of them).

Every expected number comes from torchvision's own model code (torchvision.models and
torchvision.models.segmentation), imported without its compiled ops (see import_torchvision).
All models are built with weights=None, weights_backbone=None: nothing is downloaded.

Weights: strided state dicts (<kind>-<name>.pth)
------------------------------------------------
Each .pth is torch.save(state_dict) (zip format) of a torchvision model, keys exactly
torchvision's: backbone.* / classifier.* / aux_classifier.* for segmentation (backbone.conv1
... backbone.layer4.* for ResNet, backbone.0 ... backbone.16 for MobileNetV3, no fc/avgpool);
conv1.* ... fc.* (ResNet) and features.* / classifier.* (MobileNetV3) for classification.
To keep the files small, every tensor is an as_strided view of one of a few shared storages,
one storage per initialisation recipe, each view at its own storage offset in [0, 61):
  * conv / linear weights (dim >= 2): normals with std sqrt(2 / fan_in), fan_in (= I*kh*kw)
    rounded to a power of two, one storage per rounded fan_in. Strides [1, 2, 3, 5] when
    O >= I, else [2, 1, 3, 5] (2-D: [1, 2] / [2, 1]): non-contiguous, self-overlapping.
  * BatchNorm weight: 1 + 0.1 N(0,1), except ResNet bottlenecks' bn3.weight: 0.3 (1 + 0.1 N)
    (keeps the train-mode network well conditioned; at ~1 float32 rounding alone moved the
    backbone gradients of the training fixture by 3 %). BatchNorm bias, conv/linear bias,
    running_mean: 0.1 N(0,1); running_var: 1 + U(0,1) (positive). 1-D views have stride 1.
  * num_batches_tracked: int64 scalars (value 10), all views of one int64 storage.
A loader must honour storage offsets, strides and storages shared between tensors (and
between dtypes' records). In PyTorch, model.load_state_dict(torch.load(path)) gives exactly
the model that produced the fixture.

Segmentation forward: seg-<name>.pth + seg-<name>.safetensors
-----------------------------------------------------------
  name                                  torchvision.models.segmentation call   input
  fcn_resnet50                          fcn_resnet50(num_classes=21, aux_loss=True)  [1,3,45,37]
  fcn_resnet101                         fcn_resnet101(num_classes=21, aux_loss=True) [1,3,29,35]
  deeplabv3_resnet50                    deeplabv3_resnet50(21, aux_loss=True)        [1,3,9,297]
  deeplabv3_resnet101                   deeplabv3_resnet101(21, aux_loss=True)       [1,3,29,35]
  deeplabv3_mobilenet_v3_large          deeplabv3_mobilenet_v3_large(21) (no aux)    [1,3,17,211]
  deeplabv3_mobilenet_v3_large-nc5-aux  deeplabv3_mobilenet_v3_large(num_classes=5,
                                          aux_loss=True)                             [1,3,41,57]
  lraspp_mobilenet_v3_large             lraspp_mobilenet_v3_large(num_classes=21)    [1,3,37,45]
(every call also has weights=None, weights_backbone=None.) The wide inputs are on purpose:
DeepLab's ASPP atrous rates are 12, 24, 36, and its dilated taps only read real data when
the feature map is wider than the rate. deeplabv3_resnet50's map is 2 x 38 (all three rates
matter: replacing any rate's 3x3 kernel by its centre tap changes `out` by > 0.1);
deeplabv3_mobilenet_v3_large's is 2 x 14 (rate 12 matters). In the other DeepLab fixtures
(maps 4 x 5, 3 x 4) the ASPP convs only see their centre tap.
Keys (float32):
  input                  the image batch [1, 3, H, W], N(0,1) values
  out, aux               model(input)['out'] / ['aux'], eval mode, no_grad: [1, classes, H, W]
                         (aux only when the model has an aux classifier)
  classifier.out         classifier(features['out']) (LR-ASPP: classifier(features)), before
                         the final bilinear upsampling: [1, classes, h, w]
  aux_classifier.out     aux_classifier(features['aux']) before its upsampling
  features.<k>.chmean    the backbone's outputs (k = out, aux; LR-ASPP: low, high): per-channel
                         spatial mean [N, C]
  features.<k>.first8    their first 8 channels [N, 8, h, w]; present when h*w <= 160
  debug.<module>.chmean / .first8   the same for intermediate modules named as in the
                         torchvision module tree: debug.backbone.maxpool, .layer1, .layer2
                         (ResNet; layer3/layer4 are features.aux/out), debug.backbone.0 ... 15
                         (MobileNetV3, less the returned ones), debug.classifier.0.convs.0..4
                         (ASPP branches: 1x1, rate 12, 24, 36, pooling), debug.classifier.0
                         (ASPP after project), debug.classifier.3 (DeepLabHead's ReLU),
                         debug.classifier.2 / debug.aux_classifier.2 (FCNHead's ReLU),
                         debug.classifier.cbr / .scale (the sigmoid gate, [N,128,1,1]) /
                         .low_classifier / .high_classifier (LR-ASPP)
__metadata__: builder, kwargs, input, backbone feature shapes, each key's shape and dtype.
Test: load the .pth, model in eval mode, forward `input`, compare out / aux / classifier.out
with |got - expected| <= 1e-4 * max|expected| (float32 vs float64 here: <= 6e-6). argmax over
classes can be compared exactly except where the top two logits are within that tolerance
(0 to 0.4 % of pixels here).

Classification forward: cls-<name>.pth + cls-<name>.safetensors
-------------------------------------------------------------
resnet50, resnet101, mobilenet_v3_large (torchvision.models.<name>(weights=None), 1000
classes), input [2, 3, 45, 51]. Keys: input, logits [2, 1000] (eval, no_grad),
debug.maxpool/layer1..4 or debug.features.0..16 (.chmean, .first8 as above). Tolerance as
above (float32 vs float64: <= 1e-6 of max|logits|).

Training step: train-fcn_resnet50.safetensors, train-lraspp_mobilenet_v3_large.safetensors
--------------------------------------------------------------------------------------
Weights: seg-<name>.pth above. torchvision's reference recipe (references/segmentation/
train.py), two iterations:
  model.train(); then every nn.Dropout module .eval() (identity, the same as p=0): FCNHead's
    Dropout(0.1) = classifier.3 and aux_classifier.3 (LR-ASPP has no Dropout). BatchNorm stays
    in train mode: batch statistics, running stats updated with momentum 0.1 (heads, ResNet)
    or 0.01 (MobileNetV3 backbone), unbiased variance in the running update.
  criterion(out, Y) = cross_entropy(out['out'], Y, ignore_index=255)
                      + 0.5 * cross_entropy(out['aux'], Y, ignore_index=255)   (mean; no aux
                      term for LR-ASPP)
  optimizer = SGD(groups, lr=0.01, momentum=0.9, weight_decay=1e-4) (dampening 0, no
    Nesterov), groups in this order: [model.backbone.parameters()], [model.classifier.
    parameters()], and with aux [model.aux_classifier.parameters(), lr=0.1 (10 x lr)].
    Weight decay applies to every parameter, BatchNorm weights and biases included.
  scheduler = PolynomialLR(optimizer, total_iters=10, power=0.9), stepped after each
    optimizer step (step 2 runs at lr x 0.9**0.9 = 0.0090953 / 0.090953).
  for t in 1, 2: loss = criterion(model(X<t>), Y<t>); optimizer.zero_grad(); loss.backward();
    optimizer.step(); scheduler.step()
Keys: X1, X2 [2, 3, 29, 35] float32; Y1, Y2 [2, 29, 35] int64 in [0, 21) with 255 in the first
3 rows and ~5 % of the other pixels; loss [2] (float32, the loss of each iteration; the
second uses the weights after step 1), loss.out [2], loss.aux [2] (the two CE terms); lr [2,
groups] float64 (the lr each group used in each iteration); step1.<param> (after step 1);
step2.<param> (after step 2, a subset); step1.grad.<param> (step 1's gradients);
step2.momentum_buffer.<param>; step<t>.<bn module>.running_mean / .running_var (after each
forward). float32 vs float64 here: loss <= 2e-7 relative, gradients <= 2e-5 relative,
parameters <= 6e-7 of max|value|. Suggested: loss 1e-5 relative, gradients 1e-4 relative,
parameters and buffers 1e-5 of max|value|.

Learning-rate schedulers: schedulers.safetensors (float64)
---------------------------------------------------------
p = Parameter(zeros(1)); SGD([p], lr=0.01); 20 x (optimizer.step(); scheduler.step()).
Each entry is [21]: entry t is param_groups[0]['lr'] used by optimizer step t (t = 0..19),
entry 20 the lr after the 20th scheduler.step().
  polynomial         PolynomialLR(total_iters=20, power=0.9): 0.01 (1 - min(t, 20) / 20)^0.9
  step               StepLR(step_size=5, gamma=0.5): 0.01 * 0.5^(t // 5)
  cosine             CosineAnnealingLR(T_max=20, eta_min=1e-4):
                     1e-4 + (0.01 - 1e-4) (1 + cos(pi t / 20)) / 2
  warmup_polynomial  SequentialLR([LinearLR(start_factor=0.01, end_factor=1.0, total_iters=5),
                     PolynomialLR(total_iters=15, power=0.9)], milestones=[5]) (the reference
                     recipe with --lr-warmup-epochs; warmup decay 0.01):
                     t < 5: 0.01 (0.01 + 0.99 t / 5); t >= 5: 0.01 (1 - min(t - 5, 15) / 15)^0.9
  <name>.closed_form the formula in float64. PyTorch updates lrs recursively (chainable form);
                     the two agree to < 1e-15 (asserted). Tolerance 1e-12.

AdamW: adamw.safetensors (float32)
---------------------------------
p1 [4, 3], p2 [3] from p1.init, p2.init; loss L = sum((p1 @ v - t)^2) + sum(c * p2^2) +
sum(p1.sum(0) * p2) (v, t, c stored). 10 x (zero_grad(); L.backward(); step()) with
AdamW([p1, p2], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False / True,
foreach=False). Per run r in amsgrad_false, amsgrad_true: r.p1 [10, 4, 3], r.p2 [10, 3] (the
params after each step), r.loss [10] (L before each step), r.exp_avg.p1 / .p2,
r.exp_avg_sq.p1 / .p2, r.max_exp_avg_sq.p1 / .p2 (amsgrad only; the final states),
r.step [1] (10). Tolerance 1e-6 relative.

Prediction with the weights' preprocessing: predict-lraspp_mobilenet_v3_large.safetensors
-----------------------------------------------------------------------------------------
Weights: seg-lraspp_mobilenet_v3_large.pth. image: uint8 [3, 19, 26] (uniform 0..255), x =
LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1.transforms()(image) (torchvision's
SemanticSegmentation(resize_size=520): the shorter side resized to 520, bilinear antialiased
in float and rounded back to uint8, scaled to [0, 1], ImageNet mean/std; no download), out =
model(x[None])['out'] (eval, no_grad), logits = F.interpolate(out, size=(19, 26),
mode='bilinear', align_corners=False) (the logits back at the image's size). Keys: image,
labels [19, 26] int64 (logits.argmax(1)), margin [19, 26] float32 (top-1 minus top-2 logit),
x.chmean [1, 3] (per-channel mean of the preprocessed input, [1, 3, 520, 711]), scale [1]
(max |logits|). Labels are compared where margin > 1e-4 * scale.
"""
import collections
import glob
import importlib.util
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures')

_TORCHVISION_LIB = None  # keeps the operator schemas below alive


def import_torchvision():
    """Imports torchvision's real Python code without its compiled ops.

    The wheel here is a CUDA build whose _C does not load on CPU torch. torchvision then skips
    every meta kernel behind `extension._has_ops()`, except two: `_meta_registrations.py`
    calls `torch.library.register_fake("torchvision::nms")` and `("torchvision::qnms")`
    unconditionally, which fails when the operators do not exist. Defining just those two
    schemas first (their C++ signatures) lets `import torchvision` finish; nothing here calls
    them. If _C does load (a matching wheel), it is used as is.
    """
    global _TORCHVISION_LIB
    spec = importlib.util.find_spec('torchvision')
    if spec is None:
        raise SystemExit('torchvision is not installed (scripts/python-env.sh installs it)')
    loaded = False
    for path in glob.glob(os.path.join(os.path.dirname(spec.origin), '_C*.so')):
        try:
            torch.ops.load_library(path)
            loaded = True
        except OSError:
            pass
    if not loaded:
        _TORCHVISION_LIB = torch.library.Library('torchvision', 'DEF')
        _TORCHVISION_LIB.define('nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
        _TORCHVISION_LIB.define('qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    import torchvision
    assert torchvision.__version__.startswith('0.28.0'), torchvision.__version__
    return torchvision


# ---------------------------------------------------------------------------------------------
# Strided weights over a few shared storages

OFFSETS = 61  # each view starts at a pseudo-random storage offset in [0, OFFSETS)


def view_strides(shape):
    if len(shape) == 1:
        return [1]
    head = [1, 2] if shape[0] >= shape[1] else [2, 1]
    return (head + [3, 5])[:len(shape)]


def span(shape, strides):
    return 1 + sum((s - 1) * st for s, st in zip(shape, strides))


def recipe(name, value):
    """The storage group of a state-dict entry and the function that fills that storage."""
    leaf = name.rsplit('.', 1)[-1]
    if value.dim() >= 2:
        fan_in = value[0].numel()
        rounded = 2 ** round(math.log2(fan_in))
        std = (2.0 / rounded) ** 0.5
        return f'weight.fan{rounded}', lambda n, g: torch.randn(n, generator=g) * std
    if leaf == 'running_var':
        return 'running_var', lambda n, g: 1 + torch.rand(n, generator=g)
    if leaf == 'running_mean':
        return 'running_mean', lambda n, g: 0.1 * torch.randn(n, generator=g)
    if name.endswith('bn3.weight'):  # the last BN of a ResNet bottleneck's residual branch
        # gamma ~0.3 keeps the deep train-mode network out of its chaotic regime, where float32
        # rounding alone moves backbone gradients by percents (measured: 3e-2 at gamma ~1)
        return 'norm_weight_residual', lambda n, g: 0.3 * (1 + 0.1 * torch.randn(n, generator=g))
    if leaf == 'weight':  # a norm layer's gamma
        return 'norm_weight', lambda n, g: 1 + 0.1 * torch.randn(n, generator=g)
    if leaf == 'bias':
        return 'bias', lambda n, g: 0.1 * torch.randn(n, generator=g)
    raise ValueError(f'no recipe for {name} {tuple(value.shape)}')


def strided_state_dict(model, seed):
    """model.state_dict() with every float tensor replaced by a view over a shared storage."""
    sd = model.state_dict()  # an OrderedDict with _metadata, as torchvision's files
    gen = torch.Generator().manual_seed(seed)
    plans, sizes, fills = [], collections.OrderedDict(), {}
    for name, value in sd.items():
        if name.endswith('num_batches_tracked'):
            continue
        group, fill = recipe(name, value)
        strides = view_strides(value.shape)
        offset = int(torch.randint(0, OFFSETS, (1,), generator=gen))
        plans.append((name, tuple(value.shape), strides, offset, group))
        sizes[group] = max(sizes.get(group, 0), offset + span(value.shape, strides))
        fills[group] = fill
    storages = {group: fills[group](size, gen) for group, size in sizes.items()}
    for name, shape, strides, offset, group in plans:
        sd[name] = storages[group].as_strided(shape, strides, offset)
    counts = torch.tensor([10, 7], dtype=torch.int64)  # one int64 storage shared by all counters
    for name in sd:
        if name.endswith('num_batches_tracked'):
            sd[name] = counts.as_strided((), (), 0)
    assert hasattr(sd, '_metadata')
    return sd


# ---------------------------------------------------------------------------------------------
# Capturing intermediate outputs

FIRST8_MAX_AREA = 160  # .first8 only for maps of at most this many pixels (files stay small)


def summaries(prefix, x):
    """First 8 channels and per-channel spatial means of an NCHW (or NC) tensor."""
    x = x.detach()
    if x.dim() == 2:
        return {prefix: x.clone()}
    t = {f'{prefix}.chmean': x.mean(dim=(2, 3))}
    if x.shape[2] * x.shape[3] <= FIRST8_MAX_AREA:
        t[f'{prefix}.first8'] = x[:, :8].contiguous().clone()
    return t


class Capture:
    def __init__(self, model, names):
        self.out = collections.OrderedDict()
        modules = dict(model.named_modules())
        self.handles = [modules[name].register_forward_hook(self._hook(name)) for name in names]

    def _hook(self, name):
        def hook(module, args, output):
            if isinstance(output, dict):
                self.out[name] = collections.OrderedDict((k, v.detach().clone()) for k, v in output.items())
            else:
                self.out[name] = output.detach().clone()
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def describe(tensors):
    return {k: [list(v.shape), str(v.dtype).replace('torch.', '')] for k, v in tensors.items()}


def write(tensors, filename, meta):
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    meta = dict(meta)
    meta['keys'] = describe(tensors)
    path = os.path.join(OUT, filename)
    save_file(tensors, path, metadata={k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()})
    canonical_header(path)


def canonical_header(path):
    """Rewrites a safetensors header with sorted keys: safetensors writes its JSON objects
    in hash order, so without this every run would give different bytes."""
    with open(path, 'rb') as f:
        blob = f.read()
    n = struct.unpack('<Q', blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    meta = header.pop('__metadata__', None)
    ordered = {'__metadata__': dict(sorted(meta.items()))} if meta is not None else {}
    ordered.update(sorted(header.items()))
    text = json.dumps(ordered, separators=(',', ':'), ensure_ascii=True).encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + blob[8 + n:])


def save_pth(sd, filename):
    torch.save(sd, os.path.join(OUT, filename))


# ---------------------------------------------------------------------------------------------
# Segmentation forwards

SEGMENTATION = [
    # name, builder, kwargs, input [N, C, H, W], seed
    ('fcn_resnet50', 'fcn_resnet50', dict(num_classes=21, aux_loss=True), (1, 3, 45, 37), 101),
    ('fcn_resnet101', 'fcn_resnet101', dict(num_classes=21, aux_loss=True), (1, 3, 29, 35), 102),
    ('deeplabv3_resnet50', 'deeplabv3_resnet50', dict(num_classes=21, aux_loss=True), (1, 3, 9, 297), 103),
    ('deeplabv3_resnet101', 'deeplabv3_resnet101', dict(num_classes=21, aux_loss=True), (1, 3, 29, 35), 104),
    ('deeplabv3_mobilenet_v3_large', 'deeplabv3_mobilenet_v3_large', dict(num_classes=21, aux_loss=False),
     (1, 3, 17, 211), 105),
    ('deeplabv3_mobilenet_v3_large-nc5-aux', 'deeplabv3_mobilenet_v3_large', dict(num_classes=5, aux_loss=True),
     (1, 3, 41, 57), 106),
    ('lraspp_mobilenet_v3_large', 'lraspp_mobilenet_v3_large', dict(num_classes=21), (1, 3, 37, 45), 107),
]


def build_segmentation(tv, builder, kwargs):
    return getattr(tv.models.segmentation, builder)(weights=None, weights_backbone=None, **kwargs)


def segmentation_debug_modules(model):
    names = [n for n, _ in model.backbone.named_children()]
    returned = set(model.backbone.return_layers)  # their outputs are stored as features.*
    debug = ['backbone.' + n for n in names if n not in ('conv1', 'bn1', 'relu') and n not in returned]
    cls = type(model.classifier).__name__
    if cls == 'DeepLabHead':
        debug += [f'classifier.0.convs.{i}' for i in range(len(model.classifier[0].convs))]
        debug += ['classifier.0', 'classifier.3']
    elif cls == 'FCNHead':
        debug += ['classifier.2']
    elif cls == 'LRASPPHead':
        debug += ['classifier.cbr', 'classifier.scale', 'classifier.low_classifier', 'classifier.high_classifier']
    if model_has_aux(model):
        debug += ['aux_classifier.2']
    return debug


def model_has_aux(model):
    return getattr(model, 'aux_classifier', None) is not None


def segmentation_fixtures(tv):
    models = {}
    for name, builder, kwargs, shape, seed in SEGMENTATION:
        model = build_segmentation(tv, builder, kwargs)
        sd = strided_state_dict(model, seed)
        model.load_state_dict(sd)
        model.eval()
        save_pth(sd, f'seg-{name}.pth')
        models[name] = sd

        x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed + 1000))
        debug = segmentation_debug_modules(model)
        top = ['backbone', 'classifier'] + (['aux_classifier'] if model_has_aux(model) else [])
        cap = Capture(model, debug + top)
        with torch.no_grad():
            result = model(x)
        cap.remove()
        t = collections.OrderedDict(input=x, out=result['out'])
        if 'aux' in result:
            t['aux'] = result['aux']
        t['classifier.out'] = cap.out['classifier']
        if model_has_aux(model):
            t['aux_classifier.out'] = cap.out['aux_classifier']
        for key, value in cap.out['backbone'].items():
            t.update(summaries(f'features.{key}', value))
        for module in debug:
            t.update(summaries(f'debug.{module}', cap.out[module]))
        for k, v in t.items():
            assert torch.isfinite(v).all(), (name, k)
        feats = {k: list(v.shape) for k, v in cap.out['backbone'].items()}
        write(t, f'seg-{name}.safetensors', {
            'builder': f'torchvision.models.segmentation.{builder}',
            'kwargs': dict(weights=None, weights_backbone=None, **kwargs),
            'weights': f'seg-{name}.pth (strided views; see scripts/make_segmentation_fixtures.py)',
            'input': list(shape),
            'features': feats,
            'mode': 'model.eval(), torch.no_grad(), float32, CPU, 1 thread',
            'first8/chmean': 'x[:, :8] (only when h*w <= 160) and x.mean((2, 3)) of the NCHW output of that module',
            'tolerance': 'out/aux/classifier.out: |got - expected| <= 1e-4 * max|expected|',
        })
        print(f'seg {name}: out {tuple(result["out"].shape)} features {feats} '
              f'|out| max {result["out"].abs().max():.3g} std {result["out"].std():.3g}', file=sys.stderr)
    return models


# ---------------------------------------------------------------------------------------------
# Classification forwards

CLASSIFICATION = [
    ('resnet50', 201, ['maxpool', 'layer1', 'layer2', 'layer3', 'layer4']),
    ('resnet101', 202, ['maxpool', 'layer1', 'layer2', 'layer3', 'layer4']),
    ('mobilenet_v3_large', 203, [f'features.{i}' for i in range(17)]),
]


def classification_fixtures(tv):
    shape = (2, 3, 45, 51)
    for name, seed, debug in CLASSIFICATION:
        model = getattr(tv.models, name)(weights=None)
        sd = strided_state_dict(model, seed)
        model.load_state_dict(sd)
        model.eval()
        save_pth(sd, f'cls-{name}.pth')
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed + 1000))
        cap = Capture(model, debug)
        with torch.no_grad():
            logits = model(x)
        cap.remove()
        t = collections.OrderedDict(input=x, logits=logits)
        for module in debug:
            t.update(summaries(f'debug.{module}', cap.out[module]))
        assert torch.isfinite(logits).all()
        write(t, f'cls-{name}.safetensors', {
            'builder': f'torchvision.models.{name}',
            'kwargs': dict(weights=None, num_classes=1000),
            'weights': f'cls-{name}.pth',
            'input': list(shape),
            'mode': 'model.eval(), torch.no_grad(), float32',
            'first8/chmean': 'x[:, :8] (only when h*w <= 160) and x.mean((2, 3)) of the NCHW output of that module',
            'tolerance': 'logits: |got - expected| <= 1e-4 * max|expected|',
        })
        print(f'cls {name}: |logits| max {logits.abs().max():.3g} std {logits.std():.3g}', file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# One (two) training steps with torchvision's reference recipe

TRAIN = {
    # params: stored after step 1; params2: after step 2 too; grads: step 1's gradients;
    # momentum: SGD momentum buffers after step 2; bn: running stats after each step
    'fcn_resnet50': dict(
        params=['backbone.conv1.weight', 'backbone.bn1.weight', 'backbone.bn1.bias',
                'classifier.1.weight', 'classifier.4.weight', 'classifier.4.bias',
                'aux_classifier.4.weight', 'aux_classifier.4.bias'],
        params2=['backbone.bn1.weight', 'backbone.bn1.bias', 'classifier.1.weight', 'classifier.4.bias',
                 'aux_classifier.1.weight', 'aux_classifier.4.bias'],
        grads=['backbone.bn1.weight', 'classifier.1.weight', 'classifier.4.bias', 'aux_classifier.4.bias'],
        momentum=['backbone.bn1.weight', 'classifier.4.bias', 'aux_classifier.4.bias'],
        bn=['backbone.bn1', 'classifier.1', 'aux_classifier.1']),
    'lraspp_mobilenet_v3_large': dict(
        params=['backbone.0.0.weight', 'backbone.0.1.weight', 'backbone.0.1.bias',
                'classifier.cbr.1.weight', 'classifier.low_classifier.weight', 'classifier.low_classifier.bias',
                'classifier.high_classifier.weight', 'classifier.high_classifier.bias'],
        params2=['backbone.0.0.weight', 'backbone.0.1.weight', 'classifier.cbr.1.weight',
                 'classifier.low_classifier.bias', 'classifier.high_classifier.bias'],
        grads=['backbone.0.0.weight', 'classifier.cbr.1.weight', 'classifier.low_classifier.bias',
               'classifier.high_classifier.bias'],
        momentum=['backbone.0.0.weight', 'classifier.low_classifier.bias', 'classifier.high_classifier.bias'],
        bn=['backbone.0.1', 'classifier.cbr.1']),
}


def criterion(outputs, target):
    """references/segmentation/train.py's criterion, with its two terms returned too."""
    losses = {name: F.cross_entropy(x, target, ignore_index=255) for name, x in outputs.items()}
    if len(losses) == 1:
        return losses['out'], losses
    return losses['out'] + 0.5 * losses['aux'], losses


def train_fixtures(tv, state_dicts):
    lr, momentum, weight_decay = 0.01, 0.9, 1e-4
    for name, spec in TRAIN.items():
        builder, kwargs = next((b, k) for n, b, k, _, _ in SEGMENTATION if n == name)
        model = build_segmentation(tv, builder, kwargs)
        model.load_state_dict(state_dicts[name])
        num_classes = kwargs['num_classes']
        model.train()
        dropouts = [n for n, m in model.named_modules() if isinstance(m, nn.Dropout)]
        for m in model.modules():
            if isinstance(m, nn.Dropout):
                m.eval()  # identity, as p=0
        aux = model_has_aux(model)
        groups = [
            {'params': [p for p in model.backbone.parameters() if p.requires_grad]},
            {'params': [p for p in model.classifier.parameters() if p.requires_grad]},
        ]
        if aux:
            groups.append({'params': [p for p in model.aux_classifier.parameters() if p.requires_grad],
                           'lr': lr * 10})
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
        scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=10, power=0.9)
        gen = torch.Generator().manual_seed(301)
        params = dict(model.named_parameters())
        modules = dict(model.named_modules())
        t = collections.OrderedDict()
        losses, parts, lrs = [], collections.defaultdict(list), []
        for step in (1, 2):
            X = torch.randn(2, 3, 29, 35, generator=gen)
            Y = torch.randint(0, num_classes, (2, 29, 35), generator=gen)
            Y[:, :3, :] = 255
            Y[torch.rand(Y.shape, generator=gen) < 0.05] = 255
            t[f'X{step}'], t[f'Y{step}'] = X, Y
            lrs.append([g['lr'] for g in optimizer.param_groups])
            output = model(X)
            loss, terms = criterion(output, Y)
            optimizer.zero_grad()
            loss.backward()
            if step == 1:
                for p in spec['grads']:
                    t[f'step1.grad.{p}'] = params[p].grad.detach().clone()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            for k, v in terms.items():
                parts[k].append(v.item())
            for p in spec['params' if step == 1 else 'params2']:
                t[f'step{step}.{p}'] = params[p].detach().clone()
            for b in spec['bn']:
                t[f'step{step}.{b}.running_mean'] = modules[b].running_mean.clone()
                t[f'step{step}.{b}.running_var'] = modules[b].running_var.clone()
        for p in spec['momentum']:
            t[f'step2.momentum_buffer.{p}'] = optimizer.state[params[p]]['momentum_buffer'].clone()
        t['loss'] = torch.tensor(losses, dtype=torch.float32)
        for k, v in parts.items():
            t[f'loss.{k}'] = torch.tensor(v, dtype=torch.float32)
        t['lr'] = torch.tensor(lrs, dtype=torch.float64)
        for k, v in t.items():
            assert torch.isfinite(v.double()).all(), (name, k)
        write(t, f'train-{name}.safetensors', {
            'weights': f'seg-{name}.pth',
            'builder': f'torchvision.models.segmentation.{builder}',
            'kwargs': dict(weights=None, weights_backbone=None, **kwargs),
            'mode': 'model.train(); then every nn.Dropout module .eval() (identity, i.e. p=0): '
                    + json.dumps(dropouts) + '; BatchNorm layers stay in train mode',
            'criterion': ('cross_entropy(out, Y, ignore_index=255) + 0.5 * cross_entropy(aux, Y, ignore_index=255)'
                          if aux else 'cross_entropy(out, Y, ignore_index=255)') + ', mean reduction',
            'optimizer': 'SGD(momentum=0.9, weight_decay=1e-4, dampening=0, nesterov=False) with param groups '
                         + ('[backbone (lr 0.01), classifier (lr 0.01), aux_classifier (lr 0.1)]' if aux else
                            '[backbone (lr 0.01), classifier (lr 0.01)]')
                         + ' (each group: module.parameters() in registration order)',
            'scheduler': 'PolynomialLR(total_iters=10, power=0.9), scheduler.step() after each optimizer.step()',
            'loop': 'for t in (1, 2): out = model(X<t>); loss = criterion(out, Y<t>); zero_grad; loss.backward(); '
                    'optimizer.step(); scheduler.step()',
        })
        print(f'train {name}: losses {losses} terms {dict(parts)} lrs {lrs}', file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Learning-rate schedulers and AdamW

def lr_sequence(make, steps=20, lr=0.01):
    p = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([p], lr=lr)
    scheduler = make(optimizer)
    seq = [optimizer.param_groups[0]['lr']]
    for _ in range(steps):
        optimizer.zero_grad()
        p.sum().backward()
        optimizer.step()
        scheduler.step()
        seq.append(optimizer.param_groups[0]['lr'])
    return torch.tensor(seq, dtype=torch.float64)


def scheduler_fixtures():
    S = torch.optim.lr_scheduler
    base = 0.01
    t = collections.OrderedDict()
    t['polynomial'] = lr_sequence(lambda o: S.PolynomialLR(o, total_iters=20, power=0.9))
    t['step'] = lr_sequence(lambda o: S.StepLR(o, step_size=5, gamma=0.5))
    t['cosine'] = lr_sequence(lambda o: S.CosineAnnealingLR(o, T_max=20, eta_min=1e-4))
    t['warmup_polynomial'] = lr_sequence(lambda o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.01, end_factor=1.0, total_iters=5),
            S.PolynomialLR(o, total_iters=15, power=0.9)], milestones=[5]))
    n = range(21)
    t['polynomial.closed_form'] = torch.tensor(
        [base * (1 - min(i, 20) / 20) ** 0.9 for i in n], dtype=torch.float64)
    t['step.closed_form'] = torch.tensor([base * 0.5 ** (i // 5) for i in n], dtype=torch.float64)
    t['cosine.closed_form'] = torch.tensor(
        [1e-4 + (base - 1e-4) * (1 + math.cos(math.pi * i / 20)) / 2 for i in n], dtype=torch.float64)
    t['warmup_polynomial.closed_form'] = torch.tensor(
        [base * (0.01 + (1 - 0.01) * i / 5) if i < 5 else base * (1 - min(i - 5, 15) / 15) ** 0.9 for i in n],
        dtype=torch.float64)
    for k in ('polynomial', 'step', 'cosine', 'warmup_polynomial'):
        diff = (t[k] - t[f'{k}.closed_form']).abs().max().item()
        assert diff < 1e-15, (k, diff, t[k], t[f'{k}.closed_form'])
    write(t, 'schedulers.safetensors', {
        'setup': 'p = Parameter(zeros(1)); optimizer = SGD([p], lr=0.01); scheduler = S(optimizer, ...); '
                 'seq = [lr]; 20 x (optimizer.step(); scheduler.step(); seq.append(lr))',
        'indexing': 'seq[t] = lr used by optimizer step t (t = 0..19); seq[20] = lr after the 20th scheduler.step()',
        'polynomial': 'torch.optim.lr_scheduler.PolynomialLR(total_iters=20, power=0.9): '
                      'lr_t = 0.01 * (1 - min(t, 20) / 20) ** 0.9',
        'step': 'StepLR(step_size=5, gamma=0.5): lr_t = 0.01 * 0.5 ** (t // 5)',
        'cosine': 'CosineAnnealingLR(T_max=20, eta_min=1e-4): lr_t = 1e-4 + (0.01 - 1e-4) * (1 + cos(pi t / 20)) / 2',
        'warmup_polynomial': 'SequentialLR([LinearLR(start_factor=0.01, end_factor=1.0, total_iters=5), '
                             'PolynomialLR(total_iters=15, power=0.9)], milestones=[5]): '
                             't < 5: 0.01 * (0.01 + 0.99 * t / 5); t >= 5: 0.01 * (1 - min(t - 5, 15) / 15) ** 0.9',
        'closed_form': '<name>.closed_form: the formula above in float64; PyTorch itself updates the lr '
                       'recursively (chainable form), they agree to < 1e-15 absolute',
    })


def adamw_fixtures():
    gen = torch.Generator().manual_seed(401)
    p1_init = torch.randn(4, 3, generator=gen)
    p2_init = torch.randn(3, generator=gen)
    v = torch.randn(3, generator=gen)
    target = torch.randn(4, generator=gen)
    c = torch.rand(3, generator=gen) + 0.5
    t = collections.OrderedDict([('p1.init', p1_init), ('p2.init', p2_init), ('v', v), ('t', target), ('c', c)])

    def loss_fn(p1, p2):
        return ((p1 @ v - target) ** 2).sum() + (c * p2 ** 2).sum() + (p1.sum(0) * p2).sum()

    for amsgrad in (False, True):
        r = f'amsgrad_{str(amsgrad).lower()}'
        p1 = nn.Parameter(p1_init.clone())
        p2 = nn.Parameter(p2_init.clone())
        opt = torch.optim.AdamW([p1, p2], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                                amsgrad=amsgrad, foreach=False)
        h1, h2, losses = [], [], []
        for _ in range(10):
            opt.zero_grad()
            loss = loss_fn(p1, p2)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            h1.append(p1.detach().clone())
            h2.append(p2.detach().clone())
        t[f'{r}.p1'] = torch.stack(h1)
        t[f'{r}.p2'] = torch.stack(h2)
        t[f'{r}.loss'] = torch.tensor(losses, dtype=torch.float32)
        for pname, p in (('p1', p1), ('p2', p2)):
            state = opt.state[p]
            t[f'{r}.exp_avg.{pname}'] = state['exp_avg'].clone()
            t[f'{r}.exp_avg_sq.{pname}'] = state['exp_avg_sq'].clone()
            if amsgrad:
                t[f'{r}.max_exp_avg_sq.{pname}'] = state['max_exp_avg_sq'].clone()
        t[f'{r}.step'] = opt.state[p1]['step'].clone().float().reshape(1)
    write(t, 'adamw.safetensors', {
        'loss': 'L = sum((p1 @ v - t) ** 2) + sum(c * p2 ** 2) + sum(p1.sum(0) * p2); p1 [4, 3], p2 [3]',
        'optimizer': 'torch.optim.AdamW([p1, p2], lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, '
                     'amsgrad=False | True, foreach=False)',
        'loop': '10 x (zero_grad(); L.backward(); step()), starting from p1.init, p2.init',
        '<run>.p1 / .p2': 'params after each of the 10 steps, stacked on dim 0',
        '<run>.loss': 'L before each step',
        '<run>.exp_avg / exp_avg_sq / max_exp_avg_sq': 'optimizer state after the 10th step',
        'update': 'p *= 1 - lr * wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; '
                  'vmax = max(vmax, v) (amsgrad); p -= lr / (1 - b1^k) * m / (sqrt(v or vmax) / sqrt(1 - b2^k) + eps)',
    })


def predict_fixture(tv):
    seg = tv.models.segmentation
    model = build_segmentation(tv, 'lraspp_mobilenet_v3_large', dict(num_classes=21))
    model.load_state_dict(torch.load(os.path.join(OUT, 'seg-lraspp_mobilenet_v3_large.pth'), weights_only=True))
    model.eval()
    image = torch.randint(0, 256, (3, 19, 26), dtype=torch.uint8, generator=torch.Generator().manual_seed(501))
    transforms = seg.LRASPP_MobileNet_V3_Large_Weights.COCO_WITH_VOC_LABELS_V1.transforms()
    x = transforms(image).unsqueeze(0)
    with torch.no_grad():
        out = model(x)['out']
    logits = F.interpolate(out, size=image.shape[-2:], mode='bilinear', align_corners=False)
    top2 = logits.topk(2, dim=1).values[0]
    t = collections.OrderedDict(
        image=image, labels=logits.argmax(1)[0], margin=top2[0] - top2[1], **{'x.chmean': x.mean(dim=(2, 3))},
        scale=logits.abs().max().reshape(1))
    write(t, 'predict-lraspp_mobilenet_v3_large.safetensors', {
        'weights': 'seg-lraspp_mobilenet_v3_large.pth',
        'transforms': repr(transforms),
        'preprocessed': list(x.shape),
        'labels': "F.interpolate(model(transforms(image)[None])['out'], size=image's, mode='bilinear', "
                  'align_corners=False).argmax(1)',
    })
    print(f'predict: x {tuple(x.shape)}, classes found {labels_found(t["labels"])}', file=sys.stderr)


def labels_found(labels):
    return sorted(set(labels.flatten().tolist()))


def verify(tv):
    """Reloads every .pth from disk into a fresh torchvision model (strict) and checks that it
    reproduces its fixture exactly; reports the float32 error against a float64 forward."""
    from safetensors.torch import load_file
    cases = [(f'seg-{n}', lambda b=b, k=k: build_segmentation(tv, b, k)) for n, b, k, _, _ in SEGMENTATION]
    cases += [(f'cls-{n}', lambda n=n: getattr(tv.models, n)(weights=None)) for n, _, _ in CLASSIFICATION]
    for stem, make in cases:
        model = make()
        sd = torch.load(os.path.join(OUT, stem + '.pth'), weights_only=True)
        model.load_state_dict(sd, strict=True)
        model.eval()
        ref = load_file(os.path.join(OUT, stem + '.safetensors'))
        with torch.no_grad():
            got = model(ref['input'])
            got64 = model.double()(ref['input'].double())
        if not isinstance(got, dict):
            got, got64 = {'logits': got}, {'logits': got64}
        for key, value in got.items():
            assert torch.equal(value, ref[key]), (stem, key)
            scale = got64[key].abs().max().item()
            err = (value.double() - got64[key]).abs().max().item() / scale
            top2 = got64[key].topk(2, dim=1).values
            close = ((top2[:, 0] - top2[:, 1]) < 1e-4 * scale).double().mean().item()
            print(f'verify {stem}.{key}: reloaded .pth reproduces it; float32 vs float64 error '
                  f'{err:.1e} x max|value| ({scale:.3g}); argmax ties within 1e-4: {close:.1%}', file=sys.stderr)


def main():
    assert torch.__version__.startswith('2.13.0'), torch.__version__
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tv = import_torchvision()
    state_dicts = segmentation_fixtures(tv)
    classification_fixtures(tv)
    train_fixtures(tv, state_dicts)
    scheduler_fixtures()
    adamw_fixtures()
    predict_fixture(tv)
    verify(tv)
    total = 0
    for f in sorted(os.listdir(OUT)):
        if f.startswith(('seg-', 'cls-', 'train-', 'schedulers', 'adamw', 'predict-')):
            size = os.path.getsize(os.path.join(OUT, f))
            total += size
            print(f'{size:>9}  {f}', file=sys.stderr)
    print(f'{total:>9}  total', file=sys.stderr)


if __name__ == '__main__':
    main()
