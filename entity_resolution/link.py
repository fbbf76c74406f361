"""Bring your own data: dedupe one file, or link two, of arbitrary person records.

A small YAML mapping says which column plays which role; the records are standardised with
the same standardisers as the dealer feeds (names to simplified characters and toneless
pinyin, so 王偉 / WANG WEI / Wei Wang meet), a Splink model is built from the roles present,
trained (λ from near-certain rules, u by random sampling, m by EM) and used to cluster.

    unique_id: rec_id
    full_name: name              # or given_name: ... and surname: ...
    birth_date: {column: dob, format: yyyyMMdd}
    phone: phone
    email: email
    national_id: soc_sec_id
    address_lines: [address_1, address_2]
    street_number: street_number
    postcode: postcode
    city: suburb
    state: state
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.config import ConfigError
from entity_resolution.model import OneThread, estimate_by_em
from entity_resolution.standardise.names import with_standardised_name

__all__ = ["LinkMapping", "build_link_settings", "file_labels", "load_mapping", "train_link_model", "with_link_columns"]


class DateColumn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    format: str = "yyyy-MM-dd"


class LinkMapping(BaseModel):
    """Which source column plays which role. Only `unique_id` and a name are required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unique_id: str
    full_name: str | None = None
    given_name: str | None = None
    surname: str | None = None
    birth_date: DateColumn | None = None
    phone: str | None = None
    email: str | None = None
    national_id: str | None = None
    address_lines: list[str] = Field(default_factory=list)
    street_number: str | None = None
    postcode: str | None = None
    city: str | None = None
    state: str | None = None
    match_threshold: float = Field(default=0.95, gt=0, lt=1)

    @model_validator(mode="after")
    def _enough_to_match(self) -> LinkMapping:
        if not self.full_name and not (self.given_name and self.surname):
            raise ValueError("map full_name, or both given_name and surname")
        if not (self.birth_date or self.phone or self.email or self.national_id or self.postcode):
            raise ValueError("map at least one of birth_date, phone, email, national_id, postcode besides the name")
        return self

    def source_columns(self) -> list[str]:
        single = [self.unique_id, self.full_name, self.given_name, self.surname, self.phone, self.email,
                  self.national_id, self.street_number, self.postcode, self.city, self.state]
        dob = [self.birth_date.column] if self.birth_date else []
        return [c for c in (*single, *dob, *self.address_lines) if c]

    @property
    def roles(self) -> set[str]:
        present = {"name"}
        for role in ("birth_date", "phone", "email", "national_id", "street_number", "postcode", "city", "state"):
            if getattr(self, role):
                present.add(role)
        if self.surname:
            present.add("surname")
        if self.address_lines:
            present.add("address")
        return present


def file_labels(inputs: list[str]) -> list[str]:
    """Each input's `source_dataset`: its file name, prefixed by its position when two share one."""
    labels = [Path(p).name for p in inputs]
    if len(set(labels)) != len(labels):
        labels = [f"{i}_{label}" for i, label in enumerate(labels)]
    return labels


def load_mapping(path: str | Path) -> LinkMapping:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read mapping ({exc})") from exc
    try:
        return LinkMapping.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from exc


def _clean(column: str | None, pattern: str = r"[^0-9A-Za-z]") -> Column:
    if column is None:
        return F.lit(None).cast("string")
    value = F.upper(F.regexp_replace(F.trim(F.col(column).cast("string")), pattern, ""))
    return F.when(F.length(value) > 0, value)


def with_link_columns(df: DataFrame, mapping: LinkMapping, file_label: str) -> DataFrame:
    """Source records -> standardised linkage columns: unique_id, source_dataset, name_key,
    name_sorted, surname_key, birth_date, phone, email, national_id, address, street_number,
    postcode, city, state. Raises ConfigError naming the file and any missing column."""
    missing = [c for c in mapping.source_columns() if c not in df.columns]
    if missing:
        raise ConfigError(f"{file_label}: column(s) {', '.join(missing)} named in the mapping are not in the file")
    full = F.col(mapping.full_name) if mapping.full_name else F.concat_ws(" ", F.col(mapping.given_name), F.col(mapping.surname))
    with_names = df.withColumn("_full_name", full.cast("string")).transform(with_standardised_name, "_full_name")
    if mapping.surname:
        with_names = with_names.withColumn("_surname", F.col(mapping.surname).cast("string")).transform(with_standardised_name, "_surname")
    pinyin = F.col("_full_name_pinyin")
    dob = F.try_to_date(F.col(mapping.birth_date.column).cast("string"), mapping.birth_date.format) if mapping.birth_date else None
    phone = F.regexp_replace(F.col(mapping.phone).cast("string"), r"[^0-9]", "") if mapping.phone else None
    address = (
        F.lower(F.trim(F.regexp_replace(F.concat_ws(" ", *[F.col(c) for c in mapping.address_lines]), r"\s+", " ")))
        if mapping.address_lines
        else None
    )
    columns: dict[str, Column | None] = {
        "unique_id": F.col(mapping.unique_id).cast("string"),
        "source_dataset": F.lit(file_label),
        "name_key": F.regexp_replace(pinyin, " ", ""),
        "name_sorted": F.array_join(F.array_sort(F.split(pinyin, " ")), ""),
        "surname_key": F.regexp_replace(F.col("_surname_pinyin"), " ", "") if mapping.surname else None,
        "birth_date": F.date_format(dob, "yyyy-MM-dd") if dob is not None else None,
        "phone": F.when(F.length(phone) >= 6, phone) if phone is not None else None,
        "email": F.lower(F.trim(F.col(mapping.email))) if mapping.email else None,
        "national_id": _clean(mapping.national_id),
        "address": F.when(F.length(address) > 0, address) if address is not None else None,
        "street_number": _clean(mapping.street_number),
        "postcode": _clean(mapping.postcode, r"\s"),
        "city": _clean(mapping.city, r"[^0-9A-Za-z\u4e00-\u9fff]"),
        "state": _clean(mapping.state, r"[^0-9A-Za-z\u4e00-\u9fff]"),
    }
    return with_names.select(*[(c if c is not None else F.lit(None).cast("string")).alias(k) for k, c in columns.items()])


