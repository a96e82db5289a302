"""The chapter's PyTorch data pipeline: PIL decode, voc_label_indices through d2l's 256^3
colormap2label table, a random crop, normalisation and batching. Prints one line: images
per second. THREADS=1 gives torch one thread; without it, torch's default.
Usage: bench_data.py VOC2012_DIR CROP_H CROP_W BATCH [THREADS]"""
import os
import random
import sys
import time

import numpy as np
import torch
from PIL import Image

VOC_COLORMAP = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128], [0, 128, 128],
                [128, 128, 128], [64, 0, 0], [192, 0, 0], [64, 128, 0], [192, 128, 0], [64, 0, 128],
                [192, 0, 128], [64, 128, 128], [192, 128, 128], [0, 64, 0], [128, 64, 0], [0, 192, 0],
                [128, 192, 0], [0, 64, 128]]


def voc_colormap2label():
    colormap2label = torch.zeros(256 ** 3, dtype=torch.long)
    for i, colormap in enumerate(VOC_COLORMAP):
        colormap2label[(colormap[0] * 256 + colormap[1]) * 256 + colormap[2]] = i
    return colormap2label


def voc_label_indices(colormap, colormap2label):
    colormap = colormap.permute(1, 2, 0).numpy().astype('int32')
    idx = ((colormap[:, :, 0] * 256 + colormap[:, :, 1]) * 256 + colormap[:, :, 2])
    return colormap2label[idx]


def read(path):
    return torch.from_numpy(np.array(Image.open(path).convert('RGB'))).permute(2, 0, 1)


def main():
    root, crop_h, crop_w, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if len(sys.argv) > 5:
        torch.set_num_threads(int(sys.argv[5]))
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(3, 1, 1)
    names = open(os.path.join(root, 'ImageSets', 'Segmentation', 'train.txt')).read().split()
    start = time.perf_counter()
    table = voc_colormap2label()
    features, labels = [], []
    for name in names:
        feature = read(os.path.join(root, 'JPEGImages', name + '.jpg'))
        label = voc_label_indices(read(os.path.join(root, 'SegmentationClass', name + '.png')), table)
        if feature.shape[1] >= crop_h and feature.shape[2] >= crop_w:
            features.append(feature)
            labels.append(label)
    order = list(range(len(features)))
    random.Random(0).shuffle(order)
    for b in range(0, len(order), batch):
        xs, ys = [], []
        for i in order[b:b + batch]:
            f, l = features[i], labels[i]
            top = random.randint(0, f.shape[1] - crop_h)
            left = random.randint(0, f.shape[2] - crop_w)
            xs.append((f[:, top:top + crop_h, left:left + crop_w].float() / 255 - mean) / std)
            ys.append(l[top:top + crop_h, left:left + crop_w])
        X, Y = torch.stack(xs), torch.stack(ys)
    elapsed = time.perf_counter() - start
    print(f'{len(names) / elapsed:.2f}')


if __name__ == '__main__':
    main()
