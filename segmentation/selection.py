"""Model search: k-means and Gaussian mixtures over a range of k, scored by silhouette,
Davies-Bouldin, BIC and stability across bootstrap refits; one rule picks the winner.

Selection rule: among candidates whose stability (mean adjusted Rand index between the
labels of the full fit and of each bootstrap refit, both predicted on the same rows) is at
least `min_stability`, take the best by `selection_metric` (highest silhouette, lowest
Davies-Bouldin or lowest BIC; BIC exists for mixtures only). Stable candidates whose largest
segment holds more than `max_segment_share` of the customers are passed over (one segment of
three quarters of the owners is nothing a marketer can target), and among the rest those with
a number of segments in `preferred_k` come first; each rule gives way only when no stable
candidate meets it. If none is stable enough, the most stable candidate wins. The reason
says which rule decided.

Stability costs `bootstrap_rounds` refits a candidate, most of a search's time. With
`stability_for: needed` (the default) it is measured in the order the rule prefers (preferred
and balanced first, best by the metric first) until a stable candidate decides, which picks the
same candidate as measuring all of them; the candidates after it keep no stability. `all`
measures every candidate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, davies_bouldin_score, silhouette_score
from sklearn.pipeline import Pipeline

from cdp.analytics_config import SegmentationConfig
from segmentation.pipeline import build_pipeline

__all__ = ["Candidate", "Selection", "choose_candidate", "evaluate_candidates"]

log = logging.getLogger(__name__)


@dataclass
class Candidate:
    algorithm: str
    k: int
    silhouette: float
    davies_bouldin: float
    bic: float | None
    stability: float | None
    smallest_share: float
    pipeline: Pipeline = field(repr=False)
    labels: np.ndarray = field(repr=False)
    largest_share: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.algorithm}_k{self.k}"

    def metrics(self) -> dict[str, float]:
        values = {"silhouette": self.silhouette, "davies_bouldin": self.davies_bouldin}
        if self.stability is not None:
            values["stability"] = self.stability
        values |= {"smallest_share": self.smallest_share, "largest_share": self.largest_share}
        if self.bic is not None:
            values["bic"] = self.bic
        return values


@dataclass
class Selection:
    chosen: Candidate
    candidates: list[Candidate]
    reason: str


def _refit_agreement(X: pd.DataFrame, reference: np.ndarray, rows: np.ndarray, candidate: tuple[str, int], features: list[str], money: list[str], seed: int) -> float:
    refit = build_pipeline(*candidate, features, money, seed).fit(X.iloc[rows])
    return float(adjusted_rand_score(reference, refit.predict(X)))


def _stability(X: pd.DataFrame, candidate: Candidate, features: list[str], money: list[str], config: SegmentationConfig) -> float:
    """Mean adjusted Rand index between the candidate's labels and those of its refits on
    bootstrap resamples, the refits `config.parallel_jobs` at a time (each seeded)."""
    from joblib import Parallel, delayed

    rng = np.random.default_rng(config.seed)
    resamples = [rng.integers(0, len(X), len(X)) for _ in range(config.bootstrap_rounds)]
    scores = Parallel(n_jobs=config.parallel_jobs)(
        delayed(_refit_agreement)(X, candidate.labels, rows, (candidate.algorithm, candidate.k), features, money, config.seed + round_ + 1)
        for round_, rows in enumerate(resamples)
    )
    return float(np.mean(scores))


def _evaluate(
    X: pd.DataFrame, features: list[str], money: list[str], config: SegmentationConfig, algorithm: str, k: int, sample: np.ndarray
) -> Candidate | None:
    pipeline = build_pipeline(algorithm, k, features, money, config.seed).fit(X)
    labels = pipeline.predict(X)
    if len(np.unique(labels)) < 2:
        return None
    transformed = pipeline[:-1].transform(X)
    sample_labels = labels[sample]
    silhouette = silhouette_score(transformed[sample], sample_labels) if len(np.unique(sample_labels)) > 1 else -1.0
    return Candidate(
        algorithm=algorithm,
        k=k,
        silhouette=float(silhouette),
        davies_bouldin=float(davies_bouldin_score(transformed, labels)),
        bic=float(pipeline[-1].bic(transformed)) if algorithm == "gmm" else None,
        stability=None,
        smallest_share=float(np.bincount(labels).min() / len(labels)),
        pipeline=pipeline,
        labels=labels,
        largest_share=float(np.bincount(labels).max() / len(labels)),
    )


def evaluate_candidates(X: pd.DataFrame, features: list[str], money: list[str], config: SegmentationConfig) -> list[Candidate]:
    """Fit every (algorithm, k) of the config on `X` and score it, `config.parallel_jobs`
    candidates at a time (each is seeded, so the result does not depend on the order), then
    measure the stability of those `config.stability_for` asks for."""
    from joblib import Parallel, delayed

    rng = np.random.default_rng(config.seed)
    sample = np.sort(rng.choice(len(X), size=min(len(X), config.metric_sample_rows), replace=False))
    grid = [(a, k) for a in config.algorithms for k in range(config.k_range[0], config.k_range[1] + 1) if k < len(X)]
    results = Parallel(n_jobs=config.parallel_jobs)(delayed(_evaluate)(X, features, money, config, a, k, sample) for a, k in grid)
    candidates = []
    for (algorithm, k), candidate in zip(grid, results):
        if candidate is None:
            log.info("%s k=%d collapsed to one segment; skipped", algorithm, k)
            continue
        candidates.append(candidate)
    _measure_stability(X, features, money, candidates, config)
    for candidate in candidates:
        log.info("candidate %s: %s", candidate.key, candidate.metrics())
    return candidates


def _goodness(candidate: Candidate, metric: str) -> float:
    if metric == "silhouette":
        return candidate.silhouette
    return -(candidate.davies_bouldin if metric == "davies_bouldin" else candidate.bic or 0.0)


def _rule_ranks(candidates: list[Candidate], config: SegmentationConfig) -> list[tuple[tuple[int, float], Candidate]]:
    """The candidates the rule can choose, with their rank when stable, best first: balanced
    with a preferred number of segments, then balanced, then the rest; by the metric within."""
    low, high = config.preferred_k or (0, 0)

    def rank(c: Candidate) -> tuple[int, float]:
        balanced = c.largest_share <= config.max_segment_share
        return (0 if balanced and low <= c.k <= high else 1 if balanced else 2, -_goodness(c, config.selection_metric))

    pool = [c for c in candidates if config.selection_metric != "bic" or c.bic is not None]
    return sorted(((rank(c), c) for c in pool), key=lambda ranked: ranked[0])


def _measure_stability(X: pd.DataFrame, features: list[str], money: list[str], candidates: list[Candidate], config: SegmentationConfig) -> None:
    """Set the stability of every candidate (`all`) or, in the rule's order, of each until a
    stable one decides (`needed`): the first stable candidate in that order is the one
    `choose_candidate` picks, once those ranked equal to it are measured too."""
    if config.stability_for == "all":
        for candidate in candidates:
            candidate.stability = _stability(X, candidate, features, money, config)
        return
    decided: tuple[int, float] | None = None
    for rank, candidate in _rule_ranks(candidates, config):
        if decided is not None and rank != decided:
            break
        candidate.stability = _stability(X, candidate, features, money, config)
        if decided is None and candidate.stability >= config.min_stability:
            decided = rank
    measured = sum(c.stability is not None for c in candidates)
    if measured < len(candidates):
        log.info("stability measured for %d of %d candidates: the others rank below a stable one", measured, len(candidates))


def choose_candidate(candidates: list[Candidate], config: SegmentationConfig) -> Selection:
    """Apply the selection rule (see the module docstring): the first stable candidate in the
    rule's order (`_rule_ranks`), the more stable of those ranked equal to it."""
    if not candidates:
        raise ValueError("no candidate model could be fitted (too few customers?)")
    metric = config.selection_metric
    ranked = _rule_ranks(candidates, config)
    if not ranked:
        raise ValueError("selection_metric bic needs gmm among segmentation.algorithms")
    stable = [(rank, c) for rank, c in ranked if c.stability is not None and c.stability >= config.min_stability]
    measured = sum(c.stability is not None for c in candidates)
    unmeasured = f"; stability measured for {measured} of {len(candidates)}, the others rank below" if measured < len(candidates) else ""
    if stable:
        best = stable[0][0]
        chosen = max((c for rank, c in stable if rank == best), key=lambda c: (c.stability or 0.0, -c.k))
        tier = [c for (t, _), c in stable if t == best[0]]
        low, high = config.preferred_k or (0, 0)
        rule = (
            f", no segment over {config.max_segment_share:.0%} and {low}-{high} segments" if best[0] == 0
            else f", no segment over {config.max_segment_share:.0%}" if best[0] == 1
            else f"; every stable one has a segment over {config.max_segment_share:.0%}"
        )
        reason = f"best {metric} among {len(tier)} candidates with stability >= {config.min_stability}{rule}{unmeasured}"
    else:
        if any(c.stability is None for _, c in ranked):
            raise ValueError("no candidate is stable enough and some have no stability measured")
        chosen = max((c for _, c in ranked), key=lambda c: (c.stability or 0.0, _goodness(c, metric)))
        reason = f"no candidate reached stability {config.min_stability}; the most stable one"
    return Selection(chosen, candidates, reason)
