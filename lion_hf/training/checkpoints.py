# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Training checkpoints of the example scripts: atomic, tied to their run, and loaded without unpickling.

A checkpoint is a folder ``checkpoint-<step>`` in the run's output folder. It is written into a hidden
temporary folder (``.checkpoint-<step>.tmp``), every file is flushed to disk, the folder is renamed into
place, and only then is the completion marker :data:`COMPLETE_MARKER` written (listing every file with its
size). A folder without a valid marker is incomplete (a kill while writing, or an older format) and
``--resume_from_checkpoint latest`` passes over it with a logged notice. As with accelerate's own checkpoints,
every process writes into the same folder: on several machines the output folder must be on a shared file
system (the main process renames the folder and writes the marker).

The training state (:data:`STATE_FILE`) records the run the checkpoint belongs to (:func:`run_fingerprint`:
a hash of the model configuration, a summary of the data, the seed and the arguments that shape the
training), so that ``latest`` only takes a checkpoint of the same run, and the save limit only ever
removes older checkpoints of the same run, never the newest one.

Extra tensors (the EMA weights) are stored as safetensors (:func:`save_tensors` / :func:`load_tensors`):
nothing in a checkpoint is unpickled by this module (accelerate loads its own files with
``weights_only=True``).

:class:`OutputGuard` keeps the scripts from overwriting files in the output folder that they did not
write themselves, unless ``--overwrite_output_dir`` is given.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from transformers.utils import logging

logger = logging.get_logger(__name__)

__all__ = [
    "COMPLETE_MARKER",
    "EMA_FILE",
    "MODEL_CONFIG_FILE",
    "STATE_FILE",
    "CheckpointError",
    "OutputGuard",
    "check_resume_checkpoint",
    "checkpoint_problem",
    "checkpoint_step",
    "epoch_batches",
    "find_latest_checkpoint",
    "fingerprint_arguments",
    "list_checkpoints",
    "load_accelerate_state",
    "load_tensors",
    "read_training_state",
    "resolve_resume_checkpoint",
    "resume_position",
    "run_differences",
    "run_fingerprint",
    "save_checkpoint",
    "save_tensors",
    "training_state",
    "validate_checkpointing_steps",
    "validate_resume_from_checkpoint",
    "validate_save_total_limit",
]

STATE_FILE = "training_state.json"
MODEL_CONFIG_FILE = "model_config.json"
COMPLETE_MARKER = "checkpoint_complete.json"
EMA_FILE = "ema.safetensors"
MANIFEST_FILE = ".lion_outputs.json"
MARKER_FORMAT = 1
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
_TEMP_NAME = re.compile(r"^\.checkpoint-\d+\.(tmp|old)$")
#: Configuration fields that do not describe the model (left out of the run's fingerprint).
_VOLATILE_CONFIG_KEYS = frozenset({"transformers_version", "_name_or_path", "torch_dtype", "dtype", "architectures"})


class CheckpointError(ValueError):
    """A checkpoint or output folder that cannot be used as asked; the message says what to do."""


# --------------------------------------------------------------------------------------------------
# Flags
# --------------------------------------------------------------------------------------------------
def validate_checkpointing_steps(value: str | None) -> None:
    """``--checkpointing_steps`` is unset, ``epoch`` or a positive integer (optimizer steps)."""
    if value not in (None, "epoch") and (not str(value).isdigit() or int(value) < 1):
        raise CheckpointError(f"--checkpointing_steps must be a positive integer or 'epoch', got {value!r}")


def validate_resume_from_checkpoint(value: str | None) -> None:
    """``--resume_from_checkpoint`` is unset, ``latest`` or an existing folder."""
    if value not in (None, "latest") and not Path(value).is_dir():
        raise CheckpointError(f"--resume_from_checkpoint {value!r} is not a folder")


def validate_save_total_limit(limit: int | None) -> None:
    """``--save_total_limit`` keeps the newest ``limit`` checkpoints: it must be at least 1 (or unset)."""
    if limit is not None and limit < 1:
        raise CheckpointError(f"--save_total_limit must be at least 1 (the newest checkpoint is always kept), got "
                              f"{limit}; leave it out to keep every checkpoint")


