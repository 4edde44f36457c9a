from pathlib import Path

import numpy as np
import polars as pl
import pytest

from deepfin.errors import DataError
from deepfin.tasks.text.faq import FaqIndex, choose_threshold, read_faq
from tests.conftest import SHARED_DATA

FAQ = pl.DataFrame(
    {
        "question": [
            "My card has not arrived yet",
            "How do I reset my PIN?",
            "Why was I charged a fee for a transfer?",
            "How can I close my account?",
        ],
        "answer": ["Within 5 days.", "Settings > Card > PIN.", "Transfers abroad cost 0.5%.",
                   "Settings > Account > Close."],
    }
)  # fmt: skip
HELD_OUT = pl.DataFrame(
    {
        "message": [
            "still waiting for my new card",
            "I forgot my pin number",
            "there is a fee on my transfer, why?",
            "I want to delete my account",
            "what's the weather like in Paris",
            "can you recommend a good pizza place",
        ],
        "question": [*FAQ["question"], None, None],  # the last two: nothing in the FAQ answers
    }
)


def test_a_threshold_is_the_lowest_cut_that_keeps_the_answers_precise() -> None:
    best = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    right = np.array([True, True, False, True, False, False])
    answerable = np.array([True, True, True, True, True, False])
    # answering the top 1..6: precision 1, 1, 2/3, 3/4, 3/5, 1/2
    cut = choose_threshold(best, right, answerable=answerable, target_precision=0.75)
    assert cut.threshold == 0.6 and cut.precision == 0.75 and cut.coverage == pytest.approx(0.8)
    strict = choose_threshold(best, right, answerable=answerable, target_precision=1.0)
    assert strict.threshold == 0.8 and strict.coverage == pytest.approx(0.4)


def test_paraphrases_find_their_entry_and_off_topic_messages_get_no_confident_answer() -> None:
    index = FaqIndex(target_precision=1.0).fit(FAQ, HELD_OUT)
    assert index.calibration_ is not None and index.calibration_.precision == 1.0
    answers = index.answer(HELD_OUT["message"].to_list(), top_k=2)
    assert answers.height == 12 and answers.columns == [
        "message", "rank", "question", "answer", "similarity", "confident"
    ]  # fmt: skip
    top = answers.filter(pl.col("rank") == 1)
    assert top["question"].head(4).to_list() == FAQ["question"].to_list()
    assert top["confident"].to_list() == [True] * 4 + [False] * 2
    assert (top["similarity"] >= answers.filter(pl.col("rank") == 2)["similarity"]).all()


def test_a_faq_without_answers_or_with_repeated_questions_is_refused() -> None:
    with pytest.raises(DataError, match="the FAQ has no answer column"):
        read_faq(FAQ.select("question"))
    with pytest.raises(DataError, match=r"1 FAQ entr\(ies\) have no answer \(first: row 2\)"):
        read_faq(FAQ.with_columns(pl.Series("answer", ["a", "", "c", "d"])))
    with pytest.raises(DataError, match="appear more than once"):
        read_faq(pl.concat([FAQ, FAQ.head(1)]))
    with pytest.raises(DataError, match="not in the FAQ"):
        FaqIndex().fit(FAQ, HELD_OUT.with_columns(pl.lit("Where is my dog?").alias("question")))


def test_the_cli_answers_or_says_it_has_no_confident_answer(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from deepfin.cli import app

    FAQ.write_csv(tmp_path / "faq.csv")
    HELD_OUT.write_csv(tmp_path / "held_out.csv")
    result = CliRunner().invoke(
        app,
        ["text", "faq", "--faq", str(tmp_path / "faq.csv"), "--held-out",
         str(tmp_path / "held_out.csv"), "--question", "my card never came",
         "--question", "best pizza in town?", "--output", str(tmp_path / "answers.csv")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "threshold" in result.output and "no confident answer" in result.output
    answers = pl.read_csv(tmp_path / "answers.csv")
    assert answers.filter(pl.col("rank") == 1)["question"][0] == "My card has not arrived yet"
    missing = CliRunner().invoke(app, ["text", "faq", "--faq", str(tmp_path / "faq.csv")])
    assert missing.exit_code != 0 and "--question" in missing.output


def test_an_answer_asked_for_in_several_ways_is_one_entry_as_near_as_its_nearest_way() -> None:
    faq = pl.concat(
        [FAQ, pl.DataFrame({"question": ["Where is my new card?"], "answer": ["Within 5 days."]})]
    )
    index = FaqIndex(min_similarity=0.3).fit(faq)
    answers = index.answer(["where is my new card"], top_k=4)
    assert answers.height == 4  # four answers, though five questions
    assert answers["answer"].n_unique() == 4
    top = answers.row(0, named=True)
    assert (top["answer"], top["question"]) == ("Within 5 days.", "Where is my new card?")


@pytest.mark.data
def test_banking77_messages_find_their_intent_s_answer() -> None:
    folder = SHARED_DATA / "banking77"
    if not folder.exists():
        pytest.skip(f"needs ../shared/data ({folder} is absent)")
    train = pl.read_csv(folder / "train.csv")
    asked = train.group_by("category", maintain_order=True).head(5)  # five phrasings each
    faq = asked.select(pl.col("text").alias("question"), pl.col("category").alias("answer"))
    rest = train.join(asked.select("text"), on="text", how="anti").sample(600, seed=0)
    first = dict(zip(faq["answer"], faq["question"], strict=False))
    held_out = rest.select(
        pl.col("text").alias("message"), pl.col("category").replace_strict(first).alias("question")
    )
    index = FaqIndex(target_precision=0.9).fit(faq, held_out)
    test = pl.read_csv(folder / "test.csv").sample(600, seed=1)
    answers = index.answer(test["text"].to_list(), top_k=3)
    hit = answers.join(test.rename({"text": "message"}), on="message").filter(
        pl.col("answer") == pl.col("category")
    )
    assert hit["message"].n_unique() / test.height > 0.85  # top-3
    confident = answers.filter(pl.col("rank") == 1, pl.col("confident"))
    right = confident.join(test.rename({"text": "message"}), on="message")
    assert (right["answer"] == right["category"]).mean() > 0.8
