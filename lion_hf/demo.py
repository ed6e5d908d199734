# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""The quick start (``make demo``): train LION-S on the embedded digits, then classify a held-out image.

It runs the image-classification example script through ``accelerate launch`` on the CPU (about a
minute on 2 cores; no download of any kind), checks the test accuracy, checks that the output
folder is Hub-ready (config with ``auto_map``, safetensors weights, the flat modeling code that lets it load
with ``trust_remote_code=True`` where lion_hf is not installed, image processor, model card), then loads it
with ``pipeline("image-classification")`` and classifies a test image the model never saw::

    python -m lion_hf.demo [--output_dir demo_output/lion-s-digits] [--epochs 40]

The terminal front end (arguments, report) is ``lion_hf.cli.demo_main``; this module does the work.

The process exits non-zero when a step fails or the accuracy is below ``--min_accuracy``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from transformers.utils import logging

logger = logging.get_logger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "examples" / "image_classification" / "run_image_classification.py"
HUB_FILES = ("config.json", "model.safetensors", "configuration_lion.py", "modeling_lion.py",
             "preprocessor_config.json", "README.md")

#: The digits recipe: the DeiT machinery with the augmentations that make no sense for 8x8 digits
#: (flips, Mixup/CutMix, RandAugment's colour ops, erasing) switched off, and a learning rate and
#: schedule sized for ~1,400 images.
DEMO_ARGS = [
    "--dataset", "digits", "--mask_type", "selective",
    "--image_size", "16", "--patch_size", "4", "--hidden_size", "64", "--num_hidden_layers", "4",
    "--num_attention_heads", "4", "--intermediate_size", "256",
    "--per_device_train_batch_size", "64", "--learning_rate", "3e-3", "--warmup_epochs", "2",
    "--crop_scale_min", "0.8", "--hflip", "0", "--mixup", "0", "--cutmix", "0", "--rand_augment", "none",
    "--reprob", "0", "--repeated_augmentation", "1", "--smoothing", "0.1", "--drop_path", "0.05",
    "--logging_steps", "50",
    "--model_name", "lion-s-digits", "--seed", "0",
]


def train(output_dir: Path, epochs: int) -> dict:
    """Run the example script through ``accelerate launch --cpu`` and return its results."""
    if not SCRIPT.is_file():
        raise FileNotFoundError(f"the example script is not at {SCRIPT}; the demo runs from a checkout of the "
                                "repository (pip install -e .)")
    command = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
               "--num_machines", "1", "--num_cpu_threads_per_process", str(os.cpu_count() or 1),
               "--mixed_precision", "no", "--dynamo_backend", "no", str(SCRIPT),
               *DEMO_ARGS, "--num_train_epochs", str(epochs), "--output_dir", str(output_dir),
               "--overwrite_output_dir"]
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "TOKENIZERS_PARALLELISM": "false"}
    logger.warning("$ accelerate launch --cpu %s", " ".join(command[command.index(str(SCRIPT)):]))
    subprocess.run(command, check=True, env=env)
    return json.loads((output_dir / "all_results.json").read_text())


def classify_held_out(output_dir: Path) -> tuple[str, float, str]:
    """Classify the first test digit with ``pipeline``; returns (predicted label, score, true label)."""
    import lion_hf  # noqa: F401  (registers the LION classes with the Auto classes used by pipeline)
    from transformers import pipeline

    from lion_hf.data import load_digits_dataset

    test = load_digits_dataset(seed=0)["test"]  # the same held-out split the training script evaluated on
    example = test[0]
    image_path = output_dir.parent / "held_out_digit.png"
    example["image"].resize((64, 64)).save(image_path)  # a copy to look at; the pipeline gets the 8x8 original
    classifier = pipeline("image-classification", model=str(output_dir), device="cpu")
    best = classifier(example["image"], top_k=1)[0]
    true_label = test.features["label"].int2str(example["label"])
    return best["label"], float(best["score"]), true_label


if __name__ == "__main__":
    from lion_hf.cli import demo_main

    sys.exit(demo_main())
