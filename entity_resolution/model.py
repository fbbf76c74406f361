"""The Splink model for person mentions: comparisons, blocking, training, prediction.

Comparisons use the standardised columns, so 王偉 / 王伟 / WANG WEI meet on `name_key`
(toneless pinyin), homophones score as near matches, and a mobile or ID with one typo
still counts. A VIN is one comparison among others, never proof: cars are resold and
shared, and relatives bring them to the workshop. The same settings (and model JSON)
run on every engine.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from cdp import catalog
from cdp.config import LinkageModelConfig
from cdp.errors import MissingInputError
from cdp.reader import LakeReader

__all__ = [
    "DUCKDB_ROW_GROUP_ROWS", "ModelNotFoundError", "OneThread", "StreamingDuckDBAPI", "agreement_patterns", "build_settings", "duckdb_one_thread",
    "estimate_by_em", "in_dialect", "load_model", "reference_u_probability", "reference_u_probability_in_duckdb", "rounded_model", "save_model", "train_linker",
    "trained_model",
]

log = logging.getLogger(__name__)


def _tf(column: str, params: LinkageModelConfig) -> dict[str, object]:
    return {"tf_adjustment_column": column} if column in params.term_frequency else {}


def _name_comparison(params: LinkageModelConfig) -> cl.CustomComparison:
    high, low = params.name_similarity
    return cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            cll.NullLevel("name_key"),
            cll.ExactMatchLevel("name_simplified").configure(**_tf("name_simplified", params)),
            cll.ExactMatchLevel("name_key").configure(label_for_charts="same pinyin", **_tf("name_key", params)),
            _romanised_similar(high),
            _romanised_similar(low),
            _different_name(params),
        ],
    )


# A name with Latin letters (case exists) on either side: a romanised name, where a typo
# leaves the pinyin close. Two names in characters whose pinyin differs are different names:
# on pinyin keys Jaro-Winkler mostly measures a shared surname (wangwei / wangfang).
_ROMANISED = "(lower(name_simplified_l) <> upper(name_simplified_l) OR lower(name_simplified_r) <> upper(name_simplified_r))"


def _romanised_similar(threshold: float) -> cll.ComparisonLevelCreator:
    return cll.And(cll.JaroWinklerLevel("name_key", threshold), cll.CustomLevel(_ROMANISED)).configure(
        label_for_charts=f"romanised, Jaro-Winkler >= {threshold}"
    )


def _different_name(params: LinkageModelConfig) -> cll.ElseLevel:
    level = cll.ElseLevel()
    if params.different_name_m_probability is not None:
        level.configure(m_probability=params.different_name_m_probability, fix_m_probability=True)
    return level


def _mobile_comparison(params: LinkageModelConfig) -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="mobile",
        comparison_levels=[
            cll.CustomLevel(
                "(mobile_l IS NULL AND mobile_alt_l IS NULL) OR (mobile_r IS NULL AND mobile_alt_r IS NULL)"
            ).configure(is_null_level=True),
            cll.ExactMatchLevel("mobile").configure(**_tf("mobile", params)),
            cll.CustomLevel(
                "mobile_l = mobile_alt_r OR mobile_alt_l = mobile_r OR mobile_alt_l = mobile_alt_r",
                label_for_charts="one's other phone",
            ),
            cll.LevenshteinLevel("mobile", 1),
            cll.ElseLevel(),
        ],
    )


def reference_u_probability(mentions: DataFrame) -> float | None:
    """The share of pairs where one of `mentions` names the other, among the pairs the
    comparison speaks on (at least one names a record); None when none does. Random sampling
    cannot estimate it: at 100,000 customers one such pair in millions is one, and it samples
    2 million pairs. Counted over all pairs, matches included, it errs on the side of a weaker link."""
    n = mentions.count()
    named = mentions.filter(F.col("refers_to").isNotNull()).select(F.col("refers_to").alias("mention_id"))
    # One pass: every naming mention, and whether what it names is a mention (ids are unique).
    found = named.join(mentions.select("mention_id", F.lit(1).alias("_found")), "mention_id", "left")
    naming, pairs = found.agg(F.count("*"), F.count("_found")).first()
    return _reference_u(n, naming, pairs)


def reference_u_probability_in_duckdb(con: Any, table: str) -> float | None:
    """`reference_u_probability` of the mentions in the DuckDB table `table`, counted there."""
    n, naming, pairs = con.execute(
        f"SELECT count(*), count(refers_to), count(*) FILTER (WHERE refers_to IN (SELECT mention_id FROM {table})) FROM {table}"
    ).fetchall()[0]
    return _reference_u(n, naming, pairs)


def _reference_u(mentions: int, naming: int, pairs: int) -> float | None:
    """Of `mentions`, `naming` name a record and `pairs` name one of the mentions."""
    spoken_on = mentions * (mentions - 1) / 2 - (mentions - naming) * (mentions - naming - 1) / 2
    return pairs / spoken_on if pairs else None


def _reference_comparison(u_probability: float | None) -> cl.CustomComparison:
    """A sale names the lead it came from and a warranty claim its repair order (`refers_to`):
    the prospect who gave one mobile at the showroom often signs the contract with another.
    When neither names a record the comparison says nothing. Two records naming the same one
    (two claims on a repair order) are not a level of their own: training sessions blocked on
    mobile and VIN never see one among matches, so its m would be Splink's untrained default."""
    return cl.CustomComparison(
        output_column_name="reference",
        comparison_levels=[
            cll.CustomLevel("refers_to_l IS NULL AND refers_to_r IS NULL").configure(is_null_level=True),
            cll.CustomLevel("refers_to_l = mention_id_r OR refers_to_r = mention_id_l", label_for_charts="one names the other").configure(
                **({"u_probability": u_probability, "fix_u_probability": True} if u_probability is not None else {})
            ),
            cll.ElseLevel(),
        ],
    )


