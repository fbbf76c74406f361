"""A trained model's estimates are rounded before scoring: last-bit noise from parallel sums
must not reach the scores."""

from __future__ import annotations

from contextlib import nullcontext

import pytest

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


def _level(comparison: str, pair: dict[str, str | None]) -> str:
    """The level of the model's `comparison` a pair reaches (columns with _l / _r), in DuckDB."""
    import duckdb

    from cdp.config import LinkageModelConfig
    from entity_resolution.model import build_settings

    comparisons = build_settings(LinkageModelConfig()).get_settings("duckdb").as_dict()["comparisons"]
    levels = next(c["comparison_levels"] for c in comparisons if c["output_column_name"] == comparison)
    con = duckdb.connect()
    con.execute(f"CREATE TABLE pair AS SELECT {', '.join(f'?::VARCHAR AS {column}' for column in pair)}", list(pair.values()))
    for level in levels:
        if level["sql_condition"] == "ELSE" or con.execute(f"SELECT {level['sql_condition']} FROM pair").fetchall()[0][0]:
            return level.get("label_for_charts") or level["sql_condition"]
    raise AssertionError("no level")


def _name_level(left: tuple[str, str], right: tuple[str, str]) -> str:
    """The name comparison level a pair of (name_simplified, name_key) reaches."""
    return _level("name", {"name_simplified_l": left[0], "name_key_l": left[1], "name_simplified_r": right[0], "name_key_r": right[1]})


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


def test_a_record_naming_another_is_a_comparison_of_its_own():
    """A sale names its lead, a claim its repair order: either way round, whatever else the
    records say; when neither names a record, the comparison is left out (its null level)."""
    def reference(left: tuple[str, str | None], right: tuple[str, str | None]) -> str:
        return _level("reference", {"mention_id_l": left[0], "refers_to_l": left[1], "mention_id_r": right[0], "refers_to_r": right[1]})

    lead, sale = ("leads:L1:prospect", None), ("sales_orders:S1:buyer", "leads:L1:prospect")
    assert reference(lead, sale) == reference(sale, lead) == "one names the other"
    assert reference(sale, ("sales_orders:S2:buyer", "leads:L1:prospect")) == "All other comparisons"
    assert reference(lead, ("sales_orders:S3:buyer", "leads:L2:prospect")) == "All other comparisons"
    assert reference(lead, ("leads:L2:prospect", None)) == "refers_to_l IS NULL AND refers_to_r IS NULL"


def _conditions(model: dict, dialect: str) -> list[str]:
    """Every comparison level and blocking rule of a model, normalised by sqlglot."""
    import sqlglot

    levels = [level["sql_condition"] for c in model["comparisons"] for level in c["comparison_levels"]]
    rules = [rule["blocking_rule"] for rule in model["blocking_rules_to_generate_predictions"]]
    return [sql if sql == "ELSE" else sqlglot.transpile(sql, read=dialect, write=dialect)[0] for sql in levels + rules]


def _pairs(model: dict) -> list[tuple[str, str, float]]:
    import pandas as pd
    from splink import DuckDBAPI, Linker

    people = [
        ("a1", "王伟", "wangwei", "wang", "13800138000", "110101199001011237", "LSVAA4182E2123456"),
        ("a2", "王伟", "wangwei", "wang", "13800138001", "110101199001011237", None),
        ("a3", "王偉", "wangwei", "wang", "13800138000", None, "LSVAA4182E2123456"),
        ("b1", "李娜", "lina", "li", "13912345678", None, None),
        ("b2", "李娜", "lina", "li", "13912345678", "110101198502023456", None),
        ("c1", "张强", "zhangqiang", "zhang", "13700001111", None, "LSVAA4182E2654321"),
    ]
    frame = pd.DataFrame(
        [{"mention_id": m, "name_simplified": n, "name_key": k, "surname_pinyin": s, "mobile": p, "mobile_alt": None,
          "id_number": i, "birth_date": None, "email": None, "vin": v, "customer_type": "person", "dealer_code": "D01",
          "refers_to": None}
         for m, n, k, s, p, i, v in people]
    )
    predictions = Linker(DuckDBAPI().register(frame), model).inference.predict().as_pandas_dataframe()
    return sorted((r.mention_id_l, r.mention_id_r, round(r.match_weight, 9)) for r in predictions.itertuples())


