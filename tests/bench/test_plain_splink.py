"""The plain Splink baseline's input: raw values, with blanks as missing."""

from __future__ import annotations

import pytest

from bench.plain_splink import _digits, _raw

pytestmark = pytest.mark.spark


def test_blank_raw_fields_are_missing_and_nothing_else_is_cleaned(spark):
    df = spark.createDataFrame(
        [("", "  ", "138-0013-8000"), ("a@b.cn ", "王偉", ""), (None, None, None)], "email string, name string, mobile string"
    )
    rows = [tuple(r) for r in df.select(_raw("email"), _raw("name"), _digits("mobile")).collect()]
    # A blank is no value (blocking on "" would pair every blank with every other); the rest stays raw.
    assert rows == [(None, None, "13800138000"), ("a@b.cn ", "王偉", None), (None, None, None)]


def test_birth_date_disagreement_keeps_its_fixed_m_through_em():
    import logging

    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    from bench.plain_splink import _birth_date_comparison

    # Pairs sharing a mobile are the same person; birth dates never disagree within a person.
    rows = []
    for person in range(60):
        for copy in range(3):
            rows.append({"id": f"{person}-{copy}", "mobile": f"139{person:08d}", "name": f"name{person % 40}", "birth_date": f"19{60 + person % 30}-01-0{1 + person % 9}"})
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="id",
        comparisons=[cl.ExactMatch("name"), cl.ExactMatch("mobile"), _birth_date_comparison()],
        blocking_rules_to_generate_predictions=[block_on("mobile")],
    )
    linker = Linker(DuckDBAPI().register(pd.DataFrame(rows)), settings, log_level=logging.WARNING)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e5, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("mobile"))
    levels = {lvl.label_for_charts: lvl for c in linker._settings_obj.comparisons if c.output_column_name == "birth_date" for lvl in c.comparison_levels}
    assert levels["All other comparisons"].m_probability == 0.01
    assert levels["Exact match on birth_date"].m_probability > 0.9
