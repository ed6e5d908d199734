"""The DeiT augmentations of lion_hf.data (plain PIL/torch) and the reproducible sampling helpers."""

import math
import os
import random

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lion_hf.data import (  # noqa: E402
    AugmentedDataset,
    CenterCrop,
    EpochSeededSampler,
    Mixup,
    Normalize,
    RandAugment,
    RandomErasing,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
    build_eval_transform,
    build_train_transform,
    one_hot_smoothed,
    sample_rng,
    soft_target_cross_entropy,
)
from lion_hf.data.transforms import RAND_AUGMENT_OPS, _sample_beta  # noqa: E402


def _image(width=24, height=20, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), mode="RGB")


def test_to_tensor_and_normalize_values():
    image = _image()
    tensor = ToTensor()(image)
    assert tensor.shape == (3, 20, 24) and tensor.dtype == torch.float32
    expected = torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(tensor, expected)
    normed = Normalize([0.5, 0.25, 0.0], [0.5, 0.5, 1.0])(tensor)
    torch.testing.assert_close(normed[1], (tensor[1] - 0.25) / 0.5)
    # Grey images are converted to the requested mode.
    assert ToTensor("RGB")(image.convert("L")).shape == (3, 20, 24)


def test_resize_and_center_crop_sizes():
    image = _image(30, 10)
    assert Resize(8)(image).size == (8, 8)
    assert Resize((6, 12))(image).size == (12, 6)  # (height, width) -> PIL (width, height)
    crop = CenterCrop(8)(image)
    assert crop.size == (8, 8)
    # The centre crop is the middle of the original array.
    np.testing.assert_array_equal(np.asarray(crop), np.asarray(image)[1:9, 11:19])


def test_random_resized_crop_boxes_respect_scale_and_bounds():
    crop = RandomResizedCrop(16, scale=(0.3, 0.6), ratio=(0.75, 1.333))
    rng = random.Random(0)
    for _ in range(200):
        left, top, w, h = crop.get_box(40, 30, rng)
        assert 0 <= left and left + w <= 40 and 0 <= top and top + h <= 30
        # rounding of the side lengths moves the area a little
        assert 0.3 * 1200 * 0.8 <= w * h <= 0.6 * 1200 * 1.2
    assert crop(_image(40, 30), random.Random(1)).size == (16, 16)
    with pytest.raises(ValueError, match="scale"):
        RandomResizedCrop(16, scale=(0.0, 1.0))


def test_random_transforms_are_functions_of_their_rng():
    transform = build_train_transform(16, [0.5] * 3, [0.5] * 3, reprob=1.0)
    image = _image(32, 32)
    a = transform(image, sample_rng(3, 1, 7))
    b = transform(image, sample_rng(3, 1, 7))
    c = transform(image, sample_rng(3, 2, 7))  # another epoch: another augmentation
    assert a.shape == (3, 16, 16)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


def test_horizontal_flip_probability_extremes():
    image = _image()
    flipped = RandomHorizontalFlip(1.0)(image, random.Random(0))
    np.testing.assert_array_equal(np.asarray(flipped), np.asarray(image)[:, ::-1])
    assert RandomHorizontalFlip(0.0)(image, random.Random(0)) is image


@pytest.mark.parametrize("name", sorted(RAND_AUGMENT_OPS))
def test_every_rand_augment_op_keeps_size_and_mode(name):
    augment = RandAugment(num_ops=1, magnitude=9, magnitude_std=0, prob=1.0, ops=[name])
    image = _image(16, 16)
    out = augment(image, random.Random(0))
    assert out.size == image.size and out.mode == "RGB"
    if name in ("Invert", "Rotate", "Posterize", "Solarize", "ShearX", "TranslateX"):
        assert not np.array_equal(np.asarray(out), np.asarray(image)), f"{name} at magnitude 9 changed nothing"


