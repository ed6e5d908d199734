# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Image augmentations of the DeiT recipe in plain PIL/torch (no torchvision).

Every random transform takes its randomness from an explicit ``random.Random`` passed at call time
instead of the global generators. The example scripts derive that generator from
``(seed, epoch, sample index)`` (see :func:`sample_rng`), so the augmentation of a sample does not
depend on the number of dataloader workers, on the process count, or on whether the run was
resumed from a checkpoint: this is what makes ``--resume_from_checkpoint`` continue exactly.

Transforms on PIL images: :class:`Resize`, :class:`CenterCrop`, :class:`RandomResizedCrop`,
:class:`RandomHorizontalFlip`, :class:`RandAugment`. Then :class:`ToTensor` and :class:`Normalize`,
and on the normalised tensor :class:`RandomErasing`. Batch-level :class:`Mixup` (Mixup/CutMix with
label smoothing) works on tensors with a ``torch.Generator``.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Sequence

import torch
from PIL import Image, ImageEnhance, ImageOps

__all__ = [
    "CenterCrop",
    "Compose",
    "Mixup",
    "Normalize",
    "RandAugment",
    "RandomErasing",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "Resize",
    "ToTensor",
    "build_eval_transform",
    "build_train_transform",
    "one_hot_smoothed",
    "sample_rng",
    "soft_target_cross_entropy",
]

Transform = Callable[..., object]


def sample_rng(seed: int, epoch: int, index: int) -> random.Random:
    """Generator of the augmentations of one sample, a pure function of ``(seed, epoch, index)``.

    ``random.Random`` seeds a string through SHA-512, so this does not depend on ``PYTHONHASHSEED``.
    """
    return random.Random(f"lion-aug-{seed}-{epoch}-{index}")


def _size_pair(size: int | Sequence[int]) -> tuple[int, int]:
    """``(height, width)`` from an int or a pair."""
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


class Compose:
    """Apply transforms in turn; each receives the same ``rng`` (deterministic ones ignore it)."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, image, rng: random.Random | None = None):
        rng = rng if rng is not None else random.Random()
        for transform in self.transforms:
            image = transform(image, rng)
        return image

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class Resize:
    """Resize a PIL image to exactly ``size`` (``(height, width)`` or a square side)."""

    def __init__(self, size: int | Sequence[int], interpolation: int = Image.BICUBIC):
        self.size = _size_pair(size)
        self.interpolation = interpolation

    def __call__(self, image: Image.Image, rng: random.Random | None = None) -> Image.Image:
        height, width = self.size
        if image.size == (width, height):
            return image
        return image.resize((width, height), resample=self.interpolation)

    def __repr__(self) -> str:
        return f"Resize({self.size})"


class CenterCrop:
    """Crop the centre ``size`` of a PIL image (padding with zeros when the image is smaller)."""

    def __init__(self, size: int | Sequence[int]):
        self.size = _size_pair(size)

    def __call__(self, image: Image.Image, rng: random.Random | None = None) -> Image.Image:
        height, width = self.size
        left = (image.width - width) // 2
        top = (image.height - height) // 2
        # PIL pads out-of-range crops with zeros, which is what we want for small images.
        return image.crop((left, top, left + width, top + height))

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"


class RandomResizedCrop:
    """Crop a random area fraction in ``scale`` with an aspect ratio in ``ratio`` (log-uniform), resize.

    Falls back to a centre crop of the largest valid box after 10 unsuccessful draws, as the
    Inception-style crop of the DeiT recipe does.
    """

    def __init__(self, size: int | Sequence[int], scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), interpolation: int = Image.BICUBIC):
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"RandomResizedCrop scale must satisfy 0 < min <= max <= 1, got {scale}")
        self.size = _size_pair(size)
        self.scale = scale
        self.ratio = ratio
        self.interpolation = interpolation

    def get_box(self, width: int, height: int, rng: random.Random) -> tuple[int, int, int, int]:
        """``(left, top, box_width, box_height)`` of the crop."""
        area = width * height
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target_area = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            box_w = round(math.sqrt(target_area * aspect))
            box_h = round(math.sqrt(target_area / aspect))
            if 0 < box_w <= width and 0 < box_h <= height:
                return rng.randint(0, width - box_w), rng.randint(0, height - box_h), box_w, box_h
        # Fallback: the whole image clipped to the allowed aspect range, centred.
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            box_w, box_h = width, round(width / self.ratio[0])
        elif in_ratio > self.ratio[1]:
            box_w, box_h = round(height * self.ratio[1]), height
        else:
            box_w, box_h = width, height
        return (width - box_w) // 2, (height - box_h) // 2, box_w, box_h

    def __call__(self, image: Image.Image, rng: random.Random) -> Image.Image:
        left, top, box_w, box_h = self.get_box(image.width, image.height, rng)
        height, width = self.size
        return image.resize((width, height), resample=self.interpolation,
                            box=(left, top, left + box_w, top + box_h))

    def __repr__(self) -> str:
        return f"RandomResizedCrop({self.size}, scale={self.scale}, ratio={self.ratio})"


class RandomHorizontalFlip:
    """Mirror left-right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, image: Image.Image, rng: random.Random) -> Image.Image:
        if self.p > 0 and rng.random() < self.p:
            return image.transpose(Image.FLIP_LEFT_RIGHT)
        return image

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


