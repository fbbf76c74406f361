"""The match-weight chart drawn offline from the model JSON (no JVM, no network)."""

from __future__ import annotations

import math
import re

import pytest

from entity_resolution.charts import match_weights, save_match_weights_png

MODEL = {
    "probability_two_random_records_match": 0.001,
    "comparisons": [
        {"output_column_name": "name", "comparison_levels": [
            {"label_for_charts": "name is NULL", "is_null_level": True},
            {"label_for_charts": "exact", "m_probability": 0.8, "u_probability": 0.001},
            {"label_for_charts": "else", "m_probability": 0.05, "u_probability": 0.9},
        ]},
        {"output_column_name": "mobile", "comparison_levels": [{"label_for_charts": "exact", "m_probability": 0.6, "u_probability": 0.0001}]},
    ],
}


def test_weights_are_log2_of_m_over_u_and_null_levels_are_left_out():
    rows = match_weights(MODEL)
    assert [(c, level) for c, level, _ in rows] == [("prior", "two random records match"), ("name", "exact"), ("name", "else"), ("mobile", "exact")]
    assert rows[1][2] == math.log2(0.8 / 0.001) and rows[2][2] < 0
    assert rows[0][2] == math.log2(0.001 / 0.999)


def test_the_chart_is_an_image(tmp_path):
    path = save_match_weights_png(MODEL, tmp_path / "w.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 5_000  # an image: nothing for a browser to fetch


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_splink_charts_carry_their_scripts_inline(tmp_path, app_config, dialect):
    """The project's own (untrained) model settings with made-up m/u values, charted by Splink.
    A model trained on Spark quotes its columns with backticks; it charts as well."""
    from entity_resolution.charts import save_model_charts_html
    from entity_resolution.model import build_settings

    model = build_settings(app_config.resolution.model).get_settings(dialect).as_dict()
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level"):
                level.update(m_probability=0.5, u_probability=0.1)
    written = save_model_charts_html(model, tmp_path)
    assert [p.name for p in written] == ["match_weights.html", "m_u_parameters.html"]
    for path in written:
        html = path.read_text(encoding="utf-8")
        assert "vegaEmbed" in html and "https://cdn" not in html
        assert not re.search(r"<script[^>]+src=[\"']https?:", html)


def test_sample_frames_are_masked_column_by_column():
    import pandas as pd

    from entity_resolution.sample_charts import masked

    pairs = pd.DataFrame({
        "mention_id_l": ["sales_orders:SO1:buyer"], "name_simplified_l": ["王小明"], "name_pinyin_r": ["wang xiaoming"],
        "mobile_l": ["13812348000"], "mobile_alt_r": [None], "id_number_l": ["110101199003071234"],
        "birth_date_r": ["1990-03-07"], "email_l": ["wxm@example.com"], "vin_r": ["LSVAU2180N2183294"],
        "address_l": ["上海市浦东新区世纪大道100号"], "tf_mobile_l": [0.001], "gamma_mobile": [3], "city_l": ["上海市"],
    })
    out = masked(pairs).iloc[0].to_dict()
    assert out["name_simplified_l"] == "王**" and out["name_pinyin_r"] == "w************"
    assert out["mobile_l"] == "138****8000" and out["mobile_alt_r"] is None
    assert out["id_number_l"] == "110***********1234" and out["vin_r"] == "LSV**********3294"
    assert out["birth_date_r"] == "1990-**-**" and out["email_l"] == "w***@example.com" and out["address_l"] == "上海市浦东新…"
    # Scores, IDs of records and a city are not personal: left as they are.
    assert (out["mention_id_l"], out["tf_mobile_l"], out["gamma_mobile"], out["city_l"]) == ("sales_orders:SO1:buyer", 0.001, 3, "上海市")
    assert pairs.iloc[0]["mobile_l"] == "13812348000"  # a copy: the caller's frame is untouched