def test_rand_augment_config_string():
    augment = RandAugment.from_config_str("rand-m9-mstd0.5-inc1")
    assert (augment.magnitude, augment.magnitude_std, augment.num_ops) == (9.0, 0.5, 2)
    assert RandAugment.from_config_str("rand-n3-m5-p0.7").num_ops == 3
    with pytest.raises(ValueError, match="start with 'rand'"):
        RandAugment.from_config_str("auto-m9")
    with pytest.raises(ValueError, match="cannot parse"):
        RandAugment.from_config_str("rand-x9")
    with pytest.raises(ValueError, match="increasing"):
        RandAugment.from_config_str("rand-m9-inc0")
    with pytest.raises(ValueError, match="unknown RandAugment ops"):
        RandAugment(ops=["Blur"])


def test_random_erasing_fills_one_box_with_noise():
    tensor = torch.zeros(3, 32, 32)
    out = RandomErasing(p=1.0, mode="pixel")(tensor, random.Random(0))
    changed = (out != 0).any(0)
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert changed.sum() > 0
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert int(changed.sum()) == int(box), "erased pixels form one rectangle"
    assert 0.02 * 1024 * 0.7 <= int(box) <= 1024 / 3 * 1.3
    assert torch.equal(tensor, torch.zeros(3, 32, 32)), "input untouched"
    assert RandomErasing(p=0.0)(tensor, random.Random(0)) is tensor
    const = RandomErasing(p=1.0, mode="const")(torch.ones(1, 16, 16), random.Random(0))
    assert (const == 0).any() and set(const.unique().tolist()) <= {0.0, 1.0}


def test_one_hot_smoothed_and_soft_cross_entropy_match_torch():
    labels = torch.tensor([0, 3, 1])
    targets = one_hot_smoothed(labels, 4, smoothing=0.1)
    torch.testing.assert_close(targets.sum(1), torch.ones(3))
    assert math.isclose(float(targets[1, 3]), 0.9 + 0.025, abs_tol=1e-6)
    logits = torch.randn(3, 4)
    expected = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    torch.testing.assert_close(soft_target_cross_entropy(logits, targets), expected)


def test_mixup_mixes_images_and_labels_with_the_same_weight():
    images = torch.randn(4, 3, 8, 8)
    labels = torch.tensor([0, 1, 2, 3])
    mixup = Mixup(mixup_alpha=1.0, cutmix_alpha=0.0, label_smoothing=0.0, num_classes=4)
    mixed, targets = mixup(images, labels, torch.Generator().manual_seed(0))
    lam = float(targets[0, 0])
    assert 0 < lam < 1
    torch.testing.assert_close(mixed, lam * images + (1 - lam) * images.flip(0))
    torch.testing.assert_close(targets.sum(1), torch.ones(4))
    again, _ = mixup(images, labels, torch.Generator().manual_seed(0))
    torch.testing.assert_close(mixed, again, rtol=0, atol=0)


def test_cutmix_label_weight_is_the_pasted_area():
    images = torch.stack([torch.full((1, 10, 10), float(i)) for i in range(4)])
    labels = torch.arange(4)
    cutmix = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0, num_classes=4)
    for seed in range(10):
        mixed, targets = cutmix(images, labels, torch.Generator().manual_seed(seed))
        own = float((mixed[0] == 0).float().mean())  # sample 0 keeps its value outside the box
        torch.testing.assert_close(targets[0, 0], torch.tensor(own), atol=1e-6, rtol=0)
        torch.testing.assert_close(targets[0, 3], torch.tensor(1 - own), atol=1e-6, rtol=0)


def test_mixup_disabled_returns_smoothed_one_hot():
    images = torch.randn(2, 3, 4, 4)
    out, targets = Mixup(0.0, 0.0, label_smoothing=0.1, num_classes=3)(images, torch.tensor([0, 2]),
                                                                        torch.Generator().manual_seed(0))
    assert out is images
    torch.testing.assert_close(targets, one_hot_smoothed(torch.tensor([0, 2]), 3, 0.1))