# --------------------------------------------------------------------------------------------------
# The run a checkpoint belongs to
# --------------------------------------------------------------------------------------------------
def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_fingerprint(config: Any, data: dict[str, Any], seed: int, arguments: dict[str, Any]) -> dict[str, Any]:
    """What identifies a training run: ``{"id", "config", "data", "seed", "arguments"}``.

    ``config`` is a ``PretrainedConfig`` (or its dict; hashed without version fields), ``data`` a small
    JSON-able summary of the data (names, resolved paths, sizes, counts), ``arguments`` the flags that shape
    the training (not the output folder, logging or Hub flags). ``id`` is a hash of all four.
    """
    config_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    config_dict = {k: v for k, v in config_dict.items() if k not in _VOLATILE_CONFIG_KEYS}
    run = {"config": _digest(config_dict), "data": json.loads(json.dumps(data, default=str)), "seed": int(seed),
           "arguments": json.loads(json.dumps(arguments, default=str))}
    run["id"] = _digest(run)
    return run


def fingerprint_arguments(arguments: Mapping[str, Any], excluded: Iterable[str]) -> dict[str, Any]:
    """The arguments that shape a run (for :func:`run_fingerprint`): all but ``excluded``, sorted by name."""
    excluded = frozenset(excluded)
    return {k: v for k, v in sorted(arguments.items()) if k not in excluded}


def run_differences(stored: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """Human-readable differences between a checkpoint's run and this one (empty: the same run)."""
    if not isinstance(stored, dict):
        return ["the checkpoint records no run (written by an older version)"]
    if stored.get("id") == current.get("id"):
        return []
    found = []
    if stored.get("config") != current.get("config"):
        found.append("the model configuration")
    if stored.get("seed") != current.get("seed"):
        found.append(f"seed {stored.get('seed')} -> {current.get('seed')}")
    for part in ("data", "arguments"):
        old, new = stored.get(part) or {}, current.get(part) or {}
        changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if changed:
            shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:4])
            more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
            found.append(f"{part} ({shown}{more})")
    return found or ["the run's fingerprint"]


# --------------------------------------------------------------------------------------------------
# Reading checkpoints
# --------------------------------------------------------------------------------------------------
def checkpoint_step(path: Path) -> int | None:
    match = _CHECKPOINT_NAME.match(Path(path).name)
    return int(match.group(1)) if match else None


