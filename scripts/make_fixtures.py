"""Writes the PyTorch fixtures that the tests compare fcn-torch against (test/fixtures/).

Run with torch==2.13.0+cpu and safetensors installed: `bash scripts/make-fixtures.sh`.
Every expected number here comes from PyTorch itself. ResNet-18 is written out in plain
torch with torchvision's module names (torchvision's own ops do not load with the CPU
wheel here); its weights are strided views over small storages, so the `.pth` files that
hold them stay small while still exercising non-contiguous tensors.
"""
import collections
import copy
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures')


def bilinear_kernel(in_channels, out_channels, kernel_size):
    """The chapter's function, verbatim."""
    factor = (kernel_size + 1) // 2
    if kernel_size % 2 == 1:
        center = factor - 1
    else:
        center = factor - 0.5
    og = (torch.arange(kernel_size).reshape(-1, 1),
          torch.arange(kernel_size).reshape(1, -1))
    filt = (1 - torch.abs(og[0] - center) / factor) * \
           (1 - torch.abs(og[1] - center) / factor)
    weight = torch.zeros((in_channels, out_channels,
                          kernel_size, kernel_size))
    weight[range(in_channels), range(out_channels), :, :] = filt
    return weight


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision.models.resnet18's module tree and forward."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for i, planes in enumerate([64, 128, 256, 512]):
            stride = 1 if i == 0 else 2
            setattr(self, f'layer{i + 1}', nn.Sequential(BasicBlock(inplanes, planes, stride),
                                                         BasicBlock(planes, planes)))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def strided(shape, gen):
    """A tensor of shape whose elements overlap in a small storage (strides 1, 2, 3, 5, ...)."""
    primes = [1, 2, 3, 5, 7]
    stride = [primes[len(shape) - 1 - i] for i in range(len(shape))]
    size = 1 + sum((s - 1) * st for s, st in zip(shape, stride))
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    storage = torch.randn(size, generator=gen) * (2.0 / fan_in) ** 0.5
    return storage.as_strided(shape, stride)


def resnet_fixtures():
    gen = torch.Generator().manual_seed(2024)
    model = ResNet18()
    sd = model.state_dict()  # an OrderedDict with _metadata, like torchvision's file
    for name, value in list(sd.items()):
        if name.endswith('num_batches_tracked') or 'running' in name:
            continue
        if name.endswith('bn1.weight') or name.endswith('bn2.weight') or name.endswith('downsample.1.weight'):
            sd[name] = 1 + 0.1 * strided(value.shape, gen)
        else:
            sd[name] = strided(value.shape, gen)
    model.load_state_dict(sd)
    # Running statistics from real batch statistics keep activations in range.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0
    calib = torch.rand(4, 3, 64, 64, generator=gen)
    model.train()
    with torch.no_grad():
        model(calib)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 0.1
    trained = model.state_dict()
    for name in sd:
        if 'running' in name or name.endswith('num_batches_tracked'):
            sd[name] = trained[name]
    assert hasattr(sd, '_metadata')
    torch.save(sd, os.path.join(OUT, 'resnet18-strided.pth'))
    torch.save(sd, os.path.join(OUT, 'resnet18-strided-legacy.pth'), _use_new_zipfile_serialization=False)

    model.eval()
    x = torch.rand(1, 3, 64, 64, generator=gen)
    with torch.no_grad():
        logits = model(x)
        body = nn.Sequential(*list(model.children())[:-2])(x)
    save_file({'input': x, 'logits': logits, 'body': body}, os.path.join(OUT, 'resnet18-forward.safetensors'))
    return model, sd


def fcn_sgd_fixture(sd):
    pretrained = ResNet18()
    pretrained.load_state_dict(sd)
    net = nn.Sequential(*list(pretrained.children())[:-2])
    num_classes = 21
    net.add_module('final_conv', nn.Conv2d(512, num_classes, kernel_size=1))
    net.add_module('transpose_conv', nn.ConvTranspose2d(num_classes, num_classes,
                                                        kernel_size=64, padding=16, stride=32))
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        net.final_conv.weight.copy_(torch.randn(net.final_conv.weight.shape, generator=gen) * 0.05)
        net.final_conv.bias.copy_(torch.randn(num_classes, generator=gen) * 0.05)
    net.transpose_conv.weight.data.copy_(bilinear_kernel(num_classes, num_classes, 64))
    nn.init.zeros_(net.transpose_conv.bias)
    init = {'final_conv.weight': net.final_conv.weight.detach().clone(),
            'final_conv.bias': net.final_conv.bias.detach().clone()}
    X = torch.rand(2, 3, 64, 96, generator=gen)
    Y = torch.randint(0, num_classes, (2, 64, 96), generator=gen)
    Y[:, :4, :] = 255  # a void border, ignored by the loss

    def loss(inputs, targets):
        return F.cross_entropy(inputs, targets, reduction='none', ignore_index=255).mean(1).mean(1)

    trainer = torch.optim.SGD(net.parameters(), lr=0.001, weight_decay=1e-3)
    net.train()
    losses, correct = [], []
    for _ in range(3):
        trainer.zero_grad()
        out = net(X)
        l = loss(out, Y)
        l.sum().backward()
        trainer.step()
        losses.append(l.sum().item())
        # train_batch_ch13's accuracy: the labelled pixels whose argmax is their label
        correct.append(int(((out.argmax(1) == Y) & (Y != 255)).sum()))
    save_file({**init, 'X': X, 'Y': Y, 'losses': torch.tensor(losses, dtype=torch.float64),
               'correct': torch.tensor(correct, dtype=torch.int64),
               'final_conv.weight.after': net.final_conv.weight.detach().clone(),
               'transpose_conv.bias.after': net.transpose_conv.bias.detach().clone()},
              os.path.join(OUT, 'fcn-sgd.safetensors'))


