"""Model search, selection rule, naming and reproducibility on planted groups (no Spark)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from cdp.analytics_config import SegmentationConfig
from features.catalog import segmentation_features
from segmentation.naming import describe_segments, profile_segments
from segmentation.selection import Candidate, choose_candidate
from segmentation.train import train_segmentation

# The planted data has three segments: no preference for a number of segments here.
CONFIG = SegmentationConfig(k_range=(2, 5), bootstrap_rounds=3, preferred_k=None)


@pytest.fixture(scope="module")
def trained(planted_rows):
    X, _ = planted_rows
    features, money = segmentation_features()
    return train_segmentation(X, features, money, CONFIG)


def test_finds_the_three_planted_groups(trained, planted_rows):
    _, truth = planted_rows
    chosen = trained.selection.chosen
    assert chosen.k == 3
    assert adjusted_rand_score(truth, chosen.labels) > 0.95
    assert chosen.stability >= CONFIG.min_stability
    assert {(c.algorithm, c.k) for c in trained.selection.candidates} == {(a, k) for a in ("kmeans", "gmm") for k in range(2, 6)}
    assert all(c.bic is not None for c in trained.selection.candidates if c.algorithm == "gmm")


def test_segments_are_named_from_how_they_differ(trained, planted_rows):
    _, truth = planted_rows
    labels = trained.selection.chosen.labels
    name_of_group = {}
    for group in range(3):
        segment = np.bincount(labels[truth == group]).argmax()
        name_of_group[group] = next(s.name for s in trained.summaries if s.segment_id == segment)
    loyal, lapsed, warranty = name_of_group[0], name_of_group[1], name_of_group[2]
    assert "high-value" in loyal and "premium" in loyal
    assert lapsed.startswith("lapsed")
    assert "warranty-only" in warranty
    assert len({s.name for s in trained.summaries}) == 3
    lapsed_summary = next(s for s in trained.summaries if s.name == lapsed)
    assert "days since last visit" in lapsed_summary.description
    assert "covers" in lapsed_summary.rule and ("<=" in lapsed_summary.rule or ">" in lapsed_summary.rule)


def test_same_rows_and_seed_give_the_same_segments(trained, planted_rows):
    X, _ = planted_rows
    features, money = segmentation_features()
    again = train_segmentation(X, features, money, CONFIG)
    assert np.array_equal(again.selection.chosen.labels, trained.selection.chosen.labels)
    assert [s.as_dict() for s in again.summaries] == [s.as_dict() for s in trained.summaries]


def test_candidates_fitted_in_parallel_score_as_fitted_one_by_one(planted_rows):
    from segmentation.selection import evaluate_candidates

    X, _ = planted_rows
    features, money = segmentation_features()
    serial = evaluate_candidates(X, features, money, CONFIG.model_copy(update={"parallel_jobs": 1, "k_range": (2, 4)}))
    parallel = evaluate_candidates(X, features, money, CONFIG.model_copy(update={"parallel_jobs": 2, "k_range": (2, 4)}))
    assert [c.key for c in parallel] == [c.key for c in serial] == ["kmeans_k2", "kmeans_k3", "kmeans_k4", "gmm_k2", "gmm_k3", "gmm_k4"]
    assert [c.metrics() for c in parallel] == [c.metrics() for c in serial]
    assert all(np.array_equal(p.labels, s.labels) for p, s in zip(parallel, serial))


def test_profile_is_aggregate_only(trained, planted_rows):
    X, _ = planted_rows
    features, _ = segmentation_features()
    profile = profile_segments(X[features], trained.selection.chosen.labels)
    assert list(profile.index) == [str(s) for s in sorted(set(trained.selection.chosen.labels))] + ["all"]
    assert len(profile) == 4 and profile.loc["all", "size"] == len(X)


def _candidate(algorithm, k, silhouette, stability, bic=None, largest=0.3):
    return Candidate(algorithm, k, silhouette, 1.0, bic, stability, 0.1, pipeline=None, labels=np.array([]), largest_share=largest)


def test_selection_skips_unstable_candidates():
    candidates = [_candidate("kmeans", 3, 0.50, 0.90), _candidate("kmeans", 4, 0.70, 0.40), _candidate("gmm", 3, 0.45, 0.95, bic=10.0)]
    chosen = choose_candidate(candidates, SegmentationConfig(min_stability=0.75))
    assert (chosen.chosen.algorithm, chosen.chosen.k) == ("kmeans", 3)
    by_bic = choose_candidate(candidates, SegmentationConfig(selection_metric="bic"))
    assert by_bic.chosen.algorithm == "gmm"
    nothing_stable = choose_candidate(candidates, SegmentationConfig(min_stability=0.99))
    assert nothing_stable.chosen.stability == 0.95 and "no candidate reached" in nothing_stable.reason


def test_selection_passes_over_one_dominant_segment_and_prefers_a_workable_k():
    # k=3 scores best but puts 76% of owners in one segment; k=7 and k=8 are stable and balanced.
    candidates = [_candidate("kmeans", 3, 0.60, 0.99, largest=0.76), _candidate("kmeans", 7, 0.40, 0.985, largest=0.25),
                  _candidate("kmeans", 8, 0.38, 0.964, largest=0.2), _candidate("kmeans", 2, 0.45, 0.99, largest=0.35)]
    chosen = choose_candidate(candidates, SegmentationConfig())
    assert chosen.chosen.k == 7 and "among 2 candidates" in chosen.reason and "no segment over 40% and 4-8 segments" in chosen.reason
    # Without a preferred range, the best balanced one (k=2) wins.
    any_k = choose_candidate(candidates, SegmentationConfig(preferred_k=None))
    assert any_k.chosen.k == 2 and any_k.reason.startswith("best silhouette among 3 candidates") and "segments" not in any_k.reason
    # When every stable candidate is dominated by one segment, the rule gives way.
    dominated = [c for c in candidates if c.k == 3] + [_candidate("kmeans", 5, 0.5, 0.9, largest=0.5)]
    fallback = choose_candidate(dominated, SegmentationConfig())
    assert fallback.chosen.k == 3 and "every stable one has a segment over 40%" in fallback.reason


def test_names_stay_unique_when_profiles_look_alike():
    X = pd.DataFrame({"lifetime_spend": [1.0, 1.0, 1.0, 100.0, 101.0, 1.0, 1.0], "days_since_last_visit": [5.0] * 7})
    labels = np.array([0, 0, 2, 1, 1, 3, 3])
    summaries, _ = describe_segments(X, labels)
    names = [s.name for s in summaries]
    assert len(set(names)) == len(names)
    assert any(n.startswith("high-value") for n in names)


def test_look_alike_segments_are_told_apart_by_where_they_lean():
    """Two segments with no trait of their own: the second is named by its strongest leaning
    (a share paid by warranty a little above everyone's), not by a number."""
    rng = np.random.default_rng(4)
    n = 600
    X = pd.DataFrame({"lifetime_spend": rng.normal(100, 10, n), "days_since_last_visit": rng.normal(200, 20, n),
                      "share_paid_warranty": rng.normal(0.2, 0.05, n)})
    labels = np.repeat([0, 1, 2], 200)
    X.loc[labels == 1, "share_paid_warranty"] += 0.02  # leans, below any trait's threshold
    X.loc[labels == 2, "share_paid_warranty"] -= 0.02
    names = sorted(s.name for s in describe_segments(X, labels)[0])
    assert len(set(names)) == 3 and not any(name[-1].isdigit() for name in names)
    assert "mainstream" in names and {n.split(", ")[0] for n in names} == {"mainstream"}


@pytest.mark.parametrize("k_range", [(1, 3), (5, 4)])
def test_k_range_must_be_ordered_from_two(k_range):
    with pytest.raises(ValueError, match="k_range"):
        SegmentationConfig(k_range=k_range)


def test_each_segment_reports_its_lapsed_share_and_value(planted_rows):
    X, truth = planted_rows
    features, money = segmentation_features()
    # The lapsed group is dormant or lost; the others are active.
    outcomes = X.assign(lifecycle_stage=np.where(truth == 1, "lost", "active"))
    trained = train_segmentation(outcomes, features, money, CONFIG)
    labels = trained.selection.chosen.labels
    for summary in trained.summaries:
        members = outcomes[labels == summary.segment_id]
        assert summary.lapsed_share == pytest.approx((members["lifecycle_stage"] == "lost").mean())
        assert summary.mean_value == pytest.approx(members["lifetime_spend"].mean())
    lapsed = next(s for s in trained.summaries if s.name.startswith("lapsed"))
    assert lapsed.lapsed_share > 0.9 and max(s.lapsed_share for s in trained.summaries if s is not lapsed) < 0.1
    assert lapsed.as_dict()["lapsed_share"] == lapsed.lapsed_share
    # Each says what to do: the lapsed group is won back, the others are not.
    assert lapsed.play.startswith("win back") and lapsed.as_dict()["play"] == lapsed.play
    assert not any(s.play.startswith("win back") for s in trained.summaries if s is not lapsed)


def test_a_segment_plays_by_its_first_trait_with_a_play_and_mostly_lapsed_owners_are_won_back():
    from segmentation.naming import ROUTINE_PLAY, play_for

    assert play_for(["high-value", "warranty-only"]).startswith("convert to paid service")
    assert play_for(["premium", "loyal"]).startswith("retain")
    assert play_for([]) == ROUTINE_PLAY
    # Mostly dormant or lost owners: a win-back audience, whatever their traits...
    assert play_for(["at-risk", "low-value"], lapsed_share=0.82).startswith("win back")
    assert play_for([], lapsed_share=0.5).startswith("win back") and play_for([], lapsed_share=0.49) == ROUTINE_PLAY
    # ...except unhappy ones: they hear from customer care before any offer.
    assert play_for(["dissatisfied"], lapsed_share=0.9).startswith("recover first")


def test_stability_measured_only_until_a_stable_candidate_decides_picks_as_measuring_all(planted_rows):
    from segmentation.selection import evaluate_candidates

    X, _ = planted_rows
    features, money = segmentation_features()
    X = X[features].astype("float64")
    for config in (CONFIG, CONFIG.model_copy(update={"preferred_k": (4, 5)}), CONFIG.model_copy(update={"selection_metric": "bic"})):
        every = evaluate_candidates(X, features, money, config.model_copy(update={"stability_for": "all"}))
        needed = evaluate_candidates(X, features, money, config)
        assert all(c.stability is not None for c in every)
        measured = [c for c in needed if c.stability is not None]
        assert 0 < len(measured) < len(needed)
        assert all("stability" not in c.metrics() for c in needed if c.stability is None)
        by_key = {c.key: c.stability for c in every}
        assert all(c.stability == by_key[c.key] for c in measured)
        assert choose_candidate(needed, config).chosen.key == choose_candidate(every, config).chosen.key


@pytest.mark.parametrize(
    ("min_stability", "measured", "chosen"),
    [
        # kmeans_k7 (balanced, preferred k, best silhouette) is stable: nothing else is refitted.
        (0.75, {"kmeans_k7"}, "kmeans_k7"),
        # kmeans_k7 is not: gmm_k5 and kmeans_k8 tie next (same silhouette), both are measured.
        (0.85, {"kmeans_k7", "gmm_k5", "kmeans_k8"}, "kmeans_k8"),
        # none is: every candidate is measured and the most stable one wins.
        (0.99, {"kmeans_k3", "kmeans_k7", "kmeans_k8", "gmm_k5", "kmeans_k2"}, "kmeans_k3"),
    ],
)
def test_stability_is_measured_in_the_rules_order_until_it_decides(monkeypatch, min_stability, measured, chosen):
    from segmentation import selection

    stability = {"kmeans_k3": 0.98, "kmeans_k7": 0.80, "kmeans_k8": 0.95, "gmm_k5": 0.90, "kmeans_k2": 0.97}
    candidates = [_candidate("kmeans", 3, 0.60, None, largest=0.76), _candidate("kmeans", 7, 0.40, None, largest=0.25),
                  _candidate("kmeans", 8, 0.38, None, largest=0.2), _candidate("gmm", 5, 0.38, None, bic=1.0, largest=0.3),
                  _candidate("kmeans", 2, 0.45, None, largest=0.35)]
    asked = []
    monkeypatch.setattr(selection, "_stability", lambda X, c, *args: asked.append(c.key) or stability[c.key])
    config = SegmentationConfig(min_stability=min_stability)
    selection._measure_stability(None, [], [], candidates, config)
    assert set(asked) == measured and len(asked) == len(measured)
    assert {c.key for c in candidates if c.stability is not None} == measured
    selection_ = choose_candidate(candidates, config)
    assert selection_.chosen.key == chosen
    assert (f"stability measured for {len(measured)} of 5" in selection_.reason) == (len(measured) < 5)
    for c in candidates:
        c.stability = stability[c.key]
    assert choose_candidate(candidates, config).chosen.key == chosen