def test_a_model_saved_by_one_engine_scores_on_the_other():
    """A champion trained on DuckDB (a local run) scores on Spark (a cluster, or a lake grown
    past DuckDB's size) and back: its SQL is rewritten for the engine's dialect."""
    import pytest
    from splink import SettingsCreator
    from splink.internals.settings import Settings

    from cdp.config import LinkageModelConfig
    from entity_resolution.model import build_settings, in_dialect

    duckdb_model = build_settings(LinkageModelConfig()).get_settings("duckdb").as_dict()
    spark_model = build_settings(LinkageModelConfig()).get_settings("spark").as_dict()

    def weight_parts(model: dict, dialect: str) -> list:
        settings = SettingsCreator.from_path_or_dict(model).get_settings(dialect)
        return Settings.columns_to_select_for_match_weight_parts(
            settings.column_info_settings.unique_id_input_columns, settings.core_model_settings.comparisons, False, False, []
        )

    # As saved, Splink on Spark cannot read DuckDB's quoting (it finds no exact-match level).
    with pytest.raises(ValueError, match="exact match level"):
        weight_parts(duckdb_model, "spark")
    assert weight_parts(in_dialect(duckdb_model, "spark"), "spark")
    # DuckDB's SQL written for Spark is the SQL Splink writes for Spark itself.
    assert _conditions(in_dialect(duckdb_model, "spark"), "spark") == _conditions(spark_model, "spark")
    # A Spark model on DuckDB scores the same pairs as DuckDB's own.
    assert in_dialect(duckdb_model, "duckdb") is duckdb_model
    assert _pairs(in_dialect(spark_model, "duckdb")) == _pairs(duckdb_model) != []


@pytest.mark.spark
def test_the_u_of_one_naming_the_other_is_counted_and_kept_fixed(spark):
    """Random sampling almost never draws a record with the one it names, so u is counted:
    the pairs where one names the other over the pairs where at least one names a record. A
    name that points at no mention counts for nothing; training leaves the count as it is."""
    from cdp.config import LinkageModelConfig
    from entity_resolution.model import build_settings, reference_u_probability

    mentions = spark.createDataFrame(
        [("leads:L1:prospect", None), ("sales_orders:S1:buyer", "leads:L1:prospect"), ("sales_orders:S2:buyer", "leads:L9:prospect"),
         ("service_orders:R1:owner", None)],
        "mention_id string, refers_to string",
    )
    # Of the 6 pairs, 5 have a side naming a record (not leads:L1 with service_orders:R1); 1 names the other.
    assert reference_u_probability(mentions) == 1 / 5
    assert reference_u_probability(mentions.filter("mention_id != 'leads:L1:prospect'")) is None

    def level(reference_u):
        comparisons = build_settings(LinkageModelConfig(), reference_u).get_settings("duckdb").as_dict()["comparisons"]
        reference = next(c for c in comparisons if c["output_column_name"] == "reference")
        return next(lvl for lvl in reference["comparison_levels"] if lvl.get("label_for_charts") == "one names the other")

    assert level(1 / 6)["u_probability"] == 1 / 6 and level(1 / 6)["fix_u_probability"] is True
    assert "u_probability" not in level(None) and not level(None).get("fix_u_probability")


def test_a_level_no_sampled_pair_reached_gets_splinks_u_for_a_level_not_observed():
    """No sampled pair shares an ID: Splink leaves the exact level without a u and would score
    it with a default (u 0.00093 at an exact match, 10 bits). The model saved and scored with
    gives it Splink's u for a level not observed."""
    import pandas as pd
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    from entity_resolution.model import trained_model

    frame = pd.DataFrame({"unique_id": range(40), "name": [f"n{i % 4}" for i in range(40)], "id_number": [f"id{i}" for i in range(40)]})
    settings = SettingsCreator(
        link_type="dedupe_only", comparisons=[cl.ExactMatch("name"), cl.ExactMatch("id_number")],
        blocking_rules_to_generate_predictions=[block_on("name")],
    )
    linker = Linker(DuckDBAPI().register(frame), settings)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e4, seed=1)

    def exact_id(model: dict) -> dict:
        return next(c for c in model["comparisons"] if c["output_column_name"] == "id_number")["comparison_levels"][1]

    assert "u_probability" not in exact_id(linker.misc.save_model_to_json())
    saved = trained_model(linker)
    assert exact_id(saved)["u_probability"] == 1e-6
    # The names were sampled: their estimates are Splink's, rounded.
    name = next(c for c in saved["comparisons"] if c["output_column_name"] == "name")["comparison_levels"][1]
    assert 0 < name["u_probability"] < 1


