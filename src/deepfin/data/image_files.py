"""Labelled images from a folder of class folders (PNG, JPEG, ...), an .npz file, or the
digits bundled with scikit-learn; held as one uint8 array (N, C, H, W)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepfin.errors import DataError

log = logging.getLogger(__name__)
SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
DIGITS = "digits"  # scikit-learn's 8x8 handwritten digits, 1,797 images of 10 classes
NPZ_IMAGES, NPZ_LABELS = ("images", "x", "X"), ("labels", "y", "Y")


@dataclass
class LabelledImages:
    """Images (N, C, H, W) uint8 with a label each; how many files were skipped as unreadable."""

    images: np.ndarray
    labels: np.ndarray  # (N,) str
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.images)

    def take(self, chosen: np.ndarray) -> LabelledImages:
        """The images at positions or a boolean mask."""
        return LabelledImages(self.images[chosen], self.labels[chosen], self.skipped)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """`HxW` (e.g. 32x32) as (height, width), or None."""
    if not text:
        return None
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(part.isdigit() and int(part) > 0 for part in parts):
        raise DataError(f"resize must be HEIGHTxWIDTH such as 32x32; got {text!r}")
    return int(parts[0]), int(parts[1])


def read_images(source: str | Path, *, resize: tuple[int, int] | None = None) -> LabelledImages:
    """The labelled images of `source`: "digits", an .npz (images and labels arrays), or a
    folder holding one folder of images per class. Images of different sizes are refused
    unless `resize` (height, width) is given."""
    if str(source) == DIGITS:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = np.rint(digits.images * (255 / 16)).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
        return _resized(LabelledImages(images, digits.target.astype(str)), resize)
    path = Path(source)
    if not path.exists():
        raise DataError(f"no images at {path}: give a folder of class folders, an .npz or digits")
    if path.is_dir():
        return _read_folder(path, resize)
    if path.suffix.lower() == ".npz":
        return _resized(_read_npz(path), resize)
    raise DataError(
        f"{path} is neither a folder of class folders nor an .npz file of images and labels"
    )


def _read_npz(path: Path) -> LabelledImages:
    try:
        archive = np.load(path, allow_pickle=False)  # never unpickle a data file
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is not a readable .npz file ({error})") from None
    with archive:
        names = set(archive.files)
        image_key = next((key for key in NPZ_IMAGES if key in names), None)
        label_key = next((key for key in NPZ_LABELS if key in names), None)
        if image_key is None or label_key is None:
            raise DataError(
                f"{path} holds {sorted(names)}; it needs an image array named one of "
                f"{list(NPZ_IMAGES)} and a label array named one of {list(NPZ_LABELS)}"
            )
        try:
            images, labels = archive[image_key], archive[label_key]
        except ValueError:
            raise DataError(f"{path} holds object arrays; store plain numbers and text") from None
    if images.ndim == 3:
        images = images[:, None]  # (N, H, W) -> (N, 1, H, W)
    elif images.ndim == 4 and images.shape[-1] in (1, 3, 4) and images.shape[1] not in (1, 3, 4):
        images = images.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{path}: images {images.shape} and labels {labels.shape} must be (N, H, W) or "
            "(N, C, H, W) and (N,)"
        )
    if not np.issubdtype(images.dtype, np.number) or not np.isfinite(images).all():
        raise DataError(f"{path}: the images must be finite numbers")
    if images.dtype != np.uint8:
        top = float(images.max()) if images.size else 0.0
        scale = 255.0 if top <= 1.0 else 1.0  # floats in [0, 1], or 0..255
        if images.min() < 0 or top * scale > 255:
            raise DataError(f"{path}: pixel values must lie in [0, 1] or [0, 255]")
        images = np.rint(images * scale).astype(np.uint8)
    return LabelledImages(np.ascontiguousarray(images), labels.astype(str))


def _read_folder(path: Path, resize: tuple[int, int] | None) -> LabelledImages:
    from PIL import Image, UnidentifiedImageError

    classes = sorted(child for child in path.iterdir() if child.is_dir())
    if not classes:
        raise DataError(f"{path} has no class folders: put each class's images in a folder")
    pictures, labels, skipped, colour = [], [], 0, False
    for folder in classes:
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() not in SUFFIXES:
                continue
            try:
                with Image.open(file) as image:
                    image.load()
                    colour |= image.mode not in ("1", "L", "LA", "I", "I;16", "F")
                    pictures.append(image.copy())
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
                skipped += 1
                continue
            labels.append(folder.name)
    if skipped:
        log.warning("%d image file(s) could not be read and were skipped", skipped)
    if not pictures:
        raise DataError(f"no readable images under {path} (looked for {', '.join(SUFFIXES)})")
    mode = "RGB" if colour else "L"
    if resize is not None:
        pictures = [picture.resize((resize[1], resize[0])) for picture in pictures]
    sizes = {picture.size for picture in pictures}
    if len(sizes) > 1:
        shown = ", ".join(f"{h}x{w}" for w, h in sorted(sizes)[:4])
        raise DataError(
            f"the images have {len(sizes)} sizes ({shown}); resize them all with --resize HxW"
        )
    arrays = [np.asarray(picture.convert(mode), dtype=np.uint8) for picture in pictures]
    stacked = np.stack(arrays)  # (N, H, W) or (N, H, W, 3)
    images = stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)
    return LabelledImages(np.ascontiguousarray(images), np.asarray(labels), skipped)


def _resized(images: LabelledImages, resize: tuple[int, int] | None) -> LabelledImages:
    if resize is None or images.images.shape[2:] == resize:
        return images
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(images.images).float()
    scaled = F.interpolate(tensor, size=resize, mode="bilinear", align_corners=False)
    resized = scaled.round().clamp(0, 255).to(torch.uint8).numpy()
    return LabelledImages(resized, images.labels, images.skipped)
