import numpy as np
import pytest
from sklearn import metrics as sk
from statsmodels.stats.contingency_tables import mcnemar

from deepfin.errors import DataError
from deepfin.metrics.multiclass import (
    classification_metrics,
    confusion_matrix,
    expected_calibration_error,
    mcnemar_test,
    per_class_scores,
    top_k_accuracy,
)


def _predictions(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(classes, size=n)
    logits = rng.standard_normal((n, classes)) + 1.5 * np.eye(classes)[labels]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probabilities


@pytest.mark.parametrize(("classes", "seed"), [(3, 0), (77, 1)])
def test_the_scores_match_scikit_learn(classes: int, seed: int) -> None:
    labels, probabilities = _predictions(2000, classes, seed)
    names = [f"c{i}" for i in range(classes)]
    got = classification_metrics(labels, probabilities, names)
    predicted = probabilities.argmax(axis=1)
    everyone = list(range(classes))
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(labels, predicted))
    for average in ("macro", "weighted"):
        expected = sk.f1_score(labels, predicted, average=average, labels=everyone, zero_division=0)
        assert got[f"{average}_f1"] == pytest.approx(expected)
    assert got["log_loss"] == pytest.approx(sk.log_loss(labels, probabilities, labels=everyone))
    np.testing.assert_array_equal(
        got["confusion"], sk.confusion_matrix(labels, predicted, labels=everyone)
    )
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        labels, predicted, labels=everyone, zero_division=0
    )
    ours = per_class_scores(np.array(got["confusion"]))
    for key, expected in zip(
        ("precision", "recall", "f1", "support"), (precision, recall, f1, support), strict=True
    ):
        np.testing.assert_allclose(ours[key], expected)
    if classes > 3:
        assert got["top_3_accuracy"] == pytest.approx(
            sk.top_k_accuracy_score(labels, probabilities, k=3, labels=everyone)
        )
    else:
        assert "top_3_accuracy" not in got
    assert set(got["per_class"]) == set(names)


def test_calibration_error_by_hand() -> None:
    # two rows at confidence 0.9 (one right), two at 0.6 (both right): bins 13 and 9
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 1])
    expected = (2 * abs(0.5 - 0.9) + 2 * abs(1.0 - 0.6)) / 4
    assert expected_calibration_error(labels, probabilities) == pytest.approx(expected)
    assert top_k_accuracy(labels, probabilities, 1) == 0.75


@pytest.mark.parametrize(("only_a", "only_b"), [(3, 9), (10, 12), (40, 20), (0, 0)])
def test_mcnemar_matches_statsmodels(only_a: int, only_b: int) -> None:
    both, neither = 50, 7
    a = np.array([True] * both + [True] * only_a + [False] * only_b + [False] * neither)
    b = np.array([True] * both + [False] * only_a + [True] * only_b + [False] * neither)
    statistic, p_value = mcnemar_test(a, b)
    if only_a + only_b == 0:
        assert (statistic, p_value) == (0.0, 1.0)
        return
    exact = only_a + only_b < 25
    table = [[both, only_a], [only_b, neither]]
    reference = mcnemar(table, exact=exact, correction=True)
    assert statistic == pytest.approx(reference.statistic)
    assert p_value == pytest.approx(reference.pvalue)


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(DataError, match="one row of class probabilities"):
        classification_metrics([0, 1], np.ones((3, 2)) / 2, ["a", "b"])
    with pytest.raises(DataError, match=r"class numbers 0\.\.1"):
        classification_metrics([0, 2], np.ones((2, 2)) / 2, ["a", "b"])
    with pytest.raises(DataError, match="same rows"):
        mcnemar_test([True], [True, False])
    assert confusion_matrix([0, 1, 1], [1, 1, 0], 2).tolist() == [[0, 1], [1, 1]]
