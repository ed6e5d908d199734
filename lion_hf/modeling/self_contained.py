# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Self-contained ``save_pretrained`` folders: ``auto_map`` and the flat modeling code next to the weights.

``LionConfig.save_pretrained`` (and so ``model.save_pretrained``, the ``Trainer`` and the example scripts)
calls into this module, which reuses the publishing bundle (:mod:`lion_hf.hub.bundle`): the same flat files
and the same ``auto_map`` that ``lion-publish`` uploads. A saved folder then loads

* with ``import lion_hf``: through the registered classes (no remote code runs);
* without it: with ``AutoModel*.from_pretrained(folder, trust_remote_code=True)``, and without that flag
  transformers' standard message asks for it.

``configuration_lion`` imports this module by name at save time only: a static import would make the
bundler copy the Hub tooling into every bundle.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers.utils import logging

from ..hub.bundle import AUTO_MAP, BundleError, check_bundle, write_bundle

logger = logging.get_logger(__name__)


def full_auto_map(existing: dict[str, str] | None) -> dict[str, str]:
    """``existing`` (a config's ``auto_map``, or None) with an entry for every LION Auto class.

    Entries for other Auto classes are kept; ours win for the classes LION provides.
    """
    merged = dict(existing or {})
    merged.update(AUTO_MAP)
    return merged


def write_modeling_code(folder: str | os.PathLike) -> list[str]:
    """Write the flat modeling code into ``folder`` and check it the way transformers' loader will.

    Returns the written file names. Raises :class:`~lion_hf.hub.bundle.BundleError` when the bundle
    would not load (a package module that cannot be flattened).
    """
    names = write_bundle(folder)
    problems = check_bundle(folder)
    if problems:
        raise BundleError(f"the modeling code written to {folder} would not load as remote code: "
                          + "; ".join(problems))
    logger.info("Remote-code files saved in %s: %s", folder, ", ".join(names))
    return names


def prepare_push(config: Any, save_directory: str | os.PathLike, kwargs: dict[str, Any]) -> tuple[str, dict]:
    """Create the Hub repository of ``config.save_pretrained(..., push_to_hub=True)`` before anything is written;
    returns its id and the folder's file timestamps (what changes after them is uploaded)."""
    from transformers.utils.hub import hf_api

    Path(save_directory).mkdir(parents=True, exist_ok=True)
    repo_id = kwargs.pop("repo_id", str(save_directory).split(os.path.sep)[-1])
    hub_kwargs = {key: kwargs[key] for key in ("private", "token") if key in kwargs}
    repo_id = hf_api().create_repo(repo_id, exist_ok=True, **hub_kwargs).repo_id
    return repo_id, config._get_files_timestamps(save_directory)


def finish_push(config: Any, save_directory: str | os.PathLike, repo_id: str, timestamps: dict,
                kwargs: dict[str, Any]) -> None:
    """Upload what ``save_pretrained`` wrote (config and modeling code) to ``repo_id``."""
    config._upload_modified_files(save_directory, repo_id, timestamps, commit_message=kwargs.get("commit_message"),
                                  token=kwargs.get("token"))


__all__ = ["full_auto_map", "write_modeling_code"]