# ------------------------------------------------------------------------------------------------
# RandAugment
# ------------------------------------------------------------------------------------------------
_MAX_LEVEL = 10.0


def _signed(value: float, rng: random.Random) -> float:
    """Geometric and colour ops act in both directions with equal chance."""
    return -value if rng.random() < 0.5 else value


def _affine(image: Image.Image, matrix: tuple[float, ...], fill: tuple[int, ...]) -> Image.Image:
    return image.transform(image.size, Image.AFFINE, matrix, resample=Image.BILINEAR, fillcolor=fill)


def _op_identity(image, level, rng, fill):
    return image


def _op_auto_contrast(image, level, rng, fill):
    return ImageOps.autocontrast(image)


def _op_equalize(image, level, rng, fill):
    return ImageOps.equalize(image)


def _op_invert(image, level, rng, fill):
    return ImageOps.invert(image)


def _op_rotate(image, level, rng, fill):
    return image.rotate(_signed(level / _MAX_LEVEL * 30.0, rng), resample=Image.BILINEAR, fillcolor=fill)


def _op_posterize(image, level, rng, fill):
    # "Increasing" variant: a larger magnitude keeps fewer bits (stronger effect), 4 bits at most removed.
    bits = max(1, 8 - int(round(level / _MAX_LEVEL * 4)))
    return ImageOps.posterize(image, bits)


def _op_solarize(image, level, rng, fill):
    # Increasing variant: the threshold drops from 256 (no effect) as the magnitude grows.
    return ImageOps.solarize(image, 256 - int(level / _MAX_LEVEL * 256))


def _op_solarize_add(image, level, rng, fill):
    # Add a constant to the pixels below 128 (then clip), a milder solarization.
    amount = int(level / _MAX_LEVEL * 110)
    lut = [min(255, v + amount) if v < 128 else v for v in range(256)]
    return image.point(lut * len(image.getbands()))


def _enhance(kind):
    def op(image, level, rng, fill):
        # Increasing variant: the factor moves away from 1 (identity) in either direction, up to +-0.9.
        return kind(image).enhance(max(0.1, 1.0 + _signed(level / _MAX_LEVEL * 0.9, rng)))
    return op


def _op_shear_x(image, level, rng, fill):
    return _affine(image, (1, _signed(level / _MAX_LEVEL * 0.3, rng), 0, 0, 1, 0), fill)


def _op_shear_y(image, level, rng, fill):
    return _affine(image, (1, 0, 0, _signed(level / _MAX_LEVEL * 0.3, rng), 1, 0), fill)


def _op_translate_x(image, level, rng, fill):
    # Relative translation (a fraction of the width, up to 45%), so the op scales with image size.
    return _affine(image, (1, 0, _signed(level / _MAX_LEVEL * 0.45, rng) * image.width, 0, 1, 0), fill)


def _op_translate_y(image, level, rng, fill):
    return _affine(image, (1, 0, 0, 0, 1, _signed(level / _MAX_LEVEL * 0.45, rng) * image.height), fill)


RAND_AUGMENT_OPS: dict[str, Callable] = {
    "AutoContrast": _op_auto_contrast,
    "Equalize": _op_equalize,
    "Invert": _op_invert,
    "Rotate": _op_rotate,
    "Posterize": _op_posterize,
    "Solarize": _op_solarize,
    "SolarizeAdd": _op_solarize_add,
    "Color": _enhance(ImageEnhance.Color),
    "Contrast": _enhance(ImageEnhance.Contrast),
    "Brightness": _enhance(ImageEnhance.Brightness),
    "Sharpness": _enhance(ImageEnhance.Sharpness),
    "ShearX": _op_shear_x,
    "ShearY": _op_shear_y,
    "TranslateX": _op_translate_x,
    "TranslateY": _op_translate_y,
}