def list_checkpoints(output_dir: Path) -> list[Path]:
    """``checkpoint-<step>`` folders of ``output_dir``, oldest step first (complete or not)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [p for p in output_dir.iterdir() if p.is_dir() and not p.is_symlink() and checkpoint_step(p) is not None]
    return sorted(found, key=checkpoint_step)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} cannot be read ({type(err).__name__}: {err})") from err


def checkpoint_problem(path: Path) -> str | None:
    """Why the checkpoint folder ``path`` is not complete, or ``None`` when it is.

    Complete means: the marker exists, parses, and every file it lists is there with its size.
    """
    path = Path(path)
    marker = path / COMPLETE_MARKER
    if not marker.is_file():
        return (f"no completion marker ({COMPLETE_MARKER}): it was interrupted while being written, or written by "
                "an older version of the script")
    try:
        content = _read_json(marker)
    except CheckpointError as err:
        return str(err)
    files = content.get("files") if isinstance(content, dict) else None
    if not isinstance(files, dict):
        return f"its {COMPLETE_MARKER} lists no files"
    for name, size in files.items():
        target = path / name
        if target.is_symlink() or ".." in Path(name).parts:
            return f"{name} is a symbolic link or outside the folder (a checkpoint holds only its own files)"
        if not target.is_file():
            return f"{name} is missing"
        if target.stat().st_size != size:
            return f"{name} has {target.stat().st_size} bytes, the marker says {size}"
    if STATE_FILE not in files:
        return f"it holds no {STATE_FILE}"
    return None


def read_training_state(path: Path, script: str) -> dict[str, Any]:
    """The training state of a complete checkpoint of ``script``; :class:`CheckpointError` otherwise."""
    path = Path(path)
    state_file = path / STATE_FILE
    if not state_file.is_file():
        raise CheckpointError(f"{path} is not a checkpoint of {script} (no {STATE_FILE})")
    state = _read_json(state_file)
    if not isinstance(state, dict):
        raise CheckpointError(f"{state_file} does not hold a training state")
    if state.get("script") != script:
        raise CheckpointError(f"{path} is a checkpoint of {state.get('script')!r}, not of {script}")
    pickled = sorted(p.name for p in path.glob("custom_checkpoint_*.pkl"))
    if pickled:
        raise CheckpointError(f"checkpoint {path} holds {', '.join(pickled)}: pickled state that {script} never writes "
                              "(its EMA weights are safetensors). It is not loaded, since unpickling runs code from the "
                              "file; delete it if you trust the folder's origin, or resume from another checkpoint")
    problem = checkpoint_problem(path)
    if problem is not None:
        raise CheckpointError(f"checkpoint {path} is incomplete: {problem}. Resume from an earlier checkpoint "
                              "(--resume_from_checkpoint latest takes the newest complete one)")
    for key in ("completed_steps", "epoch", "batches_in_epoch"):
        if not isinstance(state.get(key), int) or isinstance(state[key], bool) or state[key] < 0:
            raise CheckpointError(f"{state_file}: {key} is {state.get(key)!r}, not a step count")
    history = state.get("history", [])
    if not isinstance(history, list) or not all(isinstance(entry, dict) for entry in history):
        raise CheckpointError(f"{state_file}: history is not a list of evaluation records")
    consumed = state.get("consumed", {})
    if not isinstance(consumed, dict) or not all(isinstance(v, int) and v >= 0 for v in consumed.values()):
        raise CheckpointError(f"{state_file}: consumed is not a count of examples per process")
    return state


def find_latest_checkpoint(output_dir: Path, run: dict[str, Any], script: str,
                           log: Callable[[str], None] | None = None) -> tuple[Path | None, list[str]]:
    """The newest complete checkpoint of this run in ``output_dir``, and a notice per folder passed over."""
    log = log or logger.warning
    notices = []
    for path in reversed(list_checkpoints(output_dir)):
        problem = checkpoint_problem(path)
        reason = None
        if problem is not None:
            reason = f"incomplete: {problem}"
        else:
            try:
                state = read_training_state(path, script)
            except CheckpointError as err:
                reason = str(err)
            else:
                differences = run_differences(state.get("run"), run)
                if not differences:
                    return path, notices
                reason = "it belongs to another run (differs in " + "; ".join(differences) + ")"
        notice = f"--resume_from_checkpoint latest: skipping {path.name}: {reason}"
        notices.append(notice)
        log(notice)
    return None, notices


def resolve_resume_checkpoint(resume_from_checkpoint: str, output_dir: Path, run: dict[str, Any], script: str,
                              log: Callable[[str], None] | None = None) -> Path:
    """The folder ``--resume_from_checkpoint`` names: ``latest`` is the newest complete checkpoint of this run.

    For ``latest``, each folder passed over is logged through ``log`` (default ``logger.warning``); when none
    is left, :class:`CheckpointError` lists why each was passed over.
    """
    if resume_from_checkpoint != "latest":
        return Path(resume_from_checkpoint)
    path, notices = find_latest_checkpoint(output_dir, run, script, log=log)
    if path is None:
        found = f" ({len(notices)} passed over: " + "; ".join(n.split(": ", 1)[1] for n in notices) + ")" \
            if notices else ""
        raise CheckpointError(f"--resume_from_checkpoint latest: no complete checkpoint of this run in "
                              f"{output_dir}{found}. Pass a checkpoint folder to resume from it anyway, or leave "
                              "out --resume_from_checkpoint to start afresh")
    return path


def check_resume_checkpoint(path: Path, script: str, run: dict[str, Any],
                            model_fields: Callable[[dict[str, Any]], Iterable[tuple[str, Any, Any]]],
                            log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The training state of the checkpoint ``path`` to resume from, refusing one of another script or model.

    ``model_fields(saved)`` gives ``(key, stored, current)`` for each model field that must agree, ``saved``
    being the checkpoint's :data:`MODEL_CONFIG_FILE`; a difference raises :class:`CheckpointError`. A
    checkpoint of another run (other data, seed or arguments) is accepted with a warning through ``log``
    (default ``logger.warning``): the result is then not that of an uninterrupted run.
    """
    log = log or logger.warning
    path = Path(path)
    state = read_training_state(path, script)
    try:
        saved = json.loads((path / MODEL_CONFIG_FILE).read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path}: cannot read {MODEL_CONFIG_FILE} ({err})") from err
    for key, stored, current in model_fields(saved):
        if stored != current:
            raise CheckpointError(f"checkpoint {path} holds another model: {key}={stored!r}, this run has {current!r}")
    differences = run_differences(state.get("run"), run)
    if differences:
        log(f"{path} was written by another run (it differs in {'; '.join(differences)}); resuming from "
            "it as asked, so the result is not that of an uninterrupted run of these arguments")
    return state


def load_accelerate_state(accelerator, path: Path) -> None:
    """``accelerator.load_state(path)``; any failure (a damaged file that kept its size) is a :class:`CheckpointError`."""
    try:
        accelerator.load_state(str(path))
    except Exception as err:  # a damaged file that kept its size: safetensors/torch errors of every kind
        raise CheckpointError(f"cannot load checkpoint {path} ({type(err).__name__}: {err}); it is damaged or of "
                              "another model: resume from an earlier checkpoint") from err


