"""`cdp link` on one machine without Spark: the files read, standardised, linked and written
by DuckDB in this process (Splink's DuckDB backend), for inputs that fit one machine.

The linkage columns are the ones `entity_resolution.link.with_link_columns` builds on Spark,
written here in DuckDB SQL (names through the same Python standardiser); a test holds the two
equal. `entity_resolution.link_files` is the Spark path, for a cluster or very large files.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from cdp.config import AppConfig, ConfigError
from cdp.errors import UsageError
from cdp.files import OutputError
from entity_resolution.link import LinkMapping, build_link_settings, file_labels, train_link_model
from entity_resolution.model import StreamingDuckDBAPI, duckdb_one_thread, trained_model
from entity_resolution.standardise.names import standardise_name

__all__ = ["count_rows", "link_columns_sql", "link_files_locally", "linkage_columns", "links_locally", "strptime_format"]

log = logging.getLogger(__name__)

# Java date pattern letters (as `birth_date.format` is written, for Spark) -> strptime codes.
_DATE_CODES = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "M": "%m", "dd": "%d", "d": "%d"}


def strptime_format(pattern: str) -> str:
    """A Java date pattern such as yyyyMMdd or dd/MM/yyyy as a DuckDB strptime format."""
    out, rest = [], pattern
    while rest:
        token = next((t for t in sorted(_DATE_CODES, key=len, reverse=True) if rest.startswith(t)), None)
        if token is not None:
            out.append(_DATE_CODES[token])
            rest = rest[len(token):]
        elif rest[0].isalpha():
            raise ConfigError(f"birth_date format {pattern!r}: only y, M and d are supported when linking on one machine")
        else:
            out.append("%%" if rest[0] == "%" else rest[0])
            rest = rest[1:]
    return "".join(out)


def _fixed_width(pattern: str) -> bool:
    """Whether every field of a Java date pattern has a fixed width (yyyy, yy, MM, dd)."""
    letters = re.findall(r"([A-Za-z])\1*", pattern)
    runs = re.findall(r"(?:y+|M+|d+)", pattern)
    return len(letters) == len(runs) and all(r in ("yyyy", "yy", "MM", "dd") for r in runs)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _read_sql(path: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        # Every value as text, as Spark reads it; padded names and values are trimmed below.
        return f"read_csv({_lit(path)}, header = true, all_varchar = true, quote = '\"', escape = '\"', strict_mode = false)"
    if suffix == ".parquet" or Path(path).is_dir():
        target = f"{path.rstrip('/')}/*.parquet" if Path(path).is_dir() else path
        return f"read_parquet({_lit(target)})"
    raise UsageError(f"{path}: only .csv and .parquet files can be linked")


def _clean(column: str | None, pattern: str = r"[^0-9A-Za-z]") -> str:
    if column is None:
        return "CAST(NULL AS VARCHAR)"
    value = f"upper(regexp_replace(trim(CAST({column} AS VARCHAR)), {_lit(pattern)}, '', 'g'))"
    return f"CASE WHEN length({value}) > 0 THEN {value} END"


def _full_name_sql(col: Callable[[str], str], mapping: LinkMapping) -> str:
    """The full name as SQL: the mapped column, or given name and surname joined by a space."""
    if mapping.full_name:
        return col(mapping.full_name)
    return f"concat_ws(' ', {col(mapping.given_name or '')}, {col(mapping.surname or '')})"


def link_columns_sql(source: str, columns: list[str], mapping: LinkMapping, names: str) -> str:
    """SELECT of the linkage columns (as `with_link_columns`) from the relation `source`, whose
    columns are `columns` (trimmed names); `names` maps raw names to (simplified, pinyin)."""
    missing = [c for c in mapping.source_columns() if c not in columns]
    if missing:
        raise ConfigError(f"column(s) {', '.join(missing)} named in the mapping are not in the file")

    def col(name: str) -> str:
        return f"CAST(s.{_q(name)} AS VARCHAR)"

    full = _full_name_sql(col, mapping)
    pinyin = "fn.pinyin"
    phone = f"regexp_replace({col(mapping.phone)}, '[^0-9]', '', 'g')" if mapping.phone else None
    address = (
        f"lower(trim(regexp_replace(concat_ws(' ', {', '.join(col(c) for c in mapping.address_lines)}), '\\s+', ' ', 'g')))"
        if mapping.address_lines else None
    )
    dob = None
    if mapping.birth_date:
        pattern = mapping.birth_date.format
        value = col(mapping.birth_date.column)
        dob = f"try_strptime({value}, {_lit(strptime_format(pattern))})"
        if _fixed_width(pattern):
            # Spark reads MM and dd as exactly two digits: 1956419 is no date, not 1956-04-19.
            dob = f"CASE WHEN length({value}) = {len(pattern)} THEN {dob} END"
    place = "[^0-9A-Za-z\u4e00-\u9fff]"
    selected = {
        "unique_id": col(mapping.unique_id),
        "name_key": f"replace({pinyin}, ' ', '')",
        "name_sorted": f"array_to_string(list_sort(string_split({pinyin}, ' ')), '')",
        "surname_key": "replace(sn.pinyin, ' ', '')" if mapping.surname else None,
        "birth_date": f"strftime({dob}, '%Y-%m-%d')" if dob else None,
        "phone": f"CASE WHEN length({phone}) >= 6 THEN {phone} END" if phone else None,
        "email": f"lower(trim({col(mapping.email)}))" if mapping.email else None,
        "national_id": _clean(col(mapping.national_id)) if mapping.national_id else None,
        "address": f"CASE WHEN length({address}) > 0 THEN {address} END" if address else None,
        "street_number": _clean(col(mapping.street_number)) if mapping.street_number else None,
        "postcode": _clean(col(mapping.postcode), r"\s") if mapping.postcode else None,
        "city": _clean(col(mapping.city), place) if mapping.city else None,
        "state": _clean(col(mapping.state), place) if mapping.state else None,
    }
    joins = f"LEFT JOIN {names} fn ON fn.raw = {full}"
    if mapping.surname:
        joins += f" LEFT JOIN {names} sn ON sn.raw = {col(mapping.surname)}"
    body = ", ".join(f"{expr or 'CAST(NULL AS VARCHAR)'} AS {_q(name)}" for name, expr in selected.items())
    return f"SELECT {body} FROM {source} s {joins}"


def _one(con: Any, query: str) -> int:
    rows = con.execute(query).fetchall()
    return int(rows[0][0]) if rows else 0


def count_rows(inputs: list[str]) -> int:
    """Records in the files (DuckDB reads only what it needs to count)."""
    import duckdb

    total = 0
    with duckdb.connect() as con:
        for path in inputs:
            try:
                total += _one(con, f"SELECT count(*) FROM {_read_sql(path)}")
            except duckdb.Error as exc:
                raise UsageError(f"{path}: cannot read the file ({str(exc).splitlines()[0]})") from exc
    return total


def _standardised_names(con: Any, relations: list[tuple[str, str, list[str]]], mapping: LinkMapping) -> None:
    """Table `link_names` (raw, simplified, pinyin) of every distinct full name and surname."""
    raw: set[str] = set()
    for relation, _, columns in relations:
        if any(c not in columns for c in mapping.source_columns()):
            continue  # reported with the file's name by `link_columns_sql`

        def col(name: str) -> str:
            return f"CAST({_q(name)} AS VARCHAR)"

        parts = [_full_name_sql(col, mapping)]
        if mapping.surname:
            parts.append(col(mapping.surname))
        for part in parts:
            raw.update(v for (v,) in con.execute(f"SELECT DISTINCT {part} FROM {relation}").fetchall() if v is not None)
    names = sorted(raw)
    standardised = [standardise_name(n) for n in names]
    frame = pd.DataFrame({"raw": names, "simplified": [s for s, _ in standardised], "pinyin": [p for _, p in standardised]}, dtype="string")
    con.register("link_names_frame", frame)
    con.execute("CREATE OR REPLACE TABLE link_names AS SELECT * FROM link_names_frame")
    con.unregister("link_names_frame")


def links_locally(config: AppConfig, master: str | None, inputs: list[str]) -> bool:
    """Whether `cdp link` runs here without Spark: the linkage engine is DuckDB, or `auto` on a
    local master (not under spark-submit) with no more records than `duckdb_max_mentions`."""
    engine = config.resolution.engine
    if engine == "spark" or "PYSPARK_GATEWAY_PORT" in os.environ:
        return False
    if engine == "duckdb":
        return True
    if not (master or config.spark.master or "").startswith("local"):
        return False
    return all(Path(p).suffix.lower() in (".csv", ".parquet") or Path(p).is_dir() for p in inputs) and (
        count_rows(inputs) <= config.resolution.duckdb_max_mentions
    )


def _load_inputs(con: Any, inputs: list[str], labels: list[str], mapping: LinkMapping) -> list[str]:
    """Read each file into a table of linkage columns (`input_0`, ...), checking its IDs."""
    import duckdb

    relations = []
    for i, path in enumerate(inputs):
        try:
            con.execute(f"CREATE VIEW file_{i} AS SELECT * FROM {_read_sql(path)}")
            found = [r[0] for r in con.execute(f"DESCRIBE file_{i}").fetchall()]
            if path.lower().endswith(".csv"):
                # Exports often pad fields after the delimiter ("rec_id, given_name"): names and
                # values are trimmed, and a field left empty is no value.
                values = ", ".join(f"NULLIF(trim({_q(c)}), '') AS {_q(c.strip())}" for c in found)
            else:
                values = ", ".join(f"{_q(c)} AS {_q(c.strip())}" for c in found)
            con.execute(f"CREATE TABLE raw_{i} AS SELECT {values} FROM file_{i}")
        except duckdb.Error as exc:
            raise UsageError(f"{path}: cannot read the file ({str(exc).splitlines()[0]})") from exc
        relations.append((f"raw_{i}", path, [c.strip() for c in found]))
    _standardised_names(con, relations, mapping)
    tables: list[str] = []
    for (relation, path, columns), label in zip(relations, labels):
        try:
            select = link_columns_sql(relation, columns, mapping, "link_names")
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        con.execute(f"CREATE TABLE input_{len(tables)} AS SELECT *, {_lit(label)} AS source_dataset FROM ({select})")
        bad = con.execute(
            f"SELECT count(*) FILTER (WHERE unique_id IS NULL), "
            f"(SELECT unique_id FROM input_{len(tables)} GROUP BY unique_id HAVING count(*) > 1 ORDER BY unique_id LIMIT 1) "
            f"FROM input_{len(tables)}"
        ).fetchall()[0]
        if bad and (bad[0] or bad[1] is not None):
            what = "an empty" if bad[0] else f"a repeated ({bad[1]})"
            raise UsageError(f"{path}: column {mapping.unique_id} has {what} value; unique_id must identify each row")
        tables.append(f"input_{len(tables)}")
    return tables


def linkage_columns(inputs: list[str], mapping: LinkMapping) -> pd.DataFrame:
    """The linkage columns `cdp link` builds from the files, as a pandas frame (for checks)."""
    import duckdb

    with duckdb.connect() as con:
        tables = _load_inputs(con, inputs, [Path(p).name for p in inputs], mapping)
        return con.execute(" UNION ALL ".join(f"SELECT * FROM {t}" for t in tables)).df()


def link_files_locally(config: AppConfig, mapping: LinkMapping, inputs: list[str], out: str) -> dict[str, int]:
    """`link_files` without Spark: link the files and write `out` (.csv or .parquet, one file,
    replaced on a re-run, rows sorted by file and ID). Returns counts."""
    import duckdb
    from splink import Linker

    if not 1 <= len(inputs) <= 2:
        raise UsageError("give one file to dedupe or two to link")
    labels = file_labels(inputs)
    destination = Path(out)
    if destination.is_dir() and any(destination.iterdir()):
        raise OutputError(f"{out} is a folder that is not empty: give a file name")
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = {_lit(config.resolution.duckdb_memory_limit)}")
        tables = _load_inputs(con, inputs, labels, mapping)
        total = sum(_one(con, f"SELECT count(*) FROM {t}") for t in tables)

        api = StreamingDuckDBAPI(con)
        registered = [api.register(t) for t in tables]
        inputs_ = registered if len(registered) > 1 else registered[0]
        settings = build_link_settings(mapping, "dedupe_only" if len(tables) == 1 else "link_only")
        linker = Linker(inputs_, settings, log_level=logging.WARNING)
        with api.pairs_unstored():
            train_link_model(linker, mapping, seed=config.resolution.seed, one_thread=lambda: duckdb_one_thread(con))
        linker = Linker(inputs_, trained_model(linker), log_level=logging.WARNING)
        predictions = linker.inference.predict(threshold_match_probability=config.resolution.prediction_threshold)
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, mapping.match_threshold)
        con.execute(
            "CREATE TABLE link_result AS SELECT source_dataset, CAST(unique_id AS VARCHAR) AS unique_id, "
            f"'K' || CAST(cluster_id AS VARCHAR) AS cluster_id FROM {clusters.physical_name}"
        )
        written, groups = con.execute("SELECT count(*), count(DISTINCT cluster_id) FROM link_result").fetchall()[0]
        _write(con, destination)
    finally:
        con.close()
    return {"records": total, "clusters": int(groups), "written": int(written)}


def _write(con: Any, destination: Path) -> None:
    """One file, written beside the destination and moved into place (a killed write leaves no
    half-written file); rows in a stable order, so the same input gives the same bytes."""
    fmt = "FORMAT csv, HEADER true" if destination.suffix.lower() == ".csv" else "FORMAT parquet"
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(destination.name + ".writing")
    staging.unlink(missing_ok=True)
    con.execute(f"COPY (SELECT * FROM link_result ORDER BY source_dataset, unique_id) TO {_lit(str(staging))} ({fmt})")
    if destination.is_dir():
        destination.rmdir()
    os.replace(staging, destination)
