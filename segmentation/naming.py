"""Segment profiles, automatic names, readable descriptions and decision-tree summaries.

A segment's profile is the mean of each feature in it against the whole population, as a
standardised difference z = (segment mean - population mean) / population standard
deviation. Traits fire on those differences (thresholds below); the two strongest traits
make the name, in a fixed word order ("at-risk premium", "high-value loyal"); a segment with
no trait is "mainstream". Names are made unique by adding the next trait, else the feature
where the segment stands out most ("mainstream, mostly warranty-paid"), else a number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["SegmentSummary", "TRAITS", "describe_segments", "play_for", "profile_segments"]


@dataclass(frozen=True)
class _Trait:
    word: str
    conditions: tuple[tuple[str, str, float], ...]  # (feature, ">=" or "<=", z threshold)


# In naming order: the word that comes first in a name comes first here.
TRAITS: tuple[_Trait, ...] = (
    _Trait("lapsed", (("days_since_last_visit", ">=", 1.5),)),
    _Trait("at-risk", (("days_since_last_visit", ">=", 0.6),)),
    _Trait("new", (("service_visits_total", "<=", -0.6), ("days_since_last_visit", "<=", 0.3))),
    _Trait("high-value", (("lifetime_spend", ">=", 0.6),)),
    _Trait("low-value", (("lifetime_spend", "<=", -0.6),)),
    _Trait("premium", (("newest_vehicle_price", ">=", 0.6),)),
    _Trait("multi-car", (("vehicles_bought", ">=", 1.0),)),
    _Trait("loyal", (("service_visits_12m", ">=", 0.5), ("days_since_last_visit", "<=", -0.3))),
    _Trait("high-mileage", (("km_per_day", ">=", 1.0),)),
    _Trait("complaining", (("complaints_total", ">=", 1.0),)),
    _Trait("dissatisfied", (("avg_survey_score", "<=", -0.8),)),
    _Trait("warranty-only", (("share_paid_warranty", ">=", 1.0), ("share_paid_customer", "<=", -0.5))),
)


@dataclass(frozen=True)
class SegmentSummary:
    segment_id: int
    name: str
    size: int
    share: float
    traits: list[str]
    description: str
    rule: str
    lapsed_share: float | None = None  # share of its owners dormant or lost: the win-back potential
    mean_value: float | None = None  # mean lifetime spend (CNY)

    @property
    def play(self) -> str:
        """What a marketer does with the segment (see `play_for`)."""
        return play_for(self.traits, self.lapsed_share)

    def as_dict(self) -> dict[str, object]:
        return {
            "segment_id": self.segment_id, "name": self.name, "size": self.size, "share": self.share,
            "traits": self.traits, "description": self.description, "rule": self.rule,
            "lapsed_share": self.lapsed_share, "mean_value": self.mean_value, "play": self.play,
        }


# What to do with a segment, by the first of its traits in this order that has a play.
_PLAYS: tuple[tuple[str, str], ...] = (
    ("lapsed", "win back: a return offer (service voucher, free check)"),
    ("complaining", "recover first: a call from customer care before any offer"),
    ("dissatisfied", "recover first: a call from customer care before any offer"),
    ("at-risk", "re-engage before they lapse: a service reminder with an offer"),
    ("warranty-only", "convert to paid service: a maintenance package before warranty ends"),
    ("new", "onboard: first-service reminder and a welcome call"),
    ("multi-car", "household offers: a second car, a family maintenance plan"),
    ("high-value", "retain: VIP care, early upgrade and trade-in offers"),
    ("premium", "retain: VIP care, early upgrade and trade-in offers"),
    ("loyal", "reward: loyalty points and a referral programme"),
    ("high-mileage", "mileage-based maintenance reminders"),
    ("low-value", "low-cost channels only: reminders by SMS or WeChat"),
)
ROUTINE_PLAY = "routine service and inspection reminders"
WIN_BACK_SHARE = 0.5  # a segment mostly of dormant or lost owners is a win-back audience


def play_for(traits: list[str], lapsed_share: float | None = None) -> str:
    """The play for a segment with these traits (strongest first) and this share of dormant
    or lost owners: mostly lapsed owners are won back whatever else marks them."""
    if lapsed_share is not None and lapsed_share >= WIN_BACK_SHARE and not {"complaining", "dissatisfied"} & set(traits):
        return dict(_PLAYS)["lapsed"]
    return next((play for word, play in _PLAYS if word in traits), ROUTINE_PLAY)


def profile_segments(X: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """One row per segment plus `all`: size, share, feature means and their z-differences
    (`z_<feature>`). Aggregates only: no row of `X` survives into it."""
    population_mean, population_std = X.mean(), X.std(ddof=0).replace(0, np.nan)
    frame = X.assign(_segment=labels)
    means = frame.groupby("_segment").mean()
    z = ((means - population_mean) / population_std).fillna(0.0).add_prefix("z_")
    sizes = frame.groupby("_segment").size()
    profile = pd.concat([sizes.rename("size"), (sizes / len(X)).rename("share"), means, z], axis=1)
    overall = pd.DataFrame([{"size": len(X), "share": 1.0, **population_mean.to_dict()}], index=["all"])
    profile.index = profile.index.astype(str)
    return pd.concat([profile, overall])


def _fired(z: pd.Series, trait: _Trait) -> float | None:
    """The trait's strength (weakest |z| of its conditions) if all conditions hold."""
    strengths = []
    for feature, op, threshold in trait.conditions:
        value = z.get(f"z_{feature}")
        if value is None or not (value >= threshold if op == ">=" else value <= threshold):
            return None
        strengths.append(abs(value))
    return min(strengths)


