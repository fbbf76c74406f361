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


def _name_level(left: tuple[str, str], right: tuple[str, str]) -> str:
    """The name comparison level a pair of (name_simplified, name_key) reaches, in DuckDB."""
    import duckdb

    from cdp.config import LinkageModelConfig
    from entity_resolution.model import build_settings

    levels = build_settings(LinkageModelConfig()).get_settings("duckdb").as_dict()["comparisons"][0]["comparison_levels"]
    con = duckdb.connect()
    con.execute("CREATE TABLE pair AS SELECT ? AS name_simplified_l, ? AS name_key_l, ? AS name_simplified_r, ? AS name_key_r",
                [*left, *right])
    for level in levels:
        if level["sql_condition"] == "ELSE" or con.execute(f"SELECT {level['sql_condition']} FROM pair").fetchall()[0][0]:
            return level.get("label_for_charts") or level["sql_condition"]
    raise AssertionError("no level")


def test_names_in_characters_with_other_pinyin_are_different_names():
    """On pinyin keys Jaro-Winkler mostly measures a shared surname: it only counts for a
    romanised name, where a typo leaves the pinyin close."""
    assert _name_level(("王伟", "wangwei"), ("王芳", "wangfang")) == "All other comparisons"
    assert _name_level(("王伟", "wangwei"), ("王伟", "wangwei")).startswith("Exact match")
    assert _name_level(("王伟", "wangwei"), ("汪玮", "wangwei")) == "same pinyin"
    assert _name_level(("wang wei", "wangwei"), ("wang wie", "wangwie")).startswith("romanised, Jaro-Winkler >= 0.92")
    assert _name_level(("王伟", "wangwei"), ("WANG WIE", "wangwie")).startswith("romanised")


def test_an_unrelated_name_has_a_fixed_m_probability():
    from cdp.config import LinkageModelConfig
    from entity_resolution.model import build_settings

    levels = build_settings(LinkageModelConfig()).get_settings("duckdb").as_dict()["comparisons"][0]["comparison_levels"]
    assert levels[-1]["m_probability"] == 1e-5 and levels[-1]["fix_m_probability"] is True
    learnt = build_settings(LinkageModelConfig(different_name_m_probability=None)).get_settings("duckdb").as_dict()
    assert not learnt["comparisons"][0]["comparison_levels"][-1].get("fix_m_probability")
