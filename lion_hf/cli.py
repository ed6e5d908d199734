# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Console front ends: ``lion-convert``, ``lion-publish`` and the quick-start demo.

They parse arguments, call the library (``lion_hf.conversion``, ``lion_hf.hub.publish``,
``lion_hf.demo``) and report to the terminal; the library functions themselves log and return values.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .conversion import MLM_ARCH_TYPES, VISION_MASK_TYPES, VISION_ORDERS


def _canonical(table: dict[str, str]):
    """An argparse ``type`` accepting a choice of ``table`` in any letter case (``decay`` for ``Decay``)."""
    names = {key.lower(): key for key in table}

    def parse(value: str) -> str:
        return names.get(value.lower(), value)

    return parse


def _add_convert_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="the original checkpoint (.pth/.pt, or .safetensors)")
    parser.add_argument("output_dir", help="new or empty folder for the save_pretrained output")
    parser.add_argument("--num_heads", "--num-heads", type=int, required=True, help="attention heads per layer")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output_dir")
    parser.add_argument("--allow-global", "--allow_global", dest="allow_globals", action="append", default=[],
                        metavar="MODULE.NAME",
                        help="let the unpickler build this class as well (repeatable); only for files you trust")


def _convert_parser_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lion-convert", description=(
        "Write a save_pretrained folder from an original LION checkpoint (models_lion.py or bert_layers.py)."))
    sub = parser.add_subparsers(dest="kind", required=True)
    vision = sub.add_parser("vision", help="DeiT-style vision checkpoint")
    _add_convert_common(vision)
    vision.add_argument("--mask_type", "--mask-type", required=True, type=_canonical(VISION_MASK_TYPES),
                        choices=sorted(VISION_MASK_TYPES), help="the reference's mask_type")
    vision.add_argument("--order", default="Normal", type=_canonical(VISION_ORDERS), choices=sorted(VISION_ORDERS),
                        help="patch order: Normal, or S for the two snake scans (default: %(default)s)")
    vision.add_argument("--pos_emb", "--pos-emb", action=argparse.BooleanOptionalAction, default=True,
                        help="the checkpoint has position embeddings (default: %(default)s)")
    vision.add_argument("--cls_tok", "--cls-tok", action=argparse.BooleanOptionalAction, default=False,
                        help="classify from the class token instead of mean pooling (default: %(default)s)")
    vision.add_argument("--img_size", "--img-size", type=int, default=224, help="image size (default: %(default)s)")
    vision.add_argument("--patch_size", "--patch-size", type=int, default=16, help="patch size (default: %(default)s)")
    mlm = sub.add_parser("mlm", help="M2-BERT-style MLM checkpoint")
    _add_convert_common(mlm)
    mlm.add_argument("--arch_type", "--arch-type", required=True, type=_canonical(MLM_ARCH_TYPES),
                     choices=sorted(MLM_ARCH_TYPES), help="the reference's architecture name")
    mlm.add_argument("--tokenizer", help="tokenizer folder or vocab.txt saved next to the model (BERT uncased)")
    args = parser.parse_args(argv)
    for name in ("num_heads", "img_size", "patch_size"):
        if getattr(args, name, 1) < 1:
            parser.error(f"--{name} must be a positive integer, got {getattr(args, name)}")
    return args


def convert_main(argv=None) -> int:
    """``lion-convert vision|mlm CHECKPOINT OUTPUT_DIR ...``: write a save_pretrained folder from an
    original LION checkpoint. Exits 2 with a one-line ``lion-convert: error: ...`` when it cannot."""
    from transformers.utils import logging as hf_logging

    from .conversion import convert_checkpoint  # noqa: PLC0415

    args = _convert_parser_args(argv)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # one small file per step: the bars only interleave with the messages
    try:
        model = convert_checkpoint(args)
    except (ValueError, OSError) as error:
        print(f"lion-convert: error: {error}", file=sys.stderr)
        return 2
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    print(f"wrote {type(model).__name__} to {args.output_dir}")
    return 0


