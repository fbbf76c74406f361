from __future__ import annotations

import itertools
import random

import pytest

from entity_resolution.evaluation import pairwise_scores

pytestmark = pytest.mark.spark


def _brute_force(pred: dict[str, str], truth: dict[str, str]) -> tuple[float, float]:
    ids = sorted(pred)
    same_pred = {(a, b) for a, b in itertools.combinations(ids, 2) if pred[a] == pred[b]}
    same_true = {(a, b) for a, b in itertools.combinations(ids, 2) if truth[a] == truth[b]}
    tp = len(same_pred & same_true)
    return (tp / len(same_pred) if same_pred else 1.0, tp / len(same_true) if same_true else 1.0)


def test_pairwise_scores_agree_with_brute_force_on_random_clusterings(spark):
    rng = random.Random(5)
    for _ in range(3):
        ids = [f"m{i}" for i in range(60)]
        truth = {m: f"p{rng.randrange(20)}" for m in ids}
        pred = {m: (truth[m] if rng.random() < 0.8 else f"c{rng.randrange(10)}") for m in ids}
        xref = spark.createDataFrame(list(pred.items()), "mention_id string, cluster_id string")
        true = spark.createDataFrame(list(truth.items()), "mention_id string, person_id string")
        scores = pairwise_scores(xref, true)
        precision, recall = _brute_force(pred, truth)
        assert scores["pairwise_precision"] == pytest.approx(precision)
        assert scores["pairwise_recall"] == pytest.approx(recall)


def test_perfect_and_exact_cluster_share(spark):
    rows = [("a", "1", "P1"), ("b", "1", "P1"), ("c", "2", "P2"), ("d", "2", "P3")]
    xref = spark.createDataFrame([(m, c) for m, c, _ in rows], "mention_id string, cluster_id string")
    truth = spark.createDataFrame([(m, p) for m, _, p in rows], "mention_id string, person_id string")
    scores = pairwise_scores(xref, truth)
    assert (scores["pairwise_precision"], scores["pairwise_recall"]) == (0.5, 1.0)
    assert scores["exact_cluster_share"] == pytest.approx(1 / 3)