class FCNSkip(nn.Module):
    """FCN-16s / FCN-8s on a ResNet-18, with fcn-torch's module names."""

    def __init__(self, resnet, num_classes, stride):
        super().__init__()
        self.stride = stride
        self.stem = nn.Sequential(collections.OrderedDict(
            (name, getattr(resnet, name)) for name in ['conv1', 'bn1', 'relu', 'maxpool', 'layer1']))
        self.layer2, self.layer3, self.layer4 = resnet.layer2, resnet.layer3, resnet.layer4
        self.score_fr = nn.Conv2d(512, num_classes, 1)
        self.score_pool4 = nn.Conv2d(256, num_classes, 1)
        if stride == 8:
            self.score_pool3 = nn.Conv2d(128, num_classes, 1)
        self.upscore2 = nn.ConvTranspose2d(num_classes, num_classes, 4, 2, 1)
        if stride == 8:
            self.upscore_pool4 = nn.ConvTranspose2d(num_classes, num_classes, 4, 2, 1)
        self.add_module(f'upscore{stride}',
                        nn.ConvTranspose2d(num_classes, num_classes, 2 * stride, stride, stride // 2))

    def forward(self, x):
        pool3 = self.layer2(self.stem(x))
        pool4 = self.layer3(pool3)
        scores = self.upscore2(self.score_fr(self.layer4(pool4))) + self.score_pool4(pool4)
        if self.stride == 8:
            scores = self.upscore_pool4(scores) + self.score_pool3(pool3)
        return getattr(self, f'upscore{self.stride}')(scores)


def tile_starts(side, tile):
    """Tiles evenly spread over a side, the first at 0 and the last at side - tile."""
    count = -(-side // tile)
    if count <= 1:
        return [0]
    return [(i * (side - tile) + (count - 1) // 2) // (count - 1) for i in range(count)]


def tiled_labels(net, x, tile_h, tile_w):
    """Whole-image prediction: mean logits of covering tiles (sides padded to 32), argmax."""
    h, w = x.shape[2:]
    ph, pw = max(h, 32), max(w, 32)
    x = F.pad(x, (0, pw - w, 0, ph - h))
    th, tw = min(tile_h, ph // 32 * 32), min(tile_w, pw // 32 * 32)
    total, count = None, torch.zeros(1, 1, ph, pw)
    for top in tile_starts(ph, th):
        for left in tile_starts(pw, tw):
            logits = net(x[:, :, top:top + th, left:left + tw])
            if total is None:
                total = torch.zeros(x.shape[0], logits.shape[1], ph, pw)
            total[:, :, top:top + th, left:left + tw] += logits
            count[:, :, top:top + th, left:left + tw] += 1
    return (total / count)[:, :, :h, :w].argmax(1)


def fcn_skip_fixture(sd):
    """FCN-16s and FCN-8s forwards, and whole-image predictions by tiles, in eval mode."""
    out = {}
    gen = torch.Generator().manual_seed(11)
    x = torch.rand(1, 3, 64, 64, generator=gen)
    out['X'] = x
    for stride in (16, 8):
        resnet = ResNet18()
        resnet.load_state_dict(sd)
        net = FCNSkip(resnet, 21, stride).eval()
        with torch.no_grad():
            for name, module in net.named_children():
                if name.startswith('score'):
                    module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * 0.05)
                    module.bias.copy_(torch.randn(21, generator=gen) * 0.05)
                    out[f'fcn{stride}s.{name}.weight'] = module.weight.clone()
                    out[f'fcn{stride}s.{name}.bias'] = module.bias.clone()
                elif name.startswith('upscore'):
                    module.weight.copy_(bilinear_kernel(21, 21, module.weight.shape[2]))
                    module.bias.zero_()
            out[f'fcn{stride}s.logits'] = net(x)
            if stride == 8:
                big = torch.rand(1, 3, 75, 101, generator=gen)
                small = torch.rand(2, 3, 20, 40, generator=gen)
                out['whole.X'] = big
                out['whole.labels'] = tiled_labels(net, big, 64, 64)
                out['small.X'] = small
                out['small.labels'] = tiled_labels(net, small, 64, 64)
                # uint8 pixels through the chapter's normalize_image (ImageNet statistics)
                pixels = torch.randint(0, 256, (1, 3, 70, 90), generator=gen, dtype=torch.uint8)
                mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
                std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
                out['pixels.u8'] = pixels
                out['pixels.labels'] = tiled_labels(net, (pixels.float() / 255 - mean) / std, 64, 96)
    save_file(out, os.path.join(OUT, 'fcn-skip.safetensors'))


def conv_fixtures():
    out = {}
    torch.manual_seed(1)
    cases = {
        'conv': nn.Conv2d(4, 6, kernel_size=(3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2),
        'convreflect': nn.Conv2d(3, 2, kernel_size=3, padding=1, padding_mode='reflect', bias=False),
        'tconv': nn.ConvTranspose2d(4, 6, kernel_size=4, stride=2, padding=1, output_padding=1, groups=2),
        'tconvdil': nn.ConvTranspose2d(3, 2, kernel_size=3, stride=3, padding=2, dilation=2),
        # kernel = 2 x stride, as the FCN's upsampling: fcn-torch computes these by sub-pixels
        'tconvsub': nn.ConvTranspose2d(3, 2, kernel_size=16, stride=8, padding=4),
        'tconvsubodd': nn.ConvTranspose2d(3, 2, kernel_size=16, stride=8, padding=3, bias=False),
    }
    for name, layer in cases.items():
        in_channels = layer.in_channels
        x = torch.randn(2, in_channels, 9, 8, requires_grad=True)
        y = layer(x)
        g = torch.randn_like(y)
        (y * g).sum().backward()
        out[f'{name}.weight'] = layer.weight.detach()
        if layer.bias is not None:
            out[f'{name}.bias'] = layer.bias.detach()
            out[f'{name}.bias.grad'] = layer.bias.grad
        out[f'{name}.x'] = x.detach()
        out[f'{name}.y'] = y.detach()
        out[f'{name}.g'] = g
        out[f'{name}.x.grad'] = x.grad
        out[f'{name}.weight.grad'] = layer.weight.grad
    save_file(out, os.path.join(OUT, 'conv.safetensors'))


def init_fixtures():
    out = {}
    torch.manual_seed(0)
    out['rand.seed0'] = torch.rand(2, 3, 4)
    out['randn.seed0'] = torch.randn(5)
    torch.manual_seed(42)
    out['randn.seed42'] = torch.randn(2, 2)
    torch.manual_seed(7)
    conv = nn.Conv2d(3, 4, 3)
    out['conv.default.weight'] = conv.weight.detach()
    out['conv.default.bias'] = conv.bias.detach()
    torch.manual_seed(3)
    w = torch.empty(21, 512, 1, 1)
    nn.init.xavier_uniform_(w)
    out['xavier.seed3'] = w
    for args in [(3, 3, 4), (2, 2, 5), (1, 3, 4), (4, 4, 1)]:
        out['bilinear.%d.%d.%d' % args] = bilinear_kernel(*args)
    # The FCN's kernel is 7 MB: keep its (i, i) planes and the sum of everything else.
    big = bilinear_kernel(21, 21, 64)
    out['bilinear.21.21.64.diagonal'] = big[range(21), range(21)].clone()
    out['bilinear.21.21.64.total'] = big.double().sum().reshape(1)
    # The chapter's 2x upsampling of an image by a bilinear transposed convolution.
    conv_trans = nn.ConvTranspose2d(3, 3, kernel_size=4, padding=1, stride=2, bias=False)
    conv_trans.weight.data.copy_(bilinear_kernel(3, 3, 4))
    image = torch.rand(1, 3, 24, 36, generator=torch.Generator().manual_seed(5))
    out['upsample.x'] = image
    out['upsample.y'] = conv_trans(image).detach()
    save_file(out, os.path.join(OUT, 'init.safetensors'))


def io_fixtures():
    # safetensors written by the reference implementation, with every dtype we read.
    save_file({'f32': torch.arange(6, dtype=torch.float32).reshape(2, 3),
               'f64': torch.tensor([1.5, -2.25], dtype=torch.float64),
               'f16': torch.tensor([0.5, 3.0], dtype=torch.float16),
               'i64': torch.tensor([-(2 ** 40), 7]),
               'i32': torch.tensor([[1, -2]], dtype=torch.int32),
               'u8': torch.tensor([0, 255], dtype=torch.uint8),
               'b': torch.tensor([True, False, True]),
               'empty': torch.zeros(0, 3)},
              os.path.join(OUT, 'python.safetensors'), metadata={'format': 'pt'})
    # A checkpoint dict with a nested state dict and non-tensor values.
    torch.save({'epoch': 3, 'model': collections.OrderedDict(w=torch.ones(2, 2), b=torch.zeros(2)),
                'note': 'hello'}, os.path.join(OUT, 'checkpoint.pth'))

    class Evil:
        def __reduce__(self):
            return (os.system, ('touch /tmp/fcn-torch-pwned',))

    torch.save({'weight': torch.ones(1), 'payload': Evil()}, os.path.join(OUT, 'evil.pth'))
    torch.save({'weight': torch.ones(1), 'payload': Evil()}, os.path.join(OUT, 'evil-legacy.pth'),
               _use_new_zipfile_serialization=False)


def distributed_sampler_fixture():
    # torch.utils.data.DistributedSampler's indices (no shuffle, padded: drop_last=False) for
    # a few dataset sizes and world sizes: the rule that shards every epoch across the ranks.
    from torch.utils.data import DistributedSampler
    out = {}
    for n in (1, 5, 10, 11, 17):
        for w in (1, 2, 3, 4):
            for r in range(w):
                s = DistributedSampler(range(n), num_replicas=w, rank=r, shuffle=False, drop_last=False)
                out[f'n{n}_w{w}_r{r}'] = torch.tensor(list(iter(s)), dtype=torch.int64)
    save_file(out, os.path.join(OUT, 'distributed-sampler.safetensors'))


def autocast_fixture():
    """torch.autocast('cpu', dtype=torch.bfloat16) around the forward: ResNet-18's eval logits
    (from resnet18-strided.pth and resnet18-forward's input) and the losses of fcn-sgd's three
    SGD steps, the loss taken in float32 outside autocast as fcn-torch does."""
    sd = torch.load(os.path.join(OUT, 'resnet18-strided.pth'))
    model = ResNet18()
    model.load_state_dict(sd)
    model.eval()
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(11))
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        logits = model(x).float()
    with torch.no_grad():
        full = model(x)
    f = load_file(os.path.join(OUT, 'fcn-sgd.safetensors'))
    net = nn.Sequential(*list(model.children())[:-2])
    net.add_module('final_conv', nn.Conv2d(512, 21, kernel_size=1))
    net.add_module('transpose_conv', nn.ConvTranspose2d(21, 21, kernel_size=64, padding=16, stride=32))
    with torch.no_grad():
        net.final_conv.weight.copy_(f['final_conv.weight'])
        net.final_conv.bias.copy_(f['final_conv.bias'])
        net.transpose_conv.weight.copy_(bilinear_kernel(21, 21, 64))
        net.transpose_conv.bias.zero_()
    trainer = torch.optim.SGD(net.parameters(), lr=0.001, weight_decay=1e-3)
    net.train()
    losses = []
    for _ in range(3):
        trainer.zero_grad()
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = net(f['X'])
        l = F.cross_entropy(out.float(), f['Y'], reduction='none', ignore_index=255).mean(1).mean(1)
        l.sum().backward()
        trainer.step()
        losses.append(l.sum().item())
    # 50 more steps on, in bfloat16 and (from the same weights) in float32: how far PyTorch's
    # own bfloat16 training drifts from float32's.
    start = copy.deepcopy(net.state_dict())
    long = {}
    for name, enabled in (('losses50', True), ('losses50.float32', False)):
        net.load_state_dict(start)
        trainer = torch.optim.SGD(net.parameters(), lr=0.001, weight_decay=1e-3)
        values = []
        for _ in range(50):
            trainer.zero_grad()
            with torch.autocast('cpu', dtype=torch.bfloat16, enabled=enabled):
                out = net(f['X'])
            l = F.cross_entropy(out.float(), f['Y'], reduction='none', ignore_index=255).mean(1).mean(1)
            l.sum().backward()
            trainer.step()
            values.append(l.sum().item())
        long[name] = torch.tensor(values, dtype=torch.float64)
    save_file({'input': x, 'logits': logits, 'logits.float32': full,
               'losses': torch.tensor(losses, dtype=torch.float64), **long},
              os.path.join(OUT, 'autocast.safetensors'))


def main():
    assert torch.__version__.startswith('2.13.0'), torch.__version__
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    _, sd = resnet_fixtures()
    fcn_sgd_fixture(sd)
    fcn_skip_fixture(sd)
    conv_fixtures()
    init_fixtures()
    io_fixtures()
    distributed_sampler_fixture()
    autocast_fixture()
    for f in sorted(os.listdir(OUT)):
        print(f'{os.path.getsize(os.path.join(OUT, f)):>9}  {f}', file=sys.stderr)


if __name__ == '__main__':
    main()
