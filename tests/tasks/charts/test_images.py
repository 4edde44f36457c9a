"""The image classifier: digits at 0.97 or better, a round trip, one class refused."""

from __future__ import annotations

import numpy as np
import pytest

from deepfin.data.image_files import LabelledImages, read_images
from deepfin.errors import DataError
from deepfin.runs.load import load_run
from deepfin.tasks.charts.image_files import split_images
from deepfin.tasks.charts.images import ImageClassifier
from deepfin.training import TrainingConfig


def test_digits_reach_the_accuracy_asked_and_beat_the_pixel_baseline(tmp_path) -> None:
    train, val, test = split_images(
        read_images("digits"), val_fraction=0.1, test_fraction=0.2, seed=0
    )
    assert val is not None and len(test) == 360
    model = ImageClassifier(
        shift=1, training=TrainingConfig(batch_size=64, epochs=40, patience=8, progress=False)
    ).fit(train, val)
    rows = model.evaluate(test)["models"]
    assert rows["image_cnn"]["accuracy"] >= 0.97
    assert rows["image_cnn"]["accuracy"] > rows["pixel_logistic"]["accuracy"] > 0.9
    assert rows["majority"]["accuracy"] < 0.2
    model.save(tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    assert isinstance(loaded, ImageClassifier)
    np.testing.assert_allclose(loaded.predict_proba(test), model.predict_proba(test))
    assert loaded.evaluate(test)["models"] == rows


def test_one_class_tiny_classes_and_other_shapes_are_refused() -> None:
    images = np.zeros((6, 1, 8, 8), dtype=np.uint8)
    with pytest.raises(DataError, match="at least two classes"):
        ImageClassifier().fit(LabelledImages(images, np.array(["a"] * 6)))
    with pytest.raises(DataError, match="fewer than 3 images"):
        split_images(
            LabelledImages(images, np.array(["a"] * 5 + ["b"])),
            val_fraction=0.1,
            test_fraction=0.2,
            seed=0,
        )
    rng = np.random.default_rng(0)
    fitted = ImageClassifier(training=TrainingConfig(epochs=1, progress=False)).fit(
        LabelledImages(rng.integers(0, 255, (20, 1, 8, 8), dtype=np.uint8), np.arange(20) % 2 == 0)
    )
    with pytest.raises(DataError, match=r"these images are 1x16x16.*--resize"):
        fitted.predict_proba(
            LabelledImages(np.zeros((2, 1, 16, 16), np.uint8), np.array(["x"] * 2))
        )
