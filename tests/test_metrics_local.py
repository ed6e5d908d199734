"""The evaluate metric modules shipped in lion_hf/metrics, loaded by path (offline)."""

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lion_hf.metrics import hub_is_offline, load_glue_metric, load_local_metric, metric_path  # noqa: E402


def test_topk_accuracy():
    metric = load_local_metric("topk_accuracy", keep_in_memory=True)
    ranked = [[3, 1, 0, 2, 4], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [1, 0, 2, 3, 4]]
    result = metric.compute(predictions=ranked, references=[3, 2, 0, 1])
    assert result == {"top1": 0.5, "top5": 1.0}
    assert metric.compute(predictions=ranked, references=[3, 2, 0, 1], k=[1, 3]) == {"top1": 0.5, "top3": 0.75}


@pytest.mark.parametrize("task", ["sst2", "qnli", "rte", "wnli", "mnli", "mnli_matched", "mnli_mismatched"])
def test_glue_accuracy_tasks(task):
    metric = load_glue_metric(task, keep_in_memory=True)
    assert metric.compute(predictions=[0, 1, 1, 0], references=[0, 1, 0, 0]) == {"accuracy": 0.75}


@pytest.mark.parametrize("task", ["mrpc", "qqp"])
def test_glue_accuracy_and_f1(task):
    from sklearn.metrics import f1_score

    preds, refs = [1, 1, 0, 0, 1], [1, 0, 0, 1, 1]
    result = load_glue_metric(task, keep_in_memory=True).compute(predictions=preds, references=refs)
    assert result["accuracy"] == pytest.approx(0.6)
    assert result["f1"] == pytest.approx(f1_score(refs, preds))


def test_glue_cola_matthews_and_stsb_correlations():
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import matthews_corrcoef

    preds, refs = [1, 1, 0, 0, 1, 0], [1, 0, 0, 1, 1, 0]
    cola = load_glue_metric("cola", keep_in_memory=True).compute(predictions=preds, references=refs)
    assert cola["matthews_correlation"] == pytest.approx(matthews_corrcoef(refs, preds))
    scores = np.array([0.5, 2.0, 3.1, 4.9, 1.2], dtype=np.float32)
    gold = np.array([1.0, 2.5, 2.9, 5.0, 0.4], dtype=np.float32)
    stsb = load_glue_metric("stsb", keep_in_memory=True).compute(predictions=scores, references=gold)
    assert stsb["pearson"] == pytest.approx(pearsonr(scores, gold)[0], abs=1e-6)
    assert stsb["spearmanr"] == pytest.approx(spearmanr(scores, gold)[0], abs=1e-6)


def test_glue_unknown_task_and_sources():
    with pytest.raises(KeyError, match="unknown GLUE task 'sts'"):
        load_glue_metric("sts", keep_in_memory=True)
    with pytest.raises(ValueError, match="metric source"):
        load_glue_metric("sst2", source="web")
    assert hub_is_offline()  # the tests run with HF_HUB_OFFLINE=1
    # Offline, "auto" takes the shipped module without trying the Hub.
    assert load_glue_metric("sst2", source="auto", keep_in_memory=True).compute(predictions=[1], references=[1])
    with pytest.raises(Exception):
        load_glue_metric("sst2", source="hub", keep_in_memory=True)  # the Hub module cannot be fetched offline
    with pytest.raises(ValueError, match="no local metric"):
        metric_path("bleu")


def test_topk_accuracy_refuses_k_below_one():
    import evaluate

    metric = evaluate.load(metric_path("topk_accuracy"), keep_in_memory=True)
    with pytest.raises(ValueError, match="k must hold positive integers"):
        metric.compute(predictions=[[1, 0]], references=[1], k=[0, 1])
