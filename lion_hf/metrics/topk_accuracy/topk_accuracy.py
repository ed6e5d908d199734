# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Top-k accuracy as an ``evaluate`` metric module (loaded by path: ``evaluate.load(<dir>)``).

Predictions are the ranked class ids of each example (best first, e.g. ``logits.topk(5).indices``)
rather than the logits, so that ImageNet-sized evaluations pass 5 integers per image through
``evaluate``'s Arrow cache instead of 1,000 floats.
"""

import datasets
import evaluate

_DESCRIPTION = """Top-k accuracy: the fraction of examples whose reference is among the first k ranked
predictions. Returns ``top1`` and ``top{k}`` for each k in ``k`` that fits the number of predictions
given per example."""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of list of int): ranked predicted class ids per example, best first.
    references (list of int): the true class id per example.
    k (list of int, default [1, 5]): the k values to report; k larger than the ranking length is skipped.
Returns:
    dict: ``{"top1": float, "top5": float, ...}`` in [0, 1].
Examples:
    >>> metric = evaluate.load("lion_hf/metrics/topk_accuracy")
    >>> metric.compute(predictions=[[1, 0], [2, 1]], references=[1, 1], k=[1, 2])
    {'top1': 0.5, 'top2': 1.0}
"""

_CITATION = ""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TopkAccuracy(evaluate.Metric):
    """Top-k accuracy over ranked predictions."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("int64")),
                "references": datasets.Value("int64"),
            }),
        )

    def _compute(self, predictions, references, k=(1, 5)):
        if len(predictions) == 0:
            raise ValueError("topk_accuracy needs at least one prediction")
        bad = [value for value in k if not isinstance(value, int) or isinstance(value, bool) or value < 1]
        if bad:
            raise ValueError(f"k must hold positive integers, got {bad}")
        ranked = min(len(p) for p in predictions)
        result = {}
        for value in k:
            if value > ranked:
                continue
            hits = sum(int(ref in pred[:value]) for pred, ref in zip(predictions, references))
            result[f"top{value}"] = hits / len(references)
        return result