class RandAugment:
    """RandAugment (Cubuk et al. 2020) with the per-op magnitude noise of the DeiT recipe.

    Each call picks ``num_ops`` ops uniformly (with replacement); each is applied with probability
    ``prob`` at magnitude ``N(magnitude, magnitude_std)`` clipped to ``[0, 10]``. All ops are the
    "increasing" variants (a larger magnitude always means a stronger change).

    Args:
        num_ops: ops applied per image (``n`` in the config string).
        magnitude: mean magnitude on a 0..10 scale (``m``).
        magnitude_std: standard deviation of the magnitude noise (``mstd``); 0 disables it.
        prob: probability of applying each picked op.
        ops: names from :data:`RAND_AUGMENT_OPS` (all by default).
        fill: colour of the area uncovered by geometric ops.
    """

    def __init__(self, num_ops: int = 2, magnitude: float = 9.0, magnitude_std: float = 0.5, prob: float = 0.5,
                 ops: Sequence[str] | None = None, fill: tuple[int, ...] = (128, 128, 128)):
        names = list(ops) if ops is not None else list(RAND_AUGMENT_OPS)
        unknown = [n for n in names if n not in RAND_AUGMENT_OPS]
        if unknown:
            raise ValueError(f"unknown RandAugment ops {unknown}; available: {sorted(RAND_AUGMENT_OPS)}")
        self.num_ops = num_ops
        self.magnitude = magnitude
        self.magnitude_std = magnitude_std
        self.prob = prob
        self.op_names = names
        self.fill = tuple(fill)

    @classmethod
    def from_config_str(cls, config: str, fill: tuple[int, ...] = (128, 128, 128)) -> "RandAugment":
        """Parse the DeiT/timm-style string ``rand-m9-mstd0.5-inc1`` (also ``-n2``, ``-p0.5``).

        Only the increasing ops are implemented, so ``inc0`` is rejected rather than silently ignored.
        """
        parts = config.strip().split("-")
        if not parts or parts[0] != "rand":
            raise ValueError(f"RandAugment config must start with 'rand', got {config!r} (e.g. 'rand-m9-mstd0.5-inc1')")
        kwargs: dict = {}
        for part in parts[1:]:
            match = re.fullmatch(r"(mstd|inc|m|n|p)([0-9.]+)", part)
            if not match:
                raise ValueError(f"cannot parse RandAugment option {part!r} in {config!r}")
            key, value = match.groups()
            if key == "m":
                kwargs["magnitude"] = float(value)
            elif key == "mstd":
                kwargs["magnitude_std"] = float(value)
            elif key == "n":
                kwargs["num_ops"] = int(value)
            elif key == "p":
                kwargs["prob"] = float(value)
            elif key == "inc" and value not in ("1", "1.0"):
                raise ValueError("only the increasing RandAugment ops (inc1) are implemented")
        return cls(fill=fill, **kwargs)

    def __call__(self, image: Image.Image, rng: random.Random) -> Image.Image:
        for _ in range(self.num_ops):
            name = self.op_names[rng.randrange(len(self.op_names))]
            if rng.random() >= self.prob:
                continue
            level = self.magnitude
            if self.magnitude_std > 0:
                level = rng.gauss(self.magnitude, self.magnitude_std)
            level = min(_MAX_LEVEL, max(0.0, level))
            fill = self.fill[: len(image.getbands())] if len(image.getbands()) > 1 else self.fill[0]
            image = RAND_AUGMENT_OPS[name](image, level, rng, fill)
        return image

    def __repr__(self) -> str:
        return (f"RandAugment(num_ops={self.num_ops}, magnitude={self.magnitude}, "
                f"magnitude_std={self.magnitude_std}, prob={self.prob})")


# ------------------------------------------------------------------------------------------------
# Tensor transforms
# ------------------------------------------------------------------------------------------------
class ToTensor:
    """PIL image -> float tensor ``[C, H, W]`` in ``[0, 1]`` (converting to ``mode`` first)."""

    def __init__(self, mode: str = "RGB"):
        self.mode = mode

    def __call__(self, image: Image.Image, rng: random.Random | None = None) -> torch.Tensor:
        if image.mode != self.mode:
            image = image.convert(self.mode)
        data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
        channels = len(image.getbands())
        return data.view(image.height, image.width, channels).permute(2, 0, 1).float().div_(255.0)

    def __repr__(self) -> str:
        return f"ToTensor(mode={self.mode!r})"