def build_link_settings(mapping: LinkMapping, link_type: str) -> Any:
    """Splink settings from the roles the mapping provides."""
    from splink import SettingsCreator, block_on

    roles = mapping.roles
    comparisons = [
        cl.CustomComparison(
            output_column_name="name",
            comparison_levels=[
                cll.NullLevel("name_key"),
                cll.ExactMatchLevel("name_key").configure(tf_adjustment_column="name_key"),
                cll.ExactMatchLevel("name_sorted").configure(label_for_charts="same words, other order"),
                cll.JaroWinklerLevel("name_key", 0.92),
                cll.JaroWinklerLevel("name_key", 0.80),
                cll.ElseLevel(),
            ],
        )
    ]
    optional: dict[str, Callable[[], Any]] = {
        "surname": lambda: cl.JaroWinklerAtThresholds("surname_key", [0.92]).configure(term_frequency_adjustments=True),
        # Damerau-Levenshtein: two swapped digits (a common keying error) are one edit, not two.
        "birth_date": lambda: cl.DamerauLevenshteinAtThresholds("birth_date", [1, 2]),
        "phone": lambda: cl.DamerauLevenshteinAtThresholds("phone", [1, 2]),
        "email": lambda: cl.EmailComparison("email"),
        "national_id": lambda: cl.DamerauLevenshteinAtThresholds("national_id", [1, 2]),
        "address": lambda: cl.JaroWinklerAtThresholds("address", [0.9, 0.7]),
        "street_number": lambda: cl.ExactMatch("street_number"),
        "postcode": lambda: cl.DamerauLevenshteinAtThresholds("postcode", [1]).configure(term_frequency_adjustments=True),
        "city": lambda: cl.ExactMatch("city").configure(term_frequency_adjustments=True),
        "state": lambda: cl.ExactMatch("state"),
    }
    comparisons += [build() for role, build in optional.items() if role in roles]
    # The sorted name words meet a name written in either order ("ruby vincent", "vincent ruby").
    blocking = [("name_sorted",)] + [(r,) for r in ("phone", "email", "national_id") if r in roles]
    if "birth_date" in roles:
        blocking.append(("birth_date",))
    if "postcode" in roles:
        blocking.append(("postcode", "street_number") if "street_number" in roles else ("postcode",))
    # Each rule below pairs a name part with a small place: a common surname (王, wang) in a whole
    # city would be millions of pairs, so a city always comes with the house number.
    here = [r for r in ("street_number", "state") if r in roles]
    if "surname" in roles:
        # A changed first name or house number: the surname and the place still meet.
        blocking += [("surname_key", "postcode")] if "postcode" in roles else []
        blocking += [("surname_key", *here)] if "street_number" in here else []
    if "address" in roles:
        # A typo in the surname and the ID: the same address lines in the same place.
        blocking.append(("address", "postcode") if "postcode" in roles else ("address",))
    # Typos everywhere but the start of the name: its first letters in the same place.
    prefix = "substr(name_key, 1, 4)"
    blocking += [(prefix, "postcode")] if "postcode" in roles else []
    blocking += [(prefix, "city", "street_number")] if {"city", "street_number"} <= roles else []
    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="unique_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[block_on(*cols) for cols in blocking],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def train_link_model(linker: Any, mapping: LinkMapping, seed: int = 42, one_thread: OneThread = nullcontext) -> None:
    """λ from rules that almost surely mean one person, u by sampling, m by EM sessions
    blocked on different roles so that every comparison is estimated at least once. `one_thread` as in
    `model.train_linker`."""
    from splink import block_on

    roles = mapping.roles
    deterministic = [block_on(r) for r in ("national_id", "email") if r in roles]
    deterministic += [block_on("name_key", r) for r in ("birth_date", "phone") if r in roles]
    deterministic = deterministic or [block_on("name_key", "postcode")]
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.7)
    with one_thread():
        linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=seed)
    estimate_by_em(linker, block_on("name_key"), one_thread)
    second = next((r for r in ("birth_date", "phone", "postcode", "email", "national_id") if r in roles), None)
    if second:
        estimate_by_em(linker, block_on(second), one_thread)
