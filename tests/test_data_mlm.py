"""MLM masking and packing helpers, and the embedded digits data set."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lion_hf.data import DIGIT_LABELS, load_digits_dataset, mask_tokens, pack_token_blocks  # noqa: E402

MASK, VOCAB = 4, 1000


def _batch(rows=64, length=128):
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(10, VOCAB, (rows, length), generator=gen)
    special = torch.zeros_like(ids)
    special[:, 0] = special[:, -1] = 1
    attention = torch.ones_like(ids)
    attention[:, 100:] = 0  # padding
    return ids, special, attention


@pytest.mark.parametrize("probability", [0.15, 0.30])
def test_mask_rate_and_bert_replacement_split(probability):
    ids, special, attention = _batch()
    masked, labels = mask_tokens(ids, mask_token_id=MASK, vocab_size=VOCAB, probability=probability,
                                 generator=torch.Generator().manual_seed(1), special_tokens_mask=special,
                                 attention_mask=attention)
    chosen = labels != -100
    maskable = (special == 0) & (attention == 1)
    rate = chosen.sum() / maskable.sum()
    assert abs(float(rate) - probability) < 0.02
    assert not chosen[~maskable].any(), "special tokens and padding are never masked"
    assert torch.equal(labels[chosen], ids[chosen]), "labels are the original tokens"
    assert torch.equal(masked[~chosen], ids[~chosen]), "unchosen tokens are untouched"
    as_mask = (masked[chosen] == MASK).float().mean()
    kept = (masked[chosen] == ids[chosen]).float().mean()
    assert abs(float(as_mask) - 0.8) < 0.04 and abs(float(kept) - 0.1) < 0.03


def test_masking_is_a_function_of_the_generator():
    ids, special, attention = _batch(4)
    a = mask_tokens(ids, mask_token_id=MASK, vocab_size=VOCAB, probability=0.3, generator=torch.Generator().manual_seed(7))
    b = mask_tokens(ids, mask_token_id=MASK, vocab_size=VOCAB, probability=0.3, generator=torch.Generator().manual_seed(7))
    c = mask_tokens(ids, mask_token_id=MASK, vocab_size=VOCAB, probability=0.3, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    with pytest.raises(ValueError, match="probability"):
        mask_tokens(ids, mask_token_id=MASK, vocab_size=VOCAB, probability=0.0, generator=torch.Generator())


def test_packing_makes_full_blocks_with_cls_and_separators():
    docs = [[10, 11, 12], [20, 21], [30, 31, 32, 33, 34, 35]]
    blocks = pack_token_blocks(docs, 5, cls_token_id=2, sep_token_id=3)
    assert all(len(b) == 5 and b[0] == 2 for b in blocks)
    stream = [t for b in blocks for t in b[1:]]
    assert stream == [10, 11, 12, 3, 20, 21, 3, 30, 31, 32, 33, 34][:len(stream)]
    assert len(blocks) == 3  # 14 tokens with separators -> 3 full bodies of 4, the tail dropped
    with pytest.raises(ValueError):
        pack_token_blocks(docs, 1, cls_token_id=2, sep_token_id=3)


def test_digits_dataset_is_stratified_fixed_and_rgb():
    splits = load_digits_dataset(seed=0)
    train, test = splits["train"], splits["test"]
    assert len(train) + len(test) == 1797 and len(test) == 359
    assert test.features["label"].names == DIGIT_LABELS
    counts = torch.bincount(torch.tensor(test["label"]), minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38, "every class is in the test split"
    image = test[0]["image"]
    assert image.size == (8, 8) and image.mode == "RGB"
    again = load_digits_dataset(seed=0)["test"]
    assert again["label"] == test["label"], "the held-out split never changes"