def build_settings(params: LinkageModelConfig, reference_u: float | None = None) -> SettingsCreator:
    """Splink settings for deduplicating person mentions (`mention_id` is the unique id);
    `reference_u` fixes the u of "one names the other" (`reference_u_probability`)."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="mention_id",
        comparisons=[
            _name_comparison(params),
            cl.ExactMatch("surname_pinyin"),
            _mobile_comparison(params),
            cl.LevenshteinAtThresholds("id_number", [1]),
            cl.ExactMatch("birth_date"),
            cl.ExactMatch("email"),
            cl.ExactMatch("vin").configure(term_frequency_adjustments="vin" in params.term_frequency),
            cl.ExactMatch("customer_type"),
            _reference_comparison(reference_u),
        ],
        blocking_rules_to_generate_predictions=[block_on(*cols) for cols in params.prediction_blocking],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        additional_columns_to_retain=[],
    )


# DuckDB runs a scan of fewer rows than one row group on one thread ("for a query to run on k
# threads, it needs to scan at least k * 122,880 rows", DuckDB's tuning guide).
DUCKDB_ROW_GROUP_ROWS = 122_880

OneThread = Callable[[], AbstractContextManager[None]]


@contextmanager
def duckdb_one_thread(con: Any) -> Iterator[None]:
    """DuckDB on one thread within: a parallel SUM of doubles adds its parts in the order the
    threads finish, which changes the last bits from run to run (and EM can then stop an
    iteration earlier or later), and a seeded sample is the same on every run only on one
    thread. Training asks for it where it needs it (`model.train_linker`)."""
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute(f"SET threads = {int(threads)}")


class StreamingDuckDBAPI(DuckDBAPI):
    """Splink's DuckDB API, which within `pairs_unstored` makes EM's blocked pairs and
    comparison vectors views instead of tables. An EM session without term frequencies
    (`estimate_by_em`) reads its comparison vectors once, to count them by agreement
    pattern, and iterates over those counts: as views, the pairs are made, compared and
    counted in one pass and never stored. Stored, the 50 million pairs of the VIN session at
    300,000 customers filled a disk with 14 GB free; unstored, DuckDB's temporary folder held
    at most 4.0 GB while that model trained. A prediction's blocked pairs and scored pairs
    (`PREDICTION_TABLES`) are views the same way, read once as they are sorted into their
    file (`DuckDBEngine`).

    Within it, unless asked to inline them, DuckDB keeps Splink's CTEs as written (no `cte_inlining`): Splink
    checks a session has pairs with a `LIMIT 1` over the comparison vectors, and over these
    views, with the CTEs inlined, DuckDB 2.0 waited forever on that query (at 100,000
    customers, on any number of threads)."""

    PAIR_TABLES = ("__splink__blocked_id_pairs", "__splink__df_comparison_vectors")
    # A prediction's blocked pairs and its scored pairs (`DuckDBEngine`'s prediction).
    PREDICTION_TABLES = ("__splink__blocked_id_pairs", "__splink__df_predict")

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        self._unstored: tuple[str, ...] = ()
        # The views made within `pairs_unstored`, and those Splink has asked to drop there:
        # a view later in the pipeline may still read them, so they go when it ends.
        self._views: set[str] = set()
        self._dropped: list[str] = []

    @contextmanager
    def pairs_unstored(self, tables: tuple[str, ...] = PAIR_TABLES, inline_ctes: bool = False) -> Iterator[None]:
        """Within it the tables whose names start with one of `tables` are views, dropped
        when it ends if Splink dropped them within. `inline_ctes`: leave DuckDB's CTE
        inlining on (a prediction's one `COPY` of its scored pairs took 51.3 s with it and
        64.8 s without at 100,000 customers; EM's sessions need it off, see above)."""
        con = self.duckdb_con
        disabled = con.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0][0]
        if not inline_ctes:
            con.execute(f"SET disabled_optimizers = '{','.join(filter(None, [disabled, 'cte_inlining']))}'")
        self._unstored = tables
        try:
            yield
        finally:
            self._unstored = ()
            con.execute(f"SET disabled_optimizers = '{disabled}'")
            dropped, self._dropped, self._views = self._dropped, [], set()
            for name in dropped:
                super().delete_table_from_database(name)

    def _setup_for_execute_sql(self, sql: str, physical_name: str) -> str:
        if not physical_name.startswith(self._unstored):  # never, outside `pairs_unstored`
            return super()._setup_for_execute_sql(sql, physical_name)
        super().delete_table_from_database(physical_name)
        self._views.add(physical_name)
        return f"CREATE VIEW {physical_name} AS\n{sql}"

    def delete_table_from_database(self, name: str) -> None:
        if name in self._views:
            self._dropped.append(name)
        else:
            super().delete_table_from_database(name)


