"""A folder of images as an image model's input, with one stated preprocessing.

For a model with one 4-D input whose channel axis (1 for NCHW, 3 for NHWC: the exporter's layout, else
the axis whose size is 1 or 3) takes 1 or 3 channels:

1. every file of the folder with an image suffix (:data:`IMAGE_SUFFIXES`), in name order, is read with
   Pillow (8-bit; subfolders and other files are left out);
2. converted to RGB (alpha dropped; a grayscale image repeated to 3 channels); a 1-channel model takes
   only images whose R, G and B are equal (onnxmend does not choose weights to make colour gray);
3. resized to the model's H x W, bilinear, aspect ratio not kept, no crop (H or W dynamic: the first
   image's size);
4. scaled by ``--image-preprocess``: ``unit`` x/255 in [0, 1] (the default for float inputs),
   ``symmetric`` x/127.5 - 1 in [-1, 1], ``imagenet`` (x/255 - mean)/std with ImageNet's RGB mean
   (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225), ``raw`` 0..255 (the default, and the only
   choice, for integer inputs);
5. laid out as the model's input and batched: a fixed batch B takes B images per sample (images that do
   not fill the last batch are left out, and said so); a dynamic batch takes up to :data:`IMAGE_BATCH`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from onnxmend.core.errors import OnnxmendError, first_line
from onnxmend.core.specs import TensorSpec
from onnxmend.runtime.inputs import MAX_INPUT_BYTES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
PREPROCESS = ("unit", "symmetric", "imagenet", "raw")
IMAGE_BATCH = 8
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
GIVE_ARRAYS = "give the inputs as an .npz, .npy or JSON file instead"


def list_images(folder: Path) -> list[Path]:
    """The image files of ``folder`` in name order; one sentence when there are none."""
    images = sorted(p for p in folder.iterdir()
                    if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise OnnxmendError(f"{folder} holds no image files ({', '.join(IMAGE_SUFFIXES[:4])}, ...); --load-inputs "
                            "takes a folder of images, an .npz, an .npy or a JSON file.")
    return images


@dataclass(frozen=True)
class ImageInput:
    """How a model takes images: its one input, channel layout, channels, spatial size and batch."""

    spec: TensorSpec
    layout: str  # "NCHW" or "NHWC"
    channels: int
    height: int | None
    width: int | None
    batch: int | None  # None: dynamic

    @classmethod
    def of(cls, specs: Sequence[TensorSpec]) -> ImageInput:
        if len(specs) != 1:
            raise OnnxmendError(f"A folder of images feeds a model with one image input, and this one takes "
                                f"{len(specs)} ({', '.join(s.name for s in specs)}); {GIVE_ARRAYS}.")
        spec = specs[0]
        shown = "x".join(str(d) if isinstance(d, int) else "?" for d in spec.shape)
        if len(spec.shape) != 4 or np.dtype(spec.dtype).kind not in "fiu":
            raise OnnxmendError(f"Input {spec.name} ({shown}, {spec.dtype}) is not an image input (N, C, H, W or "
                                f"N, H, W, C numbers); {GIVE_ARRAYS}.")
        layout = _layout(spec, shown)
        n, c, h, w = spec.shape if layout == "NCHW" else (spec.shape[0], spec.shape[3], *spec.shape[1:3])
        if c not in (1, 3):
            raise OnnxmendError(f"Input {spec.name} ({shown}, {layout}) takes {c} channels; a folder of images gives "
                                f"1 (grayscale) or 3 (RGB); {GIVE_ARRAYS}.")
        dims = [d if isinstance(d, int) else None for d in (n, h, w)]
        return cls(spec, layout, int(c), dims[1], dims[2], dims[0])  # type: ignore[arg-type]


def _layout(spec: TensorSpec, shown: str) -> str:
    if spec.layout in ("NCHW", "NHWC"):
        return spec.layout
    first, last = spec.shape[1] in (1, 3), spec.shape[3] in (1, 3)
    if first or last:
        return "NCHW" if first else "NHWC"
    raise OnnxmendError(f"Cannot tell the channel axis of input {spec.name} ({shown}): neither axis 1 nor axis 3 "
                        f"is 1 or 3; {GIVE_ARRAYS}.")


def choose_preprocess(target: ImageInput, preprocess: str | None) -> str:
    dtype = np.dtype(target.spec.dtype)
    if dtype.kind in "iu":
        if preprocess not in (None, "raw"):
            raise OnnxmendError(f"Input {target.spec.name} takes {dtype} pixels, so only --image-preprocess raw "
                                f"applies (not {preprocess}).")
        if np.iinfo(dtype).max < 255 or np.iinfo(dtype).min > 0:
            raise OnnxmendError(f"Input {target.spec.name} takes {dtype}, which cannot hold pixels 0..255; {GIVE_ARRAYS}.")
        return "raw"
    if preprocess == "imagenet" and target.channels != 3:
        raise OnnxmendError(f"--image-preprocess imagenet normalises RGB, and input {target.spec.name} takes 1 channel.")
    return preprocess or "unit"


def read_images(paths: Sequence[Path], target: ImageInput, preprocess: str) -> tuple[list[dict[str, np.ndarray]], str]:
    """Samples of batched, preprocessed images for ``target``, and the sentence that says how they were made."""
    batch = target.batch or IMAGE_BATCH
    if target.batch and len(paths) < target.batch:
        raise OnnxmendError(f"The folder holds {len(paths)} image(s), but the model's batch is fixed at {target.batch}.")
    kept = list(paths[: len(paths) - len(paths) % batch]) if target.batch else list(paths)
    first = _open(kept[0])
    size = (target.height or first.height, target.width or first.width)
    per_image = size[0] * size[1] * target.channels * np.dtype(target.spec.dtype).itemsize
    if per_image * len(kept) > MAX_INPUT_BYTES:
        raise OnnxmendError(f"{len(kept)} images of {size[0]}x{size[1]} would take {per_image * len(kept) / 1e9:.0f} GB; "
                            f"--load-inputs reads up to {MAX_INPUT_BYTES / 1e9:.0f} GB.")
    pixels = [_pixels(p, target, size) for p in kept]
    samples = []
    for start in range(0, len(pixels), batch):
        stacked = _scale(np.stack(pixels[start:start + batch]), preprocess).astype(target.spec.dtype)
        if target.layout == "NCHW":
            stacked = np.ascontiguousarray(stacked.transpose(0, 3, 1, 2))
        samples.append({target.spec.name: stacked})
    return samples, _describe(len(kept), len(paths), samples, target, size, preprocess)


def _open(path: Path):  # noqa: ANN202  (a PIL image; Pillow is imported only here)
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except Exception as exc:  # UnidentifiedImageError, a truncated file, a decompression bomb
        raise OnnxmendError(f"{path} is not a readable image ({type(exc).__name__}: {first_line(exc, 120)}).") from exc


def _pixels(path: Path, target: ImageInput, size: tuple[int, int]) -> np.ndarray:
    """H x W x C float32 in 0..255."""
    from PIL import Image

    image = _open(path)
    if (image.height, image.width) != size:
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    rgb = np.asarray(image, dtype=np.float32)
    if target.channels == 3:
        return rgb
    if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])):
        raise OnnxmendError(f"{path} is a colour image, but input {target.spec.name} takes 1 channel; convert the "
                            "images to grayscale first (onnxmend does not choose the weights of R, G and B).")
    return rgb[..., :1]


def _scale(pixels: np.ndarray, preprocess: str) -> np.ndarray:
    if preprocess == "unit":
        return pixels / 255.0
    if preprocess == "symmetric":
        return pixels / 127.5 - 1.0
    if preprocess == "imagenet":
        return (pixels / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return pixels


SCALES = {"unit": "scaled to [0, 1]", "symmetric": "scaled to [-1, 1]",
          "imagenet": "normalised with ImageNet's mean and std", "raw": "raw 0..255"}


def _describe(kept: int, found: int, samples: list, target: ImageInput, size: tuple[int, int], preprocess: str) -> str:
    colour = "RGB" if target.channels == 3 else "grayscale"
    batches = [len(next(iter(s.values()))) for s in samples]
    text = (f"{_count(kept, 'image')} in {_count(len(samples), 'batch')} of {max(batches)}"
            f"{' or fewer' if min(batches) < max(batches) else ''}, resized to {size[0]}x{size[1]}, {colour}, "
            f"{SCALES[preprocess]}, {target.layout}")
    if kept < found:
        text += f"; {_count(found - kept, 'image')} left out (the model's batch is fixed at {target.batch})"
    return text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "es" if noun.endswith("ch") else "s")
