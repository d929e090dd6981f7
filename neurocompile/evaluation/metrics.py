"""Accuracy over a test set, with its uncertainty: a proportion of n samples is reported with its
95 % Wilson score interval (scipy), which stays inside [0, 1] and is sound for small n and for
accuracies near 0 or 1, where the normal approximation is not."""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

CONFIDENCE = 0.95


def proportion(hits: np.ndarray) -> dict[str, float | int]:
    """The share of True in `hits`, its 95 % interval, and the counts it comes from."""
    k, n = int(np.count_nonzero(hits)), int(hits.size)
    ci = binomtest(k, n).proportion_ci(CONFIDENCE, method="wilson")
    return {"value": k / n, "low": float(ci.low), "high": float(ci.high), "hits": k, "samples": n}


def scores(record: dict[str, np.ndarray], labels: np.ndarray | None) -> dict[str, dict]:
    """accuracy (with labels), ann_accuracy and ann_agreement (where the ANN's outputs were
    recorded): the SNN's predictions against the labels, the ANN's against the labels, and the
    SNN's against the ANN's."""
    out = {}
    pred = record["prediction"]
    if labels is not None:
        out["accuracy"] = proportion(pred == labels)
    if "ann_prediction" in record:
        if labels is not None:
            out["ann_accuracy"] = proportion(record["ann_prediction"] == labels)
        out["ann_agreement"] = proportion(pred == record["ann_prediction"])
    return out


def percent(p: dict) -> str:
    return f"{100 * p['value']:.2f} % (95 % CI {100 * p['low']:.2f}-{100 * p['high']:.2f}, {p['hits']}/{p['samples']})"
