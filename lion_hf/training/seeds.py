# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Seeds of the example scripts' random draws that are pure functions of where the run is (exact on resume)."""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["derived_seed"]


def derived_seed(*parts: Any) -> int:
    """A 63-bit seed that is a pure function of ``parts`` (no dependence on PYTHONHASHSEED).

    The parts are joined by their ``str`` with ``-``, e.g. ``derived_seed(seed, epoch, batch, process)``.
    """
    digest = hashlib.sha256("-".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