def _training_records(n: int = 4000):
    """Records whose EM session blocked on name compares about a million pairs (8 names of
    about 500 records at 4,000): more than one DuckDB row group per thread, so a parallel SUM
    over the pairs adds in thread order."""
    import random

    import pandas as pd
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    rng = random.Random(3)
    frame = pd.DataFrame({
        "unique_id": range(n),
        "name": [f"n{rng.randrange(8)}" for _ in range(n)],
        "city": [f"c{rng.randrange(30)}" if rng.random() > 0.1 else None for _ in range(n)],
        "dob": [f"d{rng.randrange(400)}" for _ in range(n)],
        "email": [f"e{rng.randrange(2000)}" for _ in range(n)],
    })
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.ExactMatch("name").configure(term_frequency_adjustments=True),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.ExactMatch("dob"),
            cl.ExactMatch("email"),
        ],
        blocking_rules_to_generate_predictions=[block_on("name")],
    )
    return frame, settings


def _train(frame, settings, threads: int, one_thread=None, unstored: bool = False) -> tuple[dict, object]:
    import duckdb
    from splink import Linker

    from cdp.config import LinkageModelConfig
    from entity_resolution.model import StreamingDuckDBAPI, duckdb_one_thread, train_linker

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    api = StreamingDuckDBAPI(con)
    linker = Linker(api.register(frame), settings)
    params = LinkageModelConfig(deterministic_rules=[["email"]], training_blocking=[["name"], ["dob"]], max_pairs_for_u=1e5)
    with api.pairs_unstored() if unstored else nullcontext():
        train_linker(linker, params, seed=1, one_thread=one_thread or (lambda: duckdb_one_thread(con)))
    model = linker.misc.save_model_to_json()
    model.pop("linker_uid", None)
    return model, linker


def test_training_on_two_threads_gives_the_same_model_every_run_as_on_one():
    """EM iterates over counts of agreement patterns (integers, the same on any number of
    threads), not over every pair: two threads give the one-thread model to the last bit, run
    after run, unrounded. Iterating over the pairs, as Splink does with term frequencies, two
    threads gave a different model on some runs."""
    frame, settings = _training_records()
    one, _ = _train(frame, settings, threads=1)
    assert all(_train(frame, settings, threads=2)[0] == one for _ in range(3))
    city = next(c for c in one["comparisons"] if c["output_column_name"] == "city")["comparison_levels"]
    assert any("m_probability" in level for level in city)  # EM did train


def _pair_objects(linker, catalog: str) -> list[str]:
    """The names of EM's pair tables (`catalog` "tables") or views ("views") in the database."""
    from entity_resolution.model import StreamingDuckDBAPI

    column = "table_name" if catalog == "tables" else "view_name"
    names = linker._db_api.duckdb_con.execute(f"SELECT {column} FROM duckdb_{catalog}()").fetchall()
    return sorted(n for (n,) in names if n.startswith(StreamingDuckDBAPI.PAIR_TABLES))


def test_em_sessions_with_their_pairs_unstored_train_the_same_model_storing_no_pair():
    """Within `pairs_unstored`, each EM session's blocked pairs and comparison vectors are
    views, made and counted by agreement pattern in one pass: the model is the one stored
    pairs train, to the last bit, and no table of pairs is left in the database (of the
    million pairs the name session compares here, as of the 50 million at 300,000 customers)."""
    frame, settings = _training_records()
    stored, stored_linker = _train(frame, settings, threads=2)
    unstored, linker = _train(frame, settings, threads=2, unstored=True)
    assert unstored == stored
    assert len(_pair_objects(stored_linker, "tables")) == 4 and _pair_objects(stored_linker, "views") == []
    assert _pair_objects(linker, "tables") == [] and len(_pair_objects(linker, "views")) == 4  # two per session
    # Outside the context, a session stores its pairs again.
    from splink import block_on

    linker.training.estimate_parameters_using_expectation_maximisation(block_on("email"), estimate_without_term_frequencies=True)
    assert len(_pair_objects(linker, "tables")) == 2 and len(_pair_objects(linker, "views")) == 4


