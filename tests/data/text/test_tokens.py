import pytest
import torch

from deepfin.data.text.tokens import PAD, TextTokenizer, TokenRows
from deepfin.errors import DataError, RunFolderError

TRAIN = ["profit rose sharply", "sales fell in the quarter", "profit warning issued"] * 20


def test_a_tokenizer_learned_from_the_training_texts_knows_only_their_words() -> None:
    tokenizer = TextTokenizer.train(TRAIN, vocab_size=200, min_frequency=1)
    vocabulary = tokenizer.tokenizer.get_vocab()
    assert {"profit", "sales", "quarter"} <= set(vocabulary)
    assert "zebra" not in vocabulary  # a word of no training text is not a token
    assert tokenizer.vocab_size == len(vocabulary) <= 200
    tokens = tokenizer.encode(["Profit ROSE", "zebra"], max_tokens=16)
    pieces = [tokenizer.tokenizer.id_to_token(int(i)) for i in tokens.ids[0][tokens.mask[0]]]
    assert pieces == ["[CLS]", "profit", "rose", "[SEP]"]  # lower-cased, between the markers
    again = TextTokenizer.from_json(tokenizer.to_json())
    assert torch.equal(
        again.encode(TRAIN, max_tokens=16).ids, tokenizer.encode(TRAIN, max_tokens=16).ids
    )


def test_ids_are_padded_masked_and_cut_at_the_limit() -> None:
    tokenizer = TextTokenizer.train(TRAIN, vocab_size=200, min_frequency=1)
    tokens = tokenizer.encode(["profit", "sales fell in the quarter " * 5, ""], max_tokens=8)
    assert tokens.ids.shape == (3, 8) and tokens.ids.dtype == torch.int64
    assert tokens.mask.sum(1).tolist() == [3, 8, 2]  # [CLS] profit [SEP]; cut; [CLS] [SEP]
    assert tokens.truncated == 1
    pad = tokenizer.tokenizer.token_to_id(PAD)
    assert (tokens.ids[~tokens.mask] == pad).all()
    with pytest.raises(DataError, match="max_tokens=2"):
        tokenizer.encode(["profit"], max_tokens=2)


def test_a_batch_is_cut_to_its_longest_text() -> None:
    tokenizer = TextTokenizer.train(TRAIN, vocab_size=200, min_frequency=1)
    tokens = tokenizer.encode(["profit", "sales fell in the quarter", "profit rose"], max_tokens=32)
    rows = TokenRows(tokens, torch.tensor([0, 1, 2]))
    (ids, mask), targets = rows.batch(torch.tensor([0, 2]))
    assert ids.shape == (2, 4) and mask.shape == (2, 4)  # "profit rose" is 4 tokens
    assert targets.tolist() == [0, 2]
    assert rows.by_length().tolist() == [0, 2, 1]


def test_a_broken_tokenizer_file_is_a_run_folder_error() -> None:
    with pytest.raises(RunFolderError, match=r"tokenizer\.json is not readable"):
        TextTokenizer.from_json("{not json")


def test_an_epoch_s_batches_hold_every_text_once_and_texts_of_like_length() -> None:
    tokenizer = TextTokenizer.train(TRAIN, vocab_size=200, min_frequency=1)
    generator = torch.Generator().manual_seed(0)
    words = torch.randint(1, 40, (3000,), generator=generator).tolist()
    texts = [" ".join(["profit"] * n) for n in words]
    rows = TokenRows(tokenizer.encode(texts, max_tokens=64), torch.zeros(3000))
    torch.manual_seed(0)
    batches = rows.batch_positions(32)
    assert sorted(torch.cat(batches).tolist()) == list(range(3000))
    padding = sum(int(rows.lengths[b].max() * len(b) - rows.lengths[b].sum()) for b in batches)
    shuffled = torch.randperm(3000).split(32)
    random_padding = sum(
        int(rows.lengths[b].max() * len(b) - rows.lengths[b].sum()) for b in shuffled
    )
    assert padding < random_padding / 10
    torch.manual_seed(0)
    assert all(torch.equal(a, b) for a, b in zip(rows.batch_positions(32), batches, strict=True))