def publish_main(argv: Sequence[str] | None = None) -> int:
    """``lion-publish FOLDER REPO_ID``: publish a trained LION checkpoint (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="lion-publish",
        description="Publish a trained LION checkpoint (a save_pretrained folder or a Trainer run) to the "
                    "Hugging Face Hub with its model card and remote code.")
    parser.add_argument("folder", help="save_pretrained folder or training run output_dir")
    parser.add_argument("repo_id", help="target repository, owner/name")
    visibility = parser.add_mutually_exclusive_group()
    visibility.add_argument("--private", dest="private", action="store_true", default=None,
                            help="create the repository as private")
    visibility.add_argument("--public", dest="private", action="store_false", help="create it as public")
    parser.add_argument("--revision", help="branch to commit to (created if missing; default main)")
    parser.add_argument("--commit-message")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument("--family", help="planned checkpoint family (default: the family whose preset matches the "
                                         "config, when --dataset is that family's data; else a custom model)")
    parser.add_argument("--metrics-file", help="JSON of the run's metrics (default: all_results.json / "
                                               "eval_results.json). Any card option replaces the run's own card")
    parser.add_argument("--dataset", help="Hub id of the dataset the metrics were measured on")
    parser.add_argument("--dataset-name", help="display name of that dataset")
    parser.add_argument("--dataset-config")
    parser.add_argument("--dataset-split", help="split of the metrics (default: the one the run's own card names, "
                                                "else validation)")
    parser.add_argument("--base-model", help="checkpoint this one was fine-tuned from (owner/name)")
    parser.add_argument("--license", default="apache-2.0", help="Hub licence id (default: %(default)s)")
    parser.add_argument("--tag", action="append", default=[], dest="tags", help="extra card tag (repeatable)")
    parser.add_argument("--endpoint", help="Hub endpoint (default HF_ENDPOINT or huggingface.co)")
    parser.add_argument("--token", help="Hub token (default HF_TOKEN or the saved login)")
    parser.add_argument("--dry-run", action="store_true",
                        help="stage, validate and print every file it would upload or delete; nothing is sent")
    parser.add_argument("--staging-dir", help="stage here instead of a temporary folder")
    args = parser.parse_args(argv)
    from .hub.publish import publish

    try:
        result = publish(
            args.folder, args.repo_id, private=args.private, revision=args.revision,
            commit_message=args.commit_message, create_pr=args.create_pr, token=args.token,
            endpoint=args.endpoint, dry_run=args.dry_run, staging_dir=args.staging_dir, family=args.family,
            metrics_file=args.metrics_file, dataset=args.dataset, dataset_name=args.dataset_name,
            dataset_config=args.dataset_config, dataset_split=args.dataset_split, base_model=args.base_model,
            license=args.license, tags=args.tags, before_upload=_print_plan)
    except (ValueError, OSError) as error:
        print(f"lion-publish: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except Exception as error:  # httpx transport errors (no connection, timeout) do not derive from OSError
        if not type(error).__module__.startswith(("httpx", "httpcore")):
            raise
        print(f"lion-publish: error: could not reach the Hub ({_one_line(error)}); check --endpoint and the network",
              file=sys.stderr)
        return 2
    if args.dry_run:
        print(f"dry run: nothing was sent; the staged repository is {result.staged.folder}")
    else:
        print(f"published {args.repo_id}: {result.commit_url}")
    return 0


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _shown(name: str) -> str:
    """A file name as printed: one with control characters (a crafted name could fake lines of the plan or
    drive the terminal) is shown escaped."""
    return name if name.isprintable() else ascii(name)


def _print_plan(plan) -> None:
    """Print an :class:`~lion_hf.hub.publish.UploadPlan`: one file a line, before anything is sent."""
    where = plan.repo_id + (f"@{plan.revision}" if plan.revision else "")
    if plan.repo_exists is False:
        state = "a new repository"
    elif plan.repo_exists:
        state = "an existing repository"
    else:
        state = f"not checked: {plan.note}"
    print(f"upload to {where} ({state}): {len(plan.upload)} files")
    replaced = set(plan.replace)
    for name in plan.upload:
        print(f"  {_shown(name)}{'  (replaces a file lion-publish did not write)' if name in replaced else ''}")
    if plan.delete:
        print(f"delete (written by an earlier lion-publish, not part of this upload): {len(plan.delete)} files")
        for name in plan.delete:
            print(f"  {_shown(name)}")
    elif plan.repo_exists:
        print("delete: nothing")
    if plan.changed:
        print(f"changed since the last lion-publish (never deleted): {', '.join(map(_shown, plan.changed))}")
    if plan.foreign:
        print(f"left as they are (not written by lion-publish): {', '.join(map(_shown, plan.foreign))}")


def _demo_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="LION quick start: train on the digits, classify a held-out image")
    p.add_argument("--output_dir", default="demo_output/lion-s-digits")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--min_accuracy", type=float, default=0.90)
    return p.parse_args(argv)


def demo_main(argv: list[str] | None = None) -> int:
    """``make demo``: train LION-S on the digits, check the Hub-ready folder and the accuracy, classify a
    held-out digit with ``pipeline``; exits non-zero when a step fails."""
    from .demo import HUB_FILES, classify_held_out, train

    args = _demo_args(argv)
    if args.epochs < 1:
        print(f"FAILED: --epochs must be at least 1, got {args.epochs}", file=sys.stderr)
        return 2
    output_dir = Path(args.output_dir)
    started = time.time()
    try:
        results = train(output_dir, args.epochs)
    except subprocess.CalledProcessError as error:
        print(f"FAILED: the training script exited with status {error.returncode} (its messages are above)",
              file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as error:  # no checkout, or unreadable results
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    train_minutes = (time.time() - started) / 60
    missing = [name for name in HUB_FILES if not (output_dir / name).is_file()]
    if missing:
        print(f"FAILED: the output folder {output_dir} lacks {missing}", file=sys.stderr)
        return 1
    accuracy = results["eval_top1"]
    label, score, truth = classify_held_out(output_dir)
    print()
    print(f"trained LION-S on the digits in {train_minutes:.1f} min (launch included): "
          f"test accuracy {accuracy:.1%} (top-5 {results.get('eval_top5', float('nan')):.1%})")
    print(f"Hub-ready folder: {output_dir}/ ({', '.join(HUB_FILES)})")
    print(f"pipeline('image-classification') on a held-out digit (true label {truth}): "
          f"label {label}, score {score:.3f}")
    if accuracy < args.min_accuracy:
        print(f"FAILED: accuracy {accuracy:.1%} is below {args.min_accuracy:.0%}", file=sys.stderr)
        return 1
    return 0
