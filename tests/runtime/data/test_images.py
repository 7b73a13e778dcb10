"""A folder of images as an image model's input: layout, resize, colour, preprocessing, batching, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.specs import TensorSpec
from onnxmend.runtime.data import read_inputs


def _images(folder: Path, count: int, size=(6, 4), gray: bool = False, seed: int = 0) -> list[np.ndarray]:
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = []
    for i in range(count):
        data = rng.integers(0, 256, (size[1], size[0]) if gray else (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(data).save(folder / f"img{i}.png")
        pixels.append(data)
    return pixels


def test_nchw_unit_scaling_at_the_models_size_keeps_the_pixels(tmp_path: Path) -> None:
    pixels = _images(tmp_path / "imgs", 2)
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    loaded = read_inputs(tmp_path / "imgs").fit([TensorSpec("x", (1, 3, 4, 6))])
    assert len(loaded.samples) == 2
    x = loaded.samples[1]["x"]
    assert x.shape == (1, 3, 4, 6) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], pixels[1].transpose(2, 0, 1) / 255.0, rtol=1e-6)
    assert "2 images in 2 batches of 1, resized to 4x6, RGB, scaled to [0, 1], NCHW" in loaded.used().summary


def test_nhwc_imagenet_and_a_dynamic_batch_takes_up_to_eight(tmp_path: Path) -> None:
    pixels = _images(tmp_path / "imgs", 10, size=(5, 5))
    loaded = read_inputs(tmp_path / "imgs", "imagenet").fit([TensorSpec("x", ("N", 5, 5, 3), layout="NHWC")])
    assert [s["x"].shape[0] for s in loaded.samples] == [8, 2]
    expected = (pixels[9] / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(loaded.samples[1]["x"][1], expected, rtol=1e-5, atol=1e-6)


def test_images_are_resized_and_a_fixed_batch_leaves_the_rest_out(tmp_path: Path) -> None:
    _images(tmp_path / "imgs", 5, size=(20, 10))
    loaded = read_inputs(tmp_path / "imgs", "raw").fit([TensorSpec("x", (2, 3, 8, 8))])
    assert len(loaded.samples) == 2 and loaded.samples[0]["x"].shape == (2, 3, 8, 8)
    assert loaded.samples[0]["x"].max() > 1.0  # raw 0..255
    assert "1 image left out (the model's batch is fixed at 2)" in loaded.used().summary


def test_a_grayscale_model_takes_grayscale_images_and_uint8_gets_raw_pixels(tmp_path: Path) -> None:
    pixels = _images(tmp_path / "imgs", 1, gray=True)
    loaded = read_inputs(tmp_path / "imgs").fit([TensorSpec("x", (1, 1, 4, 6), "uint8")])
    np.testing.assert_array_equal(loaded.samples[0]["x"][0, 0], pixels[0])


BAD = {
    "colour into one channel": ({}, [TensorSpec("x", (1, 1, 4, 6))], None,
                                r"img0\.png is a colour image, but input x takes 1 channel"),
    "two inputs": ({}, [TensorSpec("a", (1, 3, 4, 4)), TensorSpec("b", (1, 3, 4, 4))], None,
                   r"feeds a model with one image input, and this one takes 2 \(a, b\)"),
    "not an image input": ({}, [TensorSpec("ids", (1, 16), "int64")], None, r"Input ids \(1x16, int64\) is not an image input"),
    "four channels": ({}, [TensorSpec("x", (1, 4, 8, 8), layout="NCHW")], None, r"takes 4 channels"),
    "unknown channel axis": ({}, [TensorSpec("x", (1, 8, 8, 8))], None, r"Cannot tell the channel axis"),
    "imagenet on integers": ({}, [TensorSpec("x", (1, 3, 4, 6), "uint8")], "imagenet", r"only --image-preprocess raw"),
    "fewer than a fixed batch": ({}, [TensorSpec("x", (4, 3, 4, 6))], None, r"holds 2 image\(s\), but the model's batch is fixed at 4"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_what_does_not_fit_is_one_sentence(tmp_path: Path, case: str) -> None:
    _, specs, preprocess, sentence = BAD[case]
    _images(tmp_path / "imgs", 2)
    with pytest.raises(OnnxmendError, match=sentence):
        read_inputs(tmp_path / "imgs", preprocess).fit(specs)


def test_an_empty_folder_and_a_broken_image_are_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("no images here")
    with pytest.raises(OnnxmendError, match=r"empty holds no image files \(\.png, \.jpg"):
        read_inputs(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(OnnxmendError, match=r"a\.jpg is not a readable image"):
        read_inputs(tmp_path / "broken").fit([TensorSpec("x", (1, 3, 4, 4))])


def test_image_preprocess_on_a_file_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros(2))
    with pytest.raises(OnnxmendError, match=r"--image-preprocess applies to a folder of images"):
        read_inputs(tmp_path / "x.npy", "unit")