def test_within_pairs_unstored_duckdb_inlines_no_cte_and_afterwards_optimises_as_before():
    """Over the unstored pairs' views, with Splink's CTEs inlined, DuckDB 2.0 never finished
    Splink's check that a session has pairs (at 100,000 customers): within `pairs_unstored`
    the `cte_inlining` optimizer is off, beside any the connection had turned off, and after
    it the connection's own list is back."""
    import duckdb

    from entity_resolution.model import StreamingDuckDBAPI

    con = duckdb.connect()
    con.execute("SET disabled_optimizers = 'top_n'")

    def disabled() -> set[str]:
        value = con.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0][0]
        return {name.strip().lower() for name in value.split(",") if name.strip()}

    api = StreamingDuckDBAPI(con)
    with api.pairs_unstored():
        inside = disabled()
    assert inside == {"top_n", "cte_inlining"} and disabled() == {"top_n"}
    # A prediction's one COPY over its views keeps them inlined (faster, and it has no LIMIT).
    with api.pairs_unstored(StreamingDuckDBAPI.PREDICTION_TABLES, inline_ctes=True):
        inside = disabled()
    assert inside == {"top_n"} and disabled() == {"top_n"}


def test_views_splink_drops_within_pairs_unstored_go_when_it_ends():
    """A later view of the pipeline may read a view Splink drops within the context (a
    prediction's scored pairs read its blocked pairs, which Splink drops once they are
    scored): those go when the context ends, and tables outside it go at once."""
    import duckdb

    from entity_resolution.model import StreamingDuckDBAPI

    con = duckdb.connect()
    api = StreamingDuckDBAPI(con)

    def names() -> set[str]:
        return {n for (n,) in con.execute("SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}

    with api.pairs_unstored(StreamingDuckDBAPI.PREDICTION_TABLES):
        con.execute(api._setup_for_execute_sql("SELECT range AS i FROM range(5)", "__splink__blocked_id_pairs_1"))
        con.execute(api._setup_for_execute_sql("SELECT i * 2 AS j FROM __splink__blocked_id_pairs_1", "__splink__df_predict_1"))
        api.delete_table_from_database("__splink__blocked_id_pairs_1")
        assert names() == {"__splink__blocked_id_pairs_1", "__splink__df_predict_1"}
        assert con.execute("SELECT sum(j) FROM __splink__df_predict_1").fetchall()[0][0] == 20
    assert names() == {"__splink__df_predict_1"}
    con.execute(api._setup_for_execute_sql("SELECT 1 AS k", "__splink__blocked_id_pairs_2"))  # outside: a table, dropped at once
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '__splink__blocked_id_pairs_2'").fetchall()[0][0] == 1
    api.delete_table_from_database("__splink__blocked_id_pairs_2")
    api.delete_table_from_database("__splink__df_predict_1")
    assert names() == set()


def test_training_asks_for_one_thread_where_a_parallel_sum_could_change_the_model(monkeypatch):
    """The seeded sample u is estimated from is drawn on one thread. EM's iterations run
    without it while the patterns a model can make fit in one row group (one thread scans
    them), and within it once they could not."""
    from contextlib import contextmanager

    import entity_resolution.model as model

    frame, settings = _training_records(400)
    asked: list[int] = []

    @contextmanager
    def one_thread():
        asked.append(1)
        yield

    _, linker = _train(frame, settings, threads=2, one_thread=one_thread)
    assert model.agreement_patterns(linker) == 3**4  # four comparisons of three levels (null, exact, other)
    assert len(asked) == 1
    asked.clear()
    monkeypatch.setattr(model, "DUCKDB_ROW_GROUP_ROWS", 81)
    _train(frame, settings, threads=2, one_thread=one_thread)
    assert len(asked) == 1 + 2  # the sample and both EM sessions
