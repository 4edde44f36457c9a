"""Reading labelled images: class folders of PNGs, .npz files, the bundled digits, bad files."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from deepfin.data.image_files import parse_size, read_images
from deepfin.errors import DataError


def image_folder(root, sizes=None, classes=("cat", "dog"), per_class=4, mode="L"):
    """A folder of class folders, each holding `per_class` small PNGs."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            height, width = (sizes or {}).get((c, i), (6, 5))
            shape = (height, width, 3) if mode == "RGB" else (height, width)
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels, mode=mode).save(root / name / f"{i}.png")
    return root


def test_a_folder_of_class_folders_is_one_uint8_array(tmp_path) -> None:
    folder = image_folder(tmp_path / "images")
    (folder / "cat" / "notes.txt").write_text("not an image")  # other files are ignored
    images = read_images(folder)
    assert images.images.shape == (8, 1, 6, 5) and images.images.dtype == np.uint8
    assert images.labels.tolist() == ["cat"] * 4 + ["dog"] * 4
    first = np.asarray(Image.open(folder / "cat" / "0.png"))
    np.testing.assert_array_equal(images.images[0, 0], first)
    colour = read_images(image_folder(tmp_path / "colour", mode="RGB"))
    assert colour.images.shape == (8, 3, 6, 5)


def test_corrupt_files_are_skipped_and_counted(tmp_path, caplog) -> None:
    folder = image_folder(tmp_path / "images")
    (folder / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with caplog.at_level(logging.WARNING):
        images = read_images(folder)
    assert len(images) == 8 and images.skipped == 1
    assert "1 image file(s) could not be read" in caplog.text


def test_images_of_different_sizes_are_resized_only_when_asked(tmp_path) -> None:
    folder = image_folder(tmp_path / "images", sizes={(1, 2): (9, 7)})
    with pytest.raises(DataError, match=r"2 sizes \(6x5, 9x7\).*--resize HxW"):
        read_images(folder)
    images = read_images(folder, resize=(8, 8))
    assert images.images.shape == (8, 1, 8, 8)
    with pytest.raises(DataError, match="HEIGHTxWIDTH"):
        parse_size("8by8")


def test_npz_files_in_the_usual_layouts(tmp_path) -> None:
    rng = np.random.default_rng(1)
    channels_last = rng.random((10, 7, 7, 3))
    np.savez(tmp_path / "a.npz", x=channels_last, y=np.arange(10) % 2)
    images = read_images(tmp_path / "a.npz")
    assert images.images.shape == (10, 3, 7, 7) and images.images.dtype == np.uint8
    np.testing.assert_array_equal(
        images.images[3, 1], np.rint(channels_last[3, :, :, 1] * 255).astype(np.uint8)
    )
    assert images.labels.tolist()[:3] == ["0", "1", "0"]
    np.savez(tmp_path / "b.npz", pictures=channels_last, y=np.arange(10))
    with pytest.raises(DataError, match="needs an image array named one of"):
        read_images(tmp_path / "b.npz")
    np.savez(tmp_path / "c.npz", images=np.full((2, 4, 4), 300.0), labels=np.array([0, 1]))
    with pytest.raises(DataError, match=r"\[0, 1\] or \[0, 255\]"):
        read_images(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", images=np.array([object()] * 2), labels=np.array([0, 1]))
    with pytest.raises(DataError, match="object arrays"):
        read_images(tmp_path / "d.npz")


def test_the_bundled_digits_and_missing_sources() -> None:
    digits = read_images("digits")
    assert digits.images.shape == (1797, 1, 8, 8) and digits.images.max() == 255
    assert sorted(set(digits.labels.tolist())) == [str(d) for d in range(10)]
    with pytest.raises(DataError, match="no images at"):
        read_images("nowhere/")


def test_an_empty_or_flat_folder_is_refused(tmp_path) -> None:
    (tmp_path / "flat").mkdir()
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / "flat" / "a.png")
    with pytest.raises(DataError, match="no class folders"):
        read_images(tmp_path / "flat")
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="no readable images"):
        read_images(tmp_path / "empty")
