"""The Splink model for person mentions: comparisons, blocking, training, prediction.

Comparisons use the standardised columns, so 王偉 / 王伟 / WANG WEI meet on `name_key`
(toneless pinyin), homophones score as near matches, and a mobile or ID with one typo
still counts. A VIN is one comparison among others, never proof: cars are resold and
shared, and relatives bring them to the workshop. The same settings (and model JSON)
run on every engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on

__all__ = ["LinkageParams", "build_settings", "train_linker"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkageParams:
    """Tunable parts of the model (from `conf/resolution.yaml`)."""

    match_threshold: float = 0.95
    name_similarity: tuple[float, float] = (0.92, 0.80)
    max_pairs_for_u: float = 2e6
    recall_of_deterministic_rules: float = 0.6
    prediction_blocking: tuple[tuple[str, ...], ...] = (
        ("mobile",),
        ("id_number",),
        ("vin",),
        ("name_key", "dealer_code"),
        ("email",),
    )
    training_blocking: tuple[tuple[str, ...], ...] = (("mobile",), ("name_key", "dealer_code"), ("vin",))
    extra: dict[str, Any] = field(default_factory=dict)


def _name_comparison(params: LinkageParams) -> cl.CustomComparison:
    high, low = params.name_similarity
    return cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            cll.NullLevel("name_key"),
            cll.ExactMatchLevel("name_simplified").configure(tf_adjustment_column="name_simplified"),
            cll.ExactMatchLevel("name_key").configure(tf_adjustment_column="name_key", label_for_charts="same pinyin"),
            cll.JaroWinklerLevel("name_key", high),
            cll.JaroWinklerLevel("name_key", low),
            cll.ElseLevel(),
        ],
    )


def _mobile_comparison() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="mobile",
        comparison_levels=[
            cll.CustomLevel(
                "(mobile_l IS NULL AND mobile_alt_l IS NULL) OR (mobile_r IS NULL AND mobile_alt_r IS NULL)"
            ).configure(is_null_level=True),
            cll.ExactMatchLevel("mobile").configure(tf_adjustment_column="mobile"),
            cll.CustomLevel(
                "mobile_l = mobile_alt_r OR mobile_alt_l = mobile_r OR mobile_alt_l = mobile_alt_r",
                label_for_charts="one's other phone",
            ),
            cll.LevenshteinLevel("mobile", 1),
            cll.ElseLevel(),
        ],
    )


def build_settings(params: LinkageParams) -> SettingsCreator:
    """Splink settings for deduplicating person mentions (`mention_id` is the unique id)."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="mention_id",
        comparisons=[
            _name_comparison(params),
            cl.ExactMatch("surname_pinyin"),
            _mobile_comparison(),
            cl.LevenshteinAtThresholds("id_number", [1]),
            cl.ExactMatch("birth_date"),
            cl.ExactMatch("email"),
            cl.ExactMatch("vin").configure(term_frequency_adjustments=True),
            cl.ExactMatch("customer_type"),
        ],
        blocking_rules_to_generate_predictions=[block_on(*cols) for cols in params.prediction_blocking],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        additional_columns_to_retain=[],
    )


def train_linker(linker: Linker, params: LinkageParams, seed: int = 42) -> None:
    """Estimate λ from deterministic rules, u by random sampling, m by EM on blocked pairs."""
    linker.training.estimate_probability_two_random_records_match(
        [block_on("mobile", "name_key"), block_on("id_number")],
        recall=params.recall_of_deterministic_rules,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=params.max_pairs_for_u, seed=seed)
    for cols in params.training_blocking:
        linker.training.estimate_parameters_using_expectation_maximisation(block_on(*cols))