def _traits(z: pd.Series) -> list[str]:
    fired = [(trait.word, _fired(z, trait)) for trait in TRAITS]
    ranked = sorted(((s, w) for w, s in fired if s is not None), reverse=True)
    words = [w for _, w in ranked]
    if "lapsed" in words and "at-risk" in words:
        words.remove("at-risk")
    return words


# How a name tells apart two segments with the same traits: the feature where the segment
# stands out most, in words a marketer reads ("mainstream, mostly warranty-paid").
_LEANINGS: dict[str, tuple[str, str]] = {
    "share_paid_warranty": ("mostly warranty-paid", "rarely warranty-paid"),
    "share_paid_customer": ("self-paying", "rarely self-paying"),
    "share_paid_insurance": ("insurance repairs", "few insurance repairs"),
    "service_visits_total": ("frequent visitors", "few visits"),
    "service_visits_12m": ("visited this year", "not seen this year"),
    "days_since_last_visit": ("drifting away", "recently seen"),
    "lifetime_spend": ("higher spend", "lower spend"),
    "service_spend_12m": ("spending on service", "little service spend"),
    "newest_vehicle_price": ("pricier cars", "entry cars"),
    "km_per_day": ("high mileage", "low mileage"),
    "complaints_total": ("more complaints", "fewer complaints"),
    "avg_survey_score": ("more satisfied", "less satisfied"),
    "vehicles_bought": ("several cars", "one car"),
    "tenure_days": ("long-standing", "recent customers"),
}


def _leanings(z: pd.Series) -> list[str]:
    """The segment's leanings, strongest first."""
    ranked = sorted(((abs(v), k[2:], v) for k, v in z.items() if str(k).startswith("z_") and v), reverse=True)
    return [_LEANINGS.get(feature, (f"high {feature.replace('_', ' ')}", f"low {feature.replace('_', ' ')}"))[0 if v > 0 else 1]
            for _, feature, v in ranked]


def _name(words: list[str], taken: set[str], z: pd.Series | None = None) -> str:
    order = {t.word: i for i, t in enumerate(TRAITS)}
    for n in range(2, len(words) + 1):
        name = " ".join(sorted(words[:n], key=order.__getitem__))
        if name not in taken:
            return name
    base = " ".join(sorted(words[:2], key=order.__getitem__)) or "mainstream"
    if base not in taken:
        return base
    for leaning in _leanings(z) if z is not None else []:
        if f"{base}, {leaning}" not in taken:
            return f"{base}, {leaning}"
    n = 2
    while f"{base} {n}" in taken:
        n += 1
    return f"{base} {n}"


def _description(row: pd.Series, population: pd.Series, features: list[str]) -> str:
    z = row[[f"z_{f}" for f in features]].abs().sort_values(ascending=False)
    parts = []
    for column in z.index[:3]:
        feature = column[2:]
        parts.append(f"{feature.replace('_', ' ')} {row[feature]:,.1f} vs {population[feature]:,.1f}")
    return f"{int(row['size'])} customers ({row['share']:.0%}); against all customers: " + "; ".join(parts)


def _tree_rules(X: pd.DataFrame, labels: np.ndarray, seed: int) -> dict[int, str]:
    """For each segment, the path to the depth-3 tree leaf holding most of its members,
    with that leaf's purity: what mostly defines the segment, in the features' own units."""
    from sklearn.tree import DecisionTreeClassifier  # imported here: every CLI command loads this module

    filled = X.fillna(X.median()).fillna(0.0)
    tree = DecisionTreeClassifier(max_depth=3, min_samples_leaf=max(1, len(X) // 100), random_state=seed).fit(filled, labels)
    t = tree.tree_
    leaves = tree.apply(filled)
    paths: dict[int, list[str]] = {0: []}
    stack = [0]
    while stack:
        node = stack.pop()
        if t.children_left[node] == -1:
            continue
        name, threshold = X.columns[t.feature[node]], t.threshold[node]
        for child, text in ((t.children_left[node], f"{name} <= {threshold:,.1f}"), (t.children_right[node], f"{name} > {threshold:,.1f}")):
            paths[child] = paths[node] + [text]
            stack.append(child)
    rules = {}
    for segment in np.unique(labels):
        members = leaves[labels == segment]
        leaf = int(pd.Series(members).mode().iloc[0])
        in_leaf = labels[leaves == leaf]
        purity = float(np.mean(in_leaf == segment))
        coverage = float(np.mean(members == leaf))
        condition = " and ".join(paths[leaf]) or "everyone"
        rules[int(segment)] = f"{condition} (covers {coverage:.0%} of the segment, {purity:.0%} of that leaf is in it)"
    return rules


def describe_segments(X: pd.DataFrame, labels: np.ndarray, seed: int = 42) -> tuple[list[SegmentSummary], pd.DataFrame]:
    """Name, describe and summarise each segment. Returns the summaries (largest first) and
    the profile table they come from."""
    profile = profile_segments(X, labels)
    population = profile.loc["all"]
    rules = _tree_rules(X, labels, seed)
    segments = profile.drop(index="all").sort_values("size", ascending=False)
    taken: set[str] = set()
    summaries = []
    for segment, row in segments.iterrows():
        words = _traits(row)
        name = _name(words, taken, row)
        taken.add(name)
        summaries.append(
            SegmentSummary(
                segment_id=int(segment),
                name=name,
                size=int(row["size"]),
                share=float(row["share"]),
                traits=words,
                description=_description(row, population, list(X.columns)),
                rule=rules[int(segment)],
            )
        )
    return summaries, profile