def agreement_patterns(linker: Linker) -> int:
    """How many agreement patterns the model's comparisons can make: the product of their
    level counts. EM's iterations read one row per pattern seen."""
    return math.prod(len(c.comparison_levels) for c in linker._settings_obj.comparisons)


def estimate_by_em(linker: Linker, blocking_rule: Any, one_thread: OneThread = nullcontext) -> bool:
    """One EM session. Splink trains on a copy of the model and rejects an m or u that
    underflowed to 0 (a level seen only among non-matches in a small session); such a session
    is skipped with a warning and the model keeps the earlier estimates. True if it trained.

    The session counts its pairs by agreement pattern once, then iterates over those counts
    (`estimate_without_term_frequencies`; term frequencies still weigh each pair when
    predicting). Counting is exact on any number of threads; the iterations add doubles, and
    run on one thread because their table is under one row group. A model with more patterns
    than that trains within `one_thread`: the sums then come out the same on every run."""
    exact = nullcontext if agreement_patterns(linker) < DUCKDB_ROW_GROUP_ROWS else one_thread
    try:
        with exact():
            linker.training.estimate_parameters_using_expectation_maximisation(blocking_rule, estimate_without_term_frequencies=True)
    except ValueError as exc:
        if "below the minimum allowed" not in str(exc):
            raise
        log.warning("EM session skipped, an estimate underflowed to 0: %s", str(exc).split(".")[0])
        return False
    return True


def train_linker(
    linker: Linker, params: LinkageModelConfig, seed: int = 42, one_thread: OneThread = nullcontext, em_rules: Sequence[Any] | None = None
) -> None:
    """Estimate λ from deterministic rules, u by random sampling, m by EM on blocked pairs.
    `one_thread`: a context within which the backend runs on one thread. λ counts pairs
    (exact on any number of threads); the seeded sample u is estimated from is drawn within
    it (DuckDB draws the same sample for a seed only on one thread); EM as `estimate_by_em`,
    one session per rule of `em_rules` (by default, on `training_blocking`'s rules)."""
    linker.training.estimate_probability_two_random_records_match(
        [block_on(*cols) for cols in params.deterministic_rules], recall=params.deterministic_recall
    )
    with one_thread():
        linker.training.estimate_u_using_random_sampling(max_pairs=params.max_pairs_for_u, seed=seed)
    for rule in em_rules if em_rules is not None else [block_on(*cols) for cols in params.training_blocking]:
        estimate_by_em(linker, rule, one_thread)


# Significant digits a trained model's probabilities keep. Parallel sums make the last bits of
# EM's estimates vary from run to run (about 1e-16 relative); rounded, the same records give
# the same model, so the same pairs and scores, on every run.
MODEL_DIGITS = 12
_ESTIMATES = ("m_probability", "u_probability", "probability_two_random_records_match")


_SIMILARITY_FUNCTIONS = (
    "jaro_winkler_function_name", "jaro_function_name", "damerau_levenshtein_function_name", "levenshtein_function_name",
    "jaccard_function_name", "cosine_similarity_function_name",
)


