# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""The GLUE benchmark metrics as an ``evaluate`` metric module, usable offline.

``evaluate`` ships no metric scripts (``evaluate.load("glue", task)`` downloads one from the Hub),
so the package carries this module and the scripts load it by path when the Hub copy cannot be
fetched. Configuration names and result keys are those of the Hub's ``glue`` metric:

* ``cola``, ``ax``: ``matthews_correlation``
* ``stsb``: ``pearson``, ``spearmanr`` (regression predictions)
* ``mrpc``, ``qqp``: ``accuracy``, ``f1``
* ``sst2``, ``mnli``, ``mnli_mismatched``, ``mnli_matched``, ``qnli``, ``rte``, ``wnli``, ``hans``: ``accuracy``
"""

import datasets
import evaluate

TASKS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "mnli_mismatched", "mnli_matched", "qnli", "rte",
         "wnli", "hans", "ax")

_DESCRIPTION = "GLUE (General Language Understanding Evaluation) metric of one task, computed locally."

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted labels (ints), or scores (floats) for ``stsb``.
    references: gold labels (ints), or scores (floats) for ``stsb``.
Returns:
    a dict with the task's official metrics (see the module docstring), each a float.
Examples:
    >>> glue = evaluate.load("lion_hf/metrics/glue", "mrpc")
    >>> glue.compute(predictions=[0, 1], references=[0, 1])
    {'accuracy': 1.0, 'f1': 1.0}
"""

_CITATION = """@inproceedings{wang2019glue,
  title={{GLUE}: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding},
  author={Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and Levy, Omer and Bowman, Samuel R.},
  booktitle={ICLR}, year={2019}}"""


def _accuracy(predictions, references) -> float:
    return float(sum(int(p == r) for p, r in zip(predictions, references)) / len(references))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Glue(evaluate.Metric):
    """GLUE metric of the task named by ``config_name``."""

    def _info(self) -> evaluate.MetricInfo:
        if self.config_name not in TASKS:
            raise KeyError(f"unknown GLUE task {self.config_name!r}; choose one of {list(TASKS)}")
        dtype = "float32" if self.config_name == "stsb" else "int64"
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value(dtype), "references": datasets.Value(dtype)}),
            format="numpy",
        )

    def _compute(self, predictions, references):
        # scikit-learn and scipy are imported lazily: only the tasks that need them pay the import.
        if len(references) == 0:
            raise ValueError("GLUE metric needs at least one prediction")
        task = self.config_name
        if task in ("cola", "ax"):
            from sklearn.metrics import matthews_corrcoef

            return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}
        if task == "stsb":
            from scipy.stats import pearsonr, spearmanr

            return {"pearson": float(pearsonr(predictions, references)[0]),
                    "spearmanr": float(spearmanr(predictions, references)[0])}
        if task in ("mrpc", "qqp"):
            from sklearn.metrics import f1_score

            return {"accuracy": _accuracy(predictions, references), "f1": float(f1_score(references, predictions))}
        return {"accuracy": _accuracy(predictions, references)}