def resume_position(state: dict[str, Any], process_index: int) -> tuple[int, int, int, int, list[dict[str, Any]]]:
    """Where a training state left off: ``(completed_steps, epoch, batches_in_epoch, consumed, history)``.

    ``consumed`` is the number of examples this process (``process_index``) had read in the epoch.
    """
    consumed = state.get("consumed", {}).get(str(process_index), 0)
    return state["completed_steps"], state["epoch"], state["batches_in_epoch"], consumed, state.get("history", [])


def epoch_batches(accelerator, train_loader: Iterable, train_data: Any, epoch: int, *, skip_batches: int,
                  consumed: int, streaming: bool) -> Iterable:
    """The training batches of ``epoch``, from where a resumed run left off (``skip_batches``/``consumed`` are
    non-zero only right after a resume).

    A stream (``streaming``: ``train_data`` is the process's iterable data set behind ``train_loader``) is
    set to the epoch and skips the ``consumed`` examples this process had read; a map-style loader (prepared
    by accelerate) is set to the epoch and skips its first ``skip_batches`` batches.
    """
    if streaming:
        train_data.set_epoch(epoch)
        train_data.skip(consumed)
        return train_loader
    train_loader.set_epoch(epoch)
    return accelerator.skip_first_batches(train_loader, skip_batches) if skip_batches else train_loader


# --------------------------------------------------------------------------------------------------
# Writing checkpoints
# --------------------------------------------------------------------------------------------------
def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_json_synced(path: Path, content: Any) -> None:
    with open(path, "w") as handle:
        json.dump(content, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())