class Normalize:
    """``(x - mean) / std`` per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = torch.tensor(list(mean), dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, tensor: torch.Tensor, rng: random.Random | None = None) -> torch.Tensor:
        return (tensor - self.mean) / self.std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


class RandomErasing:
    """Random erasing (Zhong et al. 2020) on a normalised ``[C, H, W]`` tensor.

    With probability ``p`` a box of area fraction in ``scale`` and log-uniform aspect ``ratio`` is
    filled with per-pixel standard normal noise (the DeiT recipe's ``mode='pixel'``), which matches
    the statistics of normalised pixels; ``mode='const'`` fills zeros (the mean colour).
    """

    def __init__(self, p: float = 0.25, scale: tuple[float, float] = (0.02, 1 / 3),
                 ratio: tuple[float, float] = (0.3, 3.3), mode: str = "pixel"):
        if mode not in ("pixel", "const"):
            raise ValueError(f"RandomErasing mode must be 'pixel' or 'const', got {mode!r}")
        self.p = p
        self.scale = scale
        self.ratio = ratio
        self.mode = mode

    def __call__(self, tensor: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if self.p <= 0 or rng.random() >= self.p:
            return tensor
        channels, height, width = tensor.shape
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            box_h = int(round(math.sqrt(target * aspect)))
            box_w = int(round(math.sqrt(target / aspect)))
            if 0 < box_h < height and 0 < box_w < width:
                top = rng.randint(0, height - box_h)
                left = rng.randint(0, width - box_w)
                tensor = tensor.clone()
                if self.mode == "pixel":
                    # A torch generator seeded from the sample's rng keeps the noise reproducible.
                    gen = torch.Generator().manual_seed(rng.getrandbits(63))
                    tensor[:, top:top + box_h, left:left + box_w] = torch.randn(
                        (channels, box_h, box_w), generator=gen, dtype=tensor.dtype)
                else:
                    tensor[:, top:top + box_h, left:left + box_w] = 0
                return tensor
        return tensor

    def __repr__(self) -> str:
        return f"RandomErasing(p={self.p}, scale={self.scale}, ratio={self.ratio}, mode={self.mode!r})"


# ------------------------------------------------------------------------------------------------
# Mixup / CutMix and the soft-target loss
# ------------------------------------------------------------------------------------------------
def one_hot_smoothed(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """Label-smoothed one-hot targets: ``1 - smoothing + smoothing / K`` on the class, ``smoothing / K`` elsewhere."""
    off = smoothing / num_classes
    targets = torch.full((labels.shape[0], num_classes), off, dtype=torch.float32, device=labels.device)
    return targets.scatter_(1, labels.long().view(-1, 1), 1.0 - smoothing + off)


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross entropy against a distribution per row (Mixup/CutMix or smoothed targets), in float32."""
    return torch.sum(-targets * torch.log_softmax(logits.float(), dim=-1), dim=-1).mean()


class Mixup:
    """Batch-level Mixup / CutMix with label smoothing, as in the DeiT recipe (``mode='batch'``).

    Each call draws one mixing coefficient for the whole batch and mixes each sample with the one at
    the mirrored position of the batch (``x.flip(0)``). With probability ``switch_prob`` (when both
    are enabled) CutMix is used instead of Mixup; CutMix's coefficient is corrected to the area of
    the pasted box actually inside the image.

    Args:
        mixup_alpha: Beta(alpha, alpha) parameter of Mixup; 0 disables Mixup.
        cutmix_alpha: Beta parameter of CutMix; 0 disables CutMix.
        prob: probability of mixing a batch at all.
        switch_prob: probability of CutMix when both are enabled.
        label_smoothing: smoothing of the one-hot targets before mixing.
        num_classes: number of classes of the targets.
    """

    def __init__(self, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0, prob: float = 1.0,
                 switch_prob: float = 0.5, label_smoothing: float = 0.1, num_classes: int = 1000):
        if mixup_alpha < 0 or cutmix_alpha < 0:
            raise ValueError("mixup_alpha and cutmix_alpha must be >= 0")
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.prob = prob
        self.switch_prob = switch_prob
        self.label_smoothing = label_smoothing
        self.num_classes = num_classes

    @property
    def enabled(self) -> bool:
        return self.prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)

    def _sample_lambda(self, generator: torch.Generator) -> tuple[float, bool]:
        """``(lambda, use_cutmix)`` for this batch."""
        use_cutmix = False
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = float(torch.rand((), generator=generator)) < self.switch_prob
        elif self.cutmix_alpha > 0:
            use_cutmix = True
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        return _sample_beta(alpha, generator), use_cutmix

    def __call__(self, images: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Mix a batch ``[B, C, H, W]`` with labels ``[B]``; returns ``(images, soft targets [B, K])``."""
        targets = one_hot_smoothed(labels, self.num_classes, self.label_smoothing)
        if not self.enabled or float(torch.rand((), generator=generator)) >= self.prob:
            return images, targets
        lam, use_cutmix = self._sample_lambda(generator)
        images = images.clone()
        if use_cutmix:
            height, width = images.shape[-2:]
            cut = math.sqrt(1.0 - lam)
            box_h, box_w = int(height * cut), int(width * cut)
            cy = int(torch.randint(0, height, (), generator=generator))
            cx = int(torch.randint(0, width, (), generator=generator))
            top, bottom = max(cy - box_h // 2, 0), min(cy + box_h // 2, height)
            left, right = max(cx - box_w // 2, 0), min(cx + box_w // 2, width)
            images[..., top:bottom, left:right] = images.flip(0)[..., top:bottom, left:right]
            # The box may be clipped at the border: the label weight follows the pasted area.
            lam = 1.0 - (bottom - top) * (right - left) / float(height * width)
        else:
            images = images * lam + images.flip(0) * (1.0 - lam)
        targets = targets * lam + targets.flip(0) * (1.0 - lam)
        return images, targets

    def __repr__(self) -> str:
        return (f"Mixup(mixup_alpha={self.mixup_alpha}, cutmix_alpha={self.cutmix_alpha}, prob={self.prob}, "
                f"switch_prob={self.switch_prob}, label_smoothing={self.label_smoothing})")


def _sample_gamma(alpha: float, generator: torch.Generator) -> float:
    """Gamma(alpha, 1) by Marsaglia and Tsang's method, using only ``generator``'s draws."""
    if alpha < 1.0:
        # Boost: Gamma(a) = Gamma(a + 1) * U^(1/a).
        u = float(torch.rand((), generator=generator, dtype=torch.float64))
        return _sample_gamma(alpha + 1.0, generator) * u ** (1.0 / alpha)
    d = alpha - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = float(torch.randn((), generator=generator, dtype=torch.float64))
        v = (1.0 + c * x) ** 3
        if v <= 0:
            continue
        u = float(torch.rand((), generator=generator, dtype=torch.float64))
        if math.log(max(u, 1e-300)) < 0.5 * x * x + d - d * v + d * math.log(v):
            return d * v


def _sample_beta(alpha: float, generator: torch.Generator) -> float:
    """Beta(alpha, alpha) from two Gamma draws (torch.distributions takes no generator)."""
    a = _sample_gamma(alpha, generator)
    b = _sample_gamma(alpha, generator)
    return a / (a + b)


# ------------------------------------------------------------------------------------------------
# Pipelines used by the example scripts
# ------------------------------------------------------------------------------------------------
def build_train_transform(image_size: int | Sequence[int], mean: Sequence[float], std: Sequence[float], *,
                          scale: tuple[float, float] = (0.08, 1.0), hflip: float = 0.5,
                          rand_augment: str | None = "rand-m9-mstd0.5-inc1", reprob: float = 0.25,
                          interpolation: int = Image.BICUBIC, mode: str = "RGB") -> Compose:
    """The DeiT training pipeline: random resized crop, flip, RandAugment, to tensor, normalise, erase.

    ``rand_augment=None`` (or ``"none"``) and ``reprob=0`` switch those parts off.
    """
    steps: list[Transform] = [RandomResizedCrop(image_size, scale=scale, interpolation=interpolation)]
    if hflip > 0:
        steps.append(RandomHorizontalFlip(hflip))
    if rand_augment and rand_augment.lower() != "none":
        fill = tuple(min(255, max(0, round(255 * m))) for m in mean)
        steps.append(RandAugment.from_config_str(rand_augment, fill=fill))
    steps += [ToTensor(mode), Normalize(mean, std)]
    if reprob > 0:
        steps.append(RandomErasing(p=reprob))
    return Compose(steps)


def build_eval_transform(image_size: int | Sequence[int], mean: Sequence[float], std: Sequence[float], *,
                         interpolation: int = Image.BILINEAR, mode: str = "RGB") -> Compose:
    """Evaluation pipeline: resize to ``image_size``, to tensor, normalise.

    This is exactly what the saved ``ViTImageProcessor`` does, so the accuracy measured during
    training is the accuracy that ``pipeline("image-classification")`` reproduces.
    """
    return Compose([Resize(image_size, interpolation=interpolation), ToTensor(mode), Normalize(mean, std)])
