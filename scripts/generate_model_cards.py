#!/usr/bin/env python
# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Write (or check) the cards of the planned LION checkpoint families into ``model_cards/``.

Every card is rendered by :func:`lion_hf.hub.families.render_family_cards` from the one card template
of the package (``lion_hf/hub/templates/model_card.md``); the files in ``model_cards/`` are outputs,
never edited by hand. ``--check`` exits 1 when
a committed card differs from what the code renders (run it in CI after changing the template).

    python scripts/generate_model_cards.py            # rewrite model_cards/<family>.md
    python scripts/generate_model_cards.py --check    # verify they are up to date
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from lion_hf.hub.families import DEFAULT_NAMESPACE, render_family_cards

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "model_cards"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT, help="where the <family>.md cards go")
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="Hub namespace of the planned repositories")
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[\w.-]+", args.namespace) or args.namespace.strip(".-") != args.namespace:
        parser.error(f"--namespace must be a Hub user or organisation name, got {args.namespace!r}")
    if args.output_dir.exists() and not args.output_dir.is_dir():
        parser.error(f"--output-dir {args.output_dir} is a file")

    cards = render_family_cards(namespace=args.namespace)
    stale = []
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, card in cards.items():
        path = args.output_dir / f"{name}.md"
        text = str(card) + "\n"
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date (rerun scripts/generate_model_cards.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    print(f"{'checked' if args.check else 'wrote'} {len(cards)} cards in {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
