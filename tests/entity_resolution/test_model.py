"""A trained model's estimates are rounded before scoring: last-bit noise from parallel sums
must not reach the scores."""

from __future__ import annotations

from entity_resolution.model import MODEL_DIGITS, rounded_model


def _model(m: float, u: float, prior: float) -> dict:
    return {
        "probability_two_random_records_match": prior,
        "link_type": "dedupe_only",
        "comparisons": [{"output_column_name": "mobile", "comparison_levels": [
            {"sql_condition": "mobile_l = mobile_r", "m_probability": m, "u_probability": u, "label_for_charts": "exact"},
            {"sql_condition": "ELSE", "is_null_level": False, "tf_adjustment_weight": 0.5},
        ]}],
    }


def test_estimates_differing_in_the_last_bits_round_to_the_same_model():
    a = _model(0.8123456789012345, 1.2345678901234567e-05, 0.0012345678901234567)
    b = _model(0.8123456789012345 * (1 + 3e-16), 1.2345678901234567e-05 * (1 - 2e-16), 0.0012345678901234567 * (1 + 4e-16))
    assert a != b
    assert rounded_model(a) == rounded_model(b)
    level = rounded_model(a)["comparisons"][0]["comparison_levels"][0]
    assert level["m_probability"] == float(f"{0.8123456789012345:.{MODEL_DIGITS}g}") != 0.8123456789012345
    # Everything else is left as it was.
    assert rounded_model(a)["comparisons"][0]["comparison_levels"][1] == a["comparisons"][0]["comparison_levels"][1]
    assert rounded_model(a)["link_type"] == "dedupe_only" and level["sql_condition"] == "mobile_l = mobile_r"