def test_beta_sampler_has_the_right_mean_and_spread():
    gen = torch.Generator().manual_seed(0)
    for alpha in (0.8, 1.0, 2.0):
        draws = np.array([_sample_beta(alpha, gen) for _ in range(3000)])
        assert ((draws > 0) & (draws < 1)).all()
        assert abs(draws.mean() - 0.5) < 0.03
        expected_var = 1 / (4 * (2 * alpha + 1))  # variance of Beta(a, a)
        assert abs(draws.var() - expected_var) < 0.2 * expected_var


def test_epoch_seeded_sampler_permutes_per_epoch_and_carries_the_epoch():
    sampler = EpochSeededSampler(10, seed=5)
    first = list(sampler)
    assert sorted(first) == list(range(10))
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(second) == list(range(10, 20)) and [i - 10 for i in second] != first
    again = EpochSeededSampler(10, seed=5)
    again.set_epoch(1)
    assert list(again) == second
    ordered = EpochSeededSampler(4, shuffle=False)
    assert list(ordered) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        EpochSeededSampler(0)


@pytest.mark.parametrize("length,repeats", [(10, 3), (12, 3), (7, 2), (5, 8)])
def test_repeated_augmentation_sampler(length, repeats, seed):
    """Each epoch keeps its length, takes ceil(length / repeats) images `repeats` times in a row, and
    every copy carries its own augmentation round, so no two copies are augmented alike."""
    sampler = EpochSeededSampler(length, seed=seed % 1000, repeats=repeats)
    per_epoch = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        keys = list(sampler)
        assert len(keys) == len(sampler) == length
        rounds, indices = zip(*(divmod(k, length) for k in keys))
        assert len(set(keys)) == length  # distinct keys: distinct (round, index) seeds
        assert all(epoch * repeats <= r < (epoch + 1) * repeats for r in rounds)
        chosen = list(dict.fromkeys(indices))
        assert len(chosen) == min(length, -(-length // repeats))
        for position, index in enumerate(indices):  # copies of one image are consecutive
            assert index == chosen[position // repeats]
        per_epoch.append(keys)
    # a new shuffle each epoch; with >= 4 of >= 7 images chosen, three equal orders have odds < 1e-5
    if length >= 3 * repeats:
        shifted = [[k - e * length * repeats for k in keys] for e, keys in enumerate(per_epoch)]
        assert not shifted[0] == shifted[1] == shifted[2]
    again = EpochSeededSampler(length, seed=seed % 1000, repeats=repeats)
    again.set_epoch(2)
    assert list(again) == per_epoch[2]
    # copies of an image get different augmentations through AugmentedDataset
    data = AugmentedDataset(list(range(length)), lambda example, rng: (example, rng.random()), seed=1)
    first, second = data[per_epoch[0][0]], data[per_epoch[0][1]]
    assert first[0] == second[0] and first[1] != second[1]
    with pytest.raises(ValueError, match="repeats"):
        EpochSeededSampler(length, repeats=0)
    with pytest.raises(ValueError, match="repeats"):
        EpochSeededSampler(length, shuffle=False, repeats=2)


def test_augmented_dataset_decodes_epoch_and_index():
    seen = []
    data = AugmentedDataset(["a", "b", "c"], lambda example, rng: (example, rng.random()), seed=1)
    for key in (1, 4):  # index 1 in epoch 0 and in epoch 1
        seen.append(data[key])
    assert seen[0][0] == seen[1][0] == "b"
    assert seen[0][1] == sample_rng(1, 0, 1).random() and seen[1][1] == sample_rng(1, 1, 1).random()


def test_eval_transform_matches_the_saved_image_processor():
    """The accuracy measured in training must be the one pipeline() reproduces."""
    from transformers import ViTImageProcessorPil

    processor = ViTImageProcessorPil(size={"height": 16, "width": 16}, resample=Image.BILINEAR,
                                     image_mean=[0.5, 0.4, 0.3], image_std=[0.2, 0.3, 0.4])
    image = _image(8, 8)
    expected = processor(image, return_tensors="pt")["pixel_values"][0]
    ours = build_eval_transform(16, [0.5, 0.4, 0.3], [0.2, 0.3, 0.4], interpolation=Image.BILINEAR)(image)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)