def _files_of(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def save_tensors(tensors: dict[str, Any], path: Path) -> None:
    """Tensors only, as safetensors (contiguous CPU copies)."""
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


def load_tensors(path: Path) -> dict[str, Any]:
    """Tensors saved by :func:`save_tensors`; no unpickling."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file ({err})") from err


def training_state(script: str, step: int, epoch: int, batch_index: int, consumed: int, accelerator,
                   history: list[dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint needs beyond accelerate's state: where in the data the run is, and which run it is.

    ``consumed`` (examples read in this epoch) is gathered from every process, so all of them must call it.
    """
    import torch

    consumed_all = accelerator.gather(torch.tensor([consumed], device=accelerator.device)).tolist()
    return {"script": script, "completed_steps": step, "epoch": epoch, "batches_in_epoch": batch_index,
            "consumed": {str(i): int(c) for i, c in enumerate(consumed_all)}, "history": history, "run": run}


def save_checkpoint(accelerator, output_dir: Path, step: int, *, state: dict[str, Any],
                    write_extra: Callable[[Path], None] | None = None, limit: int | None = None,
                    log: Callable[[str], None] | None = None) -> Path:
    """Write ``checkpoint-<step>`` atomically; every process calls it (accelerate saves per process).

    ``state`` (with its ``"run"``) becomes :data:`STATE_FILE`; ``write_extra(folder)`` writes more files on the
    main process. With ``limit``, older complete checkpoints of the same run beyond the newest ``limit`` are
    removed afterwards (the one just written is always kept; other runs' checkpoints are never touched).
    """
    log = log or logger.info
    output_dir = Path(output_dir)
    final = output_dir / f"checkpoint-{step}"
    temporary = output_dir / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process:
        for stale in output_dir.iterdir():
            if _TEMP_NAME.match(stale.name) and stale.is_dir():
                shutil.rmtree(stale)
        temporary.mkdir()
    accelerator.wait_for_everyone()
    accelerator.save_state(str(temporary))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write_json_synced(temporary / STATE_FILE, state)
        if write_extra is not None:
            write_extra(temporary)
        for file in temporary.rglob("*"):
            if file.is_file():
                _fsync_file(file)
        for folder in [temporary, *(p for p in temporary.rglob("*") if p.is_dir())]:
            _fsync_dir(folder)
        files = _files_of(temporary)
        if final.exists():
            # A checkpoint of the same step (an earlier attempt of this run, or a run this one overwrites):
            # moved aside first, so that a kill leaves either the old or the new folder in place.
            aside = output_dir / f".checkpoint-{step}.old"
            os.replace(final, aside)
            os.replace(temporary, final)
            if aside.is_dir() and not aside.is_symlink():
                shutil.rmtree(aside)
            else:
                aside.unlink()
        else:
            os.replace(temporary, final)
        _fsync_dir(output_dir)
        _write_json_synced(final / COMPLETE_MARKER, {"format": MARKER_FORMAT, "step": int(step),
                                                     "run_id": state.get("run", {}).get("id"), "files": files})
        _fsync_dir(final)
        if limit is not None:
            _rotate(output_dir, final, state.get("script"), state.get("run", {}), limit, log)
    accelerator.wait_for_everyone()
    return final


def _rotate(output_dir: Path, keep: Path, script: str | None, run: dict[str, Any], limit: int,
            log: Callable[[str], None]) -> None:
    validate_save_total_limit(limit)
    ours = []
    for path in list_checkpoints(output_dir):
        if path == keep or checkpoint_problem(path) is not None:
            continue
        try:
            state = read_training_state(path, script or "")
        except CheckpointError:
            continue
        if not run_differences(state.get("run"), run):
            ours.append(path)
    # The one just written is kept; of the others, the newest (limit - 1).
    for old in ours[:max(len(ours) - (limit - 1), 0)]:
        log(f"--save_total_limit {limit}: removing {old.name}")
        shutil.rmtree(old)


# --------------------------------------------------------------------------------------------------
# The output folder
# --------------------------------------------------------------------------------------------------
class OutputGuard:
    """Keeps a script from overwriting files of the output folder that it did not write.

    The files a script writes at the end are recorded with their hashes in ``.lion_outputs.json``. Resuming
    into a non-empty folder is allowed when every top-level entry is a checkpoint, a tracker folder, or a
    recorded file still unchanged; anything else (a user's ``README.md``, notes, data) needs
    ``--overwrite_output_dir`` or another ``--output_dir``.
    """

    #: Tracker folders: ``logs`` (the accelerate scripts), ``runs`` (the Trainer's TensorBoard default).
    ALLOWED_FOLDERS = ("logs", "runs")

    def __init__(self, output_dir: Path):
        self.output_dir = Path(output_dir)
        self._before: dict[str, tuple[int, int]] = {}

    def _manifest(self) -> dict[str, str]:
        path = self.output_dir / MANIFEST_FILE
        if not path.is_file():
            return {}
        try:
            content = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return content if isinstance(content, dict) else {}

    @staticmethod
    def _hash(path: Path) -> str:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def foreign_entries(self) -> list[str]:
        """Top-level entries of the output folder this script did not write (sorted names)."""
        if not self.output_dir.is_dir():
            return []
        recorded = self._manifest()
        foreign = []
        for entry in sorted(self.output_dir.iterdir()):
            name = entry.name
            if name == MANIFEST_FILE or _TEMP_NAME.match(name):
                continue
            if entry.is_dir() and not entry.is_symlink() and (checkpoint_step(entry) is not None
                                                               or name in self.ALLOWED_FOLDERS):
                continue
            if entry.is_file() and not entry.is_symlink() and recorded.get(name) == self._hash(entry):
                continue
            foreign.append(name)
        return foreign

    def check(self, *, overwrite: bool, resuming: bool) -> None:
        """Raise :class:`CheckpointError` when the run would overwrite something it did not write."""
        if self.output_dir.exists() and not self.output_dir.is_dir():
            raise CheckpointError(f"--output_dir {self.output_dir} is a file, not a folder; choose a folder")
        if overwrite or not self.output_dir.is_dir() or not any(self.output_dir.iterdir()):
            return
        if not resuming:
            raise CheckpointError(f"--output_dir {self.output_dir} is not empty; pass --overwrite_output_dir, "
                                  "--resume_from_checkpoint, or another --output_dir")
        foreign = self.foreign_entries()
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise CheckpointError(f"--output_dir {self.output_dir} holds files this script did not write ({shown}); "
                                  "they could be overwritten by the run's results. Pass --overwrite_output_dir to "
                                  "allow it, or choose another --output_dir")

    def snapshot(self) -> None:
        """Remember the top-level files before the final outputs are written."""
        self._before = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in self.output_dir.iterdir()
                        if p.is_file()}

    def record(self, extra: Iterable[str] = ()) -> None:
        """Record the top-level files written (or changed) since :meth:`snapshot`, and ``extra`` names."""
        recorded = self._manifest()
        names = set(extra)
        for p in self.output_dir.iterdir():
            if p.is_file() and p.name != MANIFEST_FILE and not p.is_symlink():
                stat = (p.stat().st_size, p.stat().st_mtime_ns)
                if self._before.get(p.name) != stat:
                    names.add(p.name)
        for name in names:
            path = self.output_dir / name
            if path.is_file():
                recorded[name] = self._hash(path)
        (self.output_dir / MANIFEST_FILE).write_text(json.dumps(recorded, indent=1, sort_keys=True))