def in_dialect(model: dict[str, Any], dialect: str) -> dict[str, Any]:
    """The saved model with its SQL (comparison levels, blocking rules) written for `dialect`
    (`duckdb`, `spark`): a champion trained on DuckDB scores on Spark and back. Quoting and
    functions are translated with sqlglot, Splink's similarity functions by their names in
    each dialect (DuckDB's `jaro_winkler_similarity` is `jaro_winkler` on Spark)."""
    import copy
    import re

    import sqlglot
    from splink.internals.dialects import SplinkDialect

    source_name = model.get("sql_dialect") or "duckdb"
    if source_name == dialect:
        return model
    source, target = SplinkDialect.from_string(source_name), SplinkDialect.from_string(dialect)
    names = []
    for attribute in _SIMILARITY_FUNCTIONS:
        try:
            names.append((getattr(source, attribute), getattr(target, attribute)))
        except NotImplementedError:
            continue
    names.sort(key=lambda pair: -len(pair[0]))

    def translate(sql: str) -> str:
        for old, new in names:
            sql = re.sub(rf"\b{re.escape(old)}\s*\(", f"{new}(", sql, flags=re.IGNORECASE)
        return sqlglot.transpile(sql, read=source.sqlglot_dialect, write=target.sqlglot_dialect)[0]

    converted = copy.deepcopy(model)
    converted["sql_dialect"] = dialect
    for rule in converted.get("blocking_rules_to_generate_predictions", []):
        if isinstance(rule, dict):
            rule["blocking_rule"] = translate(rule["blocking_rule"])
            rule["sql_dialect"] = dialect
    for comparison in converted.get("comparisons", []):
        for level in comparison.get("comparison_levels", []):
            if level.get("sql_condition", "").strip().upper() != "ELSE":
                level["sql_condition"] = translate(level["sql_condition"])
    return converted


# Splink scores a level it marks "not observed" with this u (`ComparisonLevel.u_probability`).
UNOBSERVED_U = 1e-6


def trained_model(linker: Linker) -> dict[str, Any]:
    """The trained model as JSON, rounded (`rounded_model`), to score with and to save.

    Random sampling leaves a level no sampled pair reached without a u, and Splink then scores
    it with a default spread over the comparison's levels: an exact ID match got u 0.00093
    (10 bits) and one's other phone counted against a match. Such a level gets Splink's u for a
    level not observed (`UNOBSERVED_U`): rarer than one sampled pair in millions."""
    from splink.internals.constants import LEVEL_NOT_OBSERVED_TEXT

    model = linker.misc.save_model_to_json()
    for comparison, saved in zip(linker._settings_obj.comparisons, model["comparisons"], strict=True):
        for level, out in zip(comparison.comparison_levels, saved["comparison_levels"], strict=True):
            sampled = [r["probability"] for r in level._trained_u_probabilities]
            if "u_probability" not in out and not level.is_null_level and LEVEL_NOT_OBSERVED_TEXT in sampled:
                out["u_probability"] = UNOBSERVED_U
    return rounded_model(model)


def rounded_model(model: Any) -> Any:
    """The model JSON with every estimated probability rounded to MODEL_DIGITS significant digits."""
    if isinstance(model, dict):
        return {k: float(f"{v:.{MODEL_DIGITS}g}") if k in _ESTIMATES and isinstance(v, float) else rounded_model(v) for k, v in model.items()}
    if isinstance(model, list):
        return [rounded_model(v) for v in model]
    return model


class ModelNotFoundError(MissingInputError, FileNotFoundError):
    """No trained model has been saved yet."""


def save_model(spark: SparkSession, model: dict[str, Any], path: str) -> None:
    """Save a trained model's JSON where every executor and the next run can read it."""
    spark.createDataFrame([(json.dumps(model),)], "model string").coalesce(1).write.mode("overwrite").text(path)


def read_model(reader: LakeReader) -> dict[str, Any]:
    """The saved model, read without Spark."""
    try:
        return json.loads(reader.text(catalog.RESOLUTION_MODEL))
    except MissingInputError as exc:
        raise ModelNotFoundError(f"no trained model at {reader.path(catalog.RESOLUTION_MODEL)}: run a full `cdp run resolve` first") from exc


def load_model(spark: SparkSession, path: str) -> dict[str, Any]:
    try:
        text = "\n".join(r.value for r in spark.read.text(path).collect())
    except Exception as exc:  # noqa: BLE001 - Spark raises AnalysisException for a missing path
        raise ModelNotFoundError(f"no trained model at {path}: run a full `cdp run resolve` first") from exc
    return json.loads(text)
