"""One results json of the shipped settings from ``models.py --compare`` runs (for ``plot.py`` and the README).

    python benchmarks/pick_rows.py OUT.json RUN.json:SECTION:SIZE:SETTING [...]

For each argument, the rows of ``RUN.json`` in ``SECTION`` (train, infer, mlm) at ``SIZE`` (resolution or length)
whose model name carries ``[SETTING]`` (e.g. ``layer_norm_kernels=1``), plus that run's baselines at that size,
with the bracket dropped from the names; from a run without ``--compare`` (no bracketed names) every row at that size,
``SETTING`` then being any placeholder (``-``). ``OUT.json`` takes the first run's meta and lists the sources.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(__doc__)
    out_path, picks = argv[0], argv[1:]
    rows, meta, sources = [], None, []
    for pick in picks:
        path, section, size, setting = pick.rsplit(":", 3)
        with open(path) as handle:
            data = json.load(handle)
        meta = meta or dict(data["meta"])
        sources.append(pick)
        for row in data["results"]:
            if row["section"] != section or str(row.get("resolution", row.get("length"))) != size:
                continue
            name = row["model"]
            if "[" not in name:  # a baseline of that run
                rows.append(row)
            elif name.endswith(f"[{setting}]"):
                rows.append({**row, "model": name[:name.index("[")], "setting": setting})
    meta.pop("compare", None)
    meta["sources"] = sources
    with open(out_path, "w") as handle:
        json.dump({"meta": meta, "results": rows}, handle, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
