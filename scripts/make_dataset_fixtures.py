"""Small datasets in the layouts people have, written by PIL, for test/api/data.test.ts.

Each dataset goes to test/fixtures/datasets/<name>/ with `expected.safetensors` beside it:
per image stem the class ids its mask must decode to (uint8 with 255 ignored, or int32 for
the 16-bit dataset, whose ignore value is 65535), computed here from the arrays the masks
were drawn from, never by fcn-torch. Run through scripts/make-fixtures.sh (the scratch venv).
"""

import io
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import _mask as coco_mask_c
from pycocotools import mask as coco_mask
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "datasets"
RNG = np.random.default_rng(29)


def scene(height, width, classes, ignore=None):
    """Class ids [H, W]: background 0, rectangles of other classes, a border of ignore."""
    ids = np.zeros((height, width), dtype=np.int64)
    for c in range(1, classes):
        top, left = RNG.integers(0, height - 8), RNG.integers(0, width - 8)
        h, w = RNG.integers(4, max(5, height // 2)), RNG.integers(4, max(5, width // 2))
        ids[top : top + h, left : left + w] = c
    if ignore is not None:
        ids[0, :] = ignore
    return ids


def photo(ids, classes):
    """An RGB image [H, W, 3] whose colour follows the class (so a model can learn it)."""
    rgb = np.zeros(ids.shape + (3,), dtype=np.uint8)
    for c in range(classes):
        rgb[ids == c] = [(70 * c + 40) % 256, (150 * c + 90) % 256, (40 * c + 200) % 256]
    return np.clip(rgb.astype(np.int16) + RNG.integers(-12, 12, rgb.shape), 0, 255).astype(np.uint8)


def fresh(name):
    path = ROOT / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def write_lines(path, lines, bom=False, crlf=False):
    text = ("\r\n" if crlf else "\n").join(lines) + ("\r\n" if crlf else "\n")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


def index_dataset():
    """Grey index masks (0..2, 255 ignore), classes.txt and split files with a BOM and CRLF,
    names with spaces and non-ASCII letters, a sub-folder, grey and RGBA images, one image
    smaller than the crop (64x96)."""
    root = fresh("index")
    (root / "images" / "sub").mkdir(parents=True)
    (root / "masks" / "sub").mkdir(parents=True)
    write_lines(root / "classes.txt", ["background", "circle é", "square 漢字"], bom=True, crlf=True)
    stems = ["photo 1 é", "漢字 2", "plain_3", "sub/deep 4", "grey_5", "rgba_6", "small_7", "plain_8"]
    expected = {}
    for i, stem in enumerate(stems):
        height, width = (48, 80) if stem == "small_7" else (64 + 8 * (i % 2), 96 + 16 * (i % 3))
        ids = scene(height, width, 3, ignore=255)
        rgb = photo(np.where(ids == 255, 0, ids), 3)
        if stem == "grey_5":
            Image.fromarray(rgb).convert("L").save(root / "images" / f"{stem}.jpg", quality=95)
        elif stem == "rgba_6":
            rgba = np.concatenate([rgb, np.full(ids.shape + (1,), 200, np.uint8)], axis=2)
            Image.fromarray(rgba).save(root / "images" / f"{stem}.png")
        else:
            Image.fromarray(rgb).save(root / "images" / f"{stem}.jpg", quality=95)
        Image.fromarray(ids.astype(np.uint8)).save(root / "masks" / f"{stem}.png")
        expected[stem] = ids.astype(np.uint8)
    write_lines(root / "train.txt", stems[:6], bom=True, crlf=True)
    write_lines(root / "val.txt", stems[6:], bom=True, crlf=True)
    expected["median_frequency_weights"] = median_frequency([expected[s] for s in stems[:6]], 3, 255)
    save_file(expected, str(root.parent / "index.expected.safetensors"))


def median_frequency(labels, classes, ignore):
    """Median frequency balancing (Eigen & Fergus): freq(c) = pixels of c / labelled pixels of
    the images holding c; weight(c) = median(freq) / freq(c); 0 for classes never seen."""
    pixels, image_pixels = np.zeros(classes), np.zeros(classes)
    for ids in labels:
        labelled = ids[ids != ignore]
        counts = np.bincount(labelled, minlength=classes)
        pixels += counts
        image_pixels += np.where(counts > 0, labelled.size, 0)
    freq = np.divide(pixels, image_pixels, out=np.zeros(classes), where=image_pixels > 0)
    median = np.median(freq[freq > 0])
    return np.where(freq > 0, median / np.where(freq > 0, freq, 1), 0).astype(np.float64)


def palette_dataset():
    """Palette ("P") masks whose palette is not VOC's: the indices are the classes; train/ and
    val/ folders under annotations/; classes.json as an array of names."""
    root = fresh("palette")
    (root / "classes.json").write_text(json.dumps(["bg", "cat", "dog", "bird"]))
    palette = [255, 255, 0, 0, 0, 255, 12, 34, 56, 200, 100, 50] + [0] * (256 * 3 - 12)
    expected = {}
    for split, count in (("train", 5), ("val", 2)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "annotations").mkdir(parents=True)
        for i in range(count):
            stem = f"{split}_{i}"
            ids = scene(64, 96, 4, ignore=255)
            Image.fromarray(photo(np.where(ids == 255, 0, ids), 4)).save(root / split / "images" / f"{stem}.jpg")
            mask = Image.fromarray(ids.astype(np.uint8))
            mask.putpalette(palette)  # an "L" image with a palette becomes "P", its values the indices
            mask.save(root / split / "annotations" / f"{stem}.png")
            expected[stem] = ids.astype(np.uint8)
    save_file(expected, str(root.parent / "palette.expected.safetensors"))


COLOURS = [[0, 0, 0], [255, 0, 0], [0, 255, 0], [30, 60, 200]]
VOID = [224, 224, 192]


def colour_dataset():
    """RGB colour masks mapped through classes.json's colours (VOC's boundary colour
    ignored); no split of its own (a seeded random split)."""
    root = fresh("colour")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    names = ["road", "car", "tree", "sky"]
    (root / "classes.json").write_text(json.dumps([{"name": n, "color": c} for n, c in zip(names, COLOURS)]))
    expected = {}
    for i in range(10):
        stem = f"street_{i:02d}"
        ids = scene(64, 96, 4, ignore=255)
        rgb = np.zeros(ids.shape + (3,), np.uint8)
        for c, colour in enumerate(COLOURS):
            rgb[ids == c] = colour
        rgb[ids == 255] = VOID
        Image.fromarray(photo(np.where(ids == 255, 0, ids), 4)).save(root / "images" / f"{stem}.png")
        Image.fromarray(rgb).save(root / "masks" / f"{stem}.png")
        expected[stem] = ids.astype(np.uint8)
    save_file(expected, str(root.parent / "colour.expected.safetensors"))


def binary_dataset():
    """Binary masks, 0/255 grey and one 1-bit ("1") PNG, no class file: background and
    foreground; masks under labels/; .jpeg and .webp images."""
    root = fresh("binary")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    expected = {}
    for i in range(6):
        stem = f"leaf_{i}"
        ids = scene(64, 96, 2)
        Image.fromarray(photo(ids, 2)).save(root / "images" / f"{stem}.{'webp' if i == 1 else 'jpeg'}", quality=95)
        grey = Image.fromarray((ids * 255).astype(np.uint8))
        (grey.convert("1") if i == 0 else grey).save(root / "labels" / f"{stem}.png")
        expected[stem] = ids.astype(np.uint8)
    save_file(expected, str(root.parent / "binary.expected.safetensors"))


def wide_dataset():
    """16-bit grey index masks with 300 classes (no class file: the largest value, 299,
    names them) and 65535 ignored."""
    root = fresh("wide")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    expected = {}
    for i in range(4):
        stem = f"many_{i}"
        ids = np.repeat(np.repeat(RNG.integers(0, 300, (8, 12)), 8, axis=0), 8, axis=1).astype(np.int64)
        ids[:, :3] = 65535
        ids[5, 7] = 299
        Image.fromarray(photo(ids % 7, 7)).save(root / "images" / f"{stem}.png")
        Image.fromarray(ids.astype(np.uint16)).save(root / "masks" / f"{stem}.png")
        expected[stem] = ids.astype(np.int32)
    save_file(expected, str(root.parent / "wide.expected.safetensors"))


def exif_dataset():
    """Phone photos: JPEGs stored sideways with an EXIF orientation (6: turn 90 degrees
    clockwise to show; 3: turn 180), their masks drawn upright, as a labelling tool shows
    them. The upright pixels are kept to compare with."""
    root = fresh("exif")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    expected = {}
    for i, orientation in enumerate((6, 3, 1)):
        stem = f"phone_{i}"
        ids = scene(64, 96, 3)
        upright = photo(ids, 3)
        stored = {6: np.rot90(upright, 1), 3: np.rot90(upright, 2), 1: upright}[orientation]
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(np.ascontiguousarray(stored)).save(root / "images" / f"{stem}.jpg", quality=95, exif=exif)
        Image.fromarray(ids.astype(np.uint8)).save(root / "masks" / f"{stem}.png")
        expected[stem] = ids.astype(np.uint8)
        expected[f"image:{stem}"] = upright
    save_file(expected, str(root.parent / "exif.expected.safetensors"))


def broken_dataset():
    """One dataset with each kind of problem `fcn data check` must name: an image without a
    mask, a mask without an image, sizes that differ, a value past the class file's classes,
    an unreadable image and an unreadable mask."""
    root = fresh("broken")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    write_lines(root / "classes.txt", ["background", "thing"])

    def pair(stem, ids, size=None):
        Image.fromarray(photo(np.minimum(ids, 1), 2)).resize(size or (ids.shape[1], ids.shape[0])).save(
            root / "images" / f"{stem}.jpg"
        )
        Image.fromarray(ids.astype(np.uint8)).save(root / "masks" / f"{stem}.png")

    for i in range(4):
        pair(f"good_{i}", scene(64, 96, 2))
    pair("wrong_size", scene(64, 96, 2), size=(100, 60))
    bad = scene(64, 96, 2)
    bad[10, 20] = 5
    pair("past_classes", bad)
    Image.fromarray(photo(scene(64, 96, 2), 2)).save(root / "images" / "no_mask.jpg")
    Image.fromarray(scene(64, 96, 2).astype(np.uint8)).save(root / "masks" / "no_image.png")
    pair("truncated_mask", scene(64, 96, 2))
    data = (root / "masks" / "truncated_mask.png").read_bytes()
    (root / "masks" / "truncated_mask.png").write_bytes(data[: len(data) // 2])
    (root / "images" / "not_an_image.jpg").write_bytes(b"this is no JPEG")
    Image.fromarray(scene(64, 96, 2).astype(np.uint8)).save(root / "masks" / "not_an_image.png")


# Cityscapes' label ids of its 19 training classes (cityscapesScripts' labels.py), train id = index.
CITYSCAPES_IDS = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]


def cityscapes_dataset():
    """Cityscapes' tree: leftImg8bit/<split>/<city>/*_leftImg8bit.png and gtFine's
    *_gtFine_labelIds.png, label ids 0..33 (the 19 training classes among them)."""
    root = fresh("cityscapes")
    expected = {}
    for split, cities in (("train", ("aachen", "bochum")), ("val", ("frankfurt",))):
        for city in cities:
            (root / "leftImg8bit" / split / city).mkdir(parents=True)
            (root / "gtFine" / split / city).mkdir(parents=True)
            for i in range(2):
                base = f"{city}_{i:06d}_000019"
                label_ids = np.repeat(np.repeat(RNG.integers(0, 34, (8, 12)), 8, axis=0), 8, axis=1)
                train_ids = np.full(label_ids.shape, 255, np.uint8)
                for train_id, label_id in enumerate(CITYSCAPES_IDS):
                    train_ids[label_ids == label_id] = train_id
                Image.fromarray(photo(label_ids % 5, 5)).save(root / "leftImg8bit" / split / city / f"{base}_leftImg8bit.png")
                Image.fromarray(label_ids.astype(np.uint8)).save(root / "gtFine" / split / city / f"{base}_gtFine_labelIds.png")
                expected[f"{city}/{base}"] = train_ids
    save_file(expected, str(root.parent / "cityscapes.expected.safetensors"))


def ade20k_dataset():
    """ADE20K's SceneParsing tree: ADEChallengeData2016/images/{training,validation}/*.jpg and
    annotations/*.png, class k stored as k + 1, 0 for "other" (ignored)."""
    root = fresh("ade20k") / "ADEChallengeData2016"
    expected = {}
    for split, prefix, count in (("training", "ADE_train", 3), ("validation", "ADE_val", 2)):
        (root / "images" / split).mkdir(parents=True)
        (root / "annotations" / split).mkdir(parents=True)
        for i in range(1, count + 1):
            stem = f"{prefix}_{i:08d}"
            stored = np.repeat(np.repeat(RNG.integers(0, 151, (8, 12)), 8, axis=0), 8, axis=1).astype(np.uint8)
            Image.fromarray(photo(stored % 5, 5)).save(root / "images" / split / f"{stem}.jpg", quality=95)
            Image.fromarray(stored).save(root / "annotations" / split / f"{stem}.png")
            expected[stem] = np.where(stored == 0, 255, stored.astype(np.int64) - 1).astype(np.uint8)
    save_file(expected, str(root.parent.parent / "ade20k.expected.safetensors"))


# torchvision's references/segmentation/coco_utils.py: VOC's categories in COCO's ids.
CAT_LIST = [0, 5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72]


def torchvision_target(annotations, h, w):
    """The semantic mask torchvision's references make of an image's annotations
    (FilterAndRemapCocoCategories, then ConvertCocoPolysToMask), with pycocotools; a
    compressed RLE, which frPyObjects does not take, is decoded by pycocotools directly."""
    anno = [dict(obj, category_id=CAT_LIST.index(obj["category_id"])) for obj in annotations if obj["category_id"] in CAT_LIST]
    if not anno:
        return np.zeros((h, w), np.uint8)
    masks = []
    for obj in anno:
        seg = obj["segmentation"]
        if isinstance(seg, dict) and isinstance(seg["counts"], str):
            mask = coco_mask.decode({"size": seg["size"], "counts": seg["counts"].encode()})
        elif isinstance(seg, list) and len(seg[0]) == 4:
            # frPyObjects takes a first polygon of 4 numbers for boxes, and fails on a list of
            # them; drawn as the 2-point polygon it is, by pycocotools' own polygon code.
            mask = coco_mask.decode(coco_mask_c.frPoly(seg, h, w))
        else:
            mask = coco_mask.decode(coco_mask.frPyObjects(seg, h, w))
        if mask.ndim < 3:
            mask = mask[..., None]
        masks.append(mask.any(axis=2))
    masks = np.stack(masks).astype(np.uint8)
    cats = np.array([obj["category_id"] for obj in anno], np.uint8)
    target = (masks * cats[:, None, None]).max(axis=0)
    target[masks.sum(0) > 1] = 255
    return np.ascontiguousarray(target, dtype=np.uint8)  # decode gives column-major arrays; safetensors writes memory order


def coco_dataset():
    """COCO 2017's tree: annotations/instances_{train,val}2017.json, {train,val}2017/*.jpg.
    Polygons (one of several parts, one of only 2 points), uncompressed RLE (a crowd),
    compressed RLE, overlapping instances, a category outside VOC's, and train images that
    torchvision's filter drops (no kept annotation; area of 1000 or less)."""
    root = fresh("coco")
    (root / "annotations").mkdir()
    expected = {}
    next_ann = 1
    for split, image_ids in (("train", (9, 25, 30, 42)), ("val", (139, 285))):
        (root / f"{split}2017").mkdir()
        images, annotations = [], []
        for n, image_id in enumerate(image_ids):
            h, w = 60 + 4 * n, 90 - 2 * n
            name = f"{image_id:012d}.jpg"
            images.append({"id": image_id, "file_name": name, "height": h, "width": w})
            anns = []

            def add(category, segmentation, area, iscrowd=0):
                nonlocal next_ann
                anns.append({"id": next_ann, "image_id": image_id, "category_id": category, "segmentation": segmentation,
                             "area": float(area), "iscrowd": iscrowd, "bbox": [0, 0, 1, 1]})
                next_ann += 1

            if image_id == 30:  # only a category outside VOC's (10: traffic light)
                add(10, [[5.0, 5.0, 40.0, 5.0, 40.0, 30.0, 5.0, 30.0]], 875)
            elif image_id == 42:  # a small person: area under 1000
                add(1, [[10.2, 10.7, 30.9, 12.1, 25.3, 35.6]], 240)
            else:
                # a person (1 -> 15), two parts, fractional corners
                add(1, [[3.3, 4.1, 40.7, 6.2, 35.5, 40.9, 8.4, 33.3], [50.5, 5.5, 70.25, 5.5, 60.0, 25.75]], 1500)
                # a dog (18 -> 12) overlapping the person
                add(18, [[20.6, 20.2, 60.1, 22.9, 58.3, 55.5, 18.8, 50.0, 25.0, 35.5]], 1200)
                # a 2-point polygon (4 numbers), a thin line (62 chair -> 9)
                add(62, [[65.0, 30.0, 80.5, 50.0]], 250)
                # a crowd of cars (3 -> 7) as uncompressed RLE, and a compressed RLE (a cat, 17 -> 8)
                crowd = np.zeros((h, w), np.uint8, order="F")
                crowd[h - 12 : h - 2, 2:30] = 1
                runs = []
                flat = crowd.flatten(order="F")
                value, run = 0, 0
                for pixel in flat:
                    if pixel != value:
                        runs.append(run)
                        value, run = pixel, 0
                    run += 1
                runs.append(run)
                add(3, {"size": [h, w], "counts": runs}, int(crowd.sum()), iscrowd=1)
                cat = np.zeros((h, w), np.uint8, order="F")
                cat[5:15, w - 15 : w - 3] = 1
                add(17, {"size": [h, w], "counts": coco_mask.encode(cat)["counts"].decode()}, int(cat.sum()))
            annotations.extend(anns)
            Image.fromarray(photo(torchvision_target(anns, h, w) % 5, 5)).save(root / f"{split}2017" / name, quality=95)
            expected[name[:-4]] = torchvision_target(anns, h, w)
        (root / "annotations" / f"instances_{split}2017.json").write_text(
            json.dumps({"images": images, "annotations": annotations, "categories": []})
        )
    save_file(expected, str(root.parent / "coco.expected.safetensors"))


def main():
    ROOT.mkdir(parents=True, exist_ok=True)
    index_dataset()
    palette_dataset()
    colour_dataset()
    binary_dataset()
    wide_dataset()
    exif_dataset()
    broken_dataset()
    cityscapes_dataset()
    ade20k_dataset()
    coco_dataset()
    print(f"datasets written to {ROOT}")


if __name__ == "__main__":
    main()
