"""Small datasets in the layouts people have, written by PIL, for test/data.test.ts.

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
    save_file(expected, str(root.parent / "index.expected.safetensors"))


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


def main():
    ROOT.mkdir(parents=True, exist_ok=True)
    index_dataset()
    palette_dataset()
    colour_dataset()
    binary_dataset()
    wide_dataset()
    exif_dataset()
    broken_dataset()
    print(f"datasets written to {ROOT}")


if __name__ == "__main__":
    main()
