"""`cdp link` on files that have nothing to do with car dealers."""

from __future__ import annotations

import csv
import random

import pytest
from faker import Faker

from cdp.config import ConfigError, LakeConfig
from entity_resolution.evaluation import pairwise_scores
from entity_resolution.link import LinkMapping, build_link_settings, load_mapping
from entity_resolution.link_files import link_files as run

MAPPING = """
unique_id: rec_id
given_name: given_name
surname: surname
birth_date: {column: date_of_birth, format: yyyyMMdd}
phone: phone_number
email: email
address_lines: [address_1]
street_number: street_number
postcode: postcode
city: suburb
state: state
"""

FIELDS = ["rec_id", "given_name", "surname", "date_of_birth", "phone_number", "email", "street_number", "address_1", "suburb", "postcode", "state"]


def _people(n: int, seed: int) -> list[dict[str, str]]:
    fake = Faker("en_AU")
    fake.seed_instance(seed)
    people = []
    for i in range(n):
        people.append(
            {
                "person": f"P{i}",
                "given_name": fake.first_name(),
                "surname": fake.last_name(),
                "date_of_birth": fake.date_of_birth(minimum_age=18, maximum_age=90).strftime("%Y%m%d"),
                "phone_number": f"04{fake.numerify('########')}",
                "email": fake.email(),
                "street_number": str(fake.random_int(1, 400)),
                "address_1": fake.street_name(),
                "suburb": fake.city(),
                "postcode": fake.postcode(),
                "state": fake.state_abbr(),
            }
        )
    return people


def _messy(person: dict[str, str], rng: random.Random) -> dict[str, str]:
    """A second record of the same person, as another system would hold it."""
    copy = dict(person)
    name = copy["surname"]
    if len(name) > 3 and rng.random() < 0.5:
        i = rng.randrange(1, len(name) - 1)
        copy["surname"] = name[:i] + name[i + 1] + name[i] + name[i + 2:]
    copy["phone_number"] = "+61 " + copy["phone_number"][1:4] + " " + copy["phone_number"][4:]
    copy["given_name"] = copy["given_name"].upper()
    if rng.random() < 0.5:
        copy["email"] = ""
    if rng.random() < 0.3:
        copy["postcode"] = ""
    return copy


def _write(path, rows, padded=False):
    """A CSV file; `padded`: a space after every delimiter, names included ("rec_id, given_name"),
    as some exports (FEBRL's among them) write it."""
    with path.open("w", newline="", encoding="utf-8") as f:
        if padded:
            f.write(", ".join(FIELDS) + "\n")
            f.writelines(", ".join(str(r.get(c, "")) for c in FIELDS) + "\n" for r in rows)
            return
        writer = csv.DictWriter(f, FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def link_config(app_config, tmp_path_factory):
    root = tmp_path_factory.mktemp("link")
    return app_config.model_copy(
        update={
            "lake": LakeConfig(root=str(root / "lake"), raw_root=str(root)),
            "resolution": app_config.resolution.model_copy(update={"engine": "duckdb"}),
        }
    ), root


def _scores(spark, out, truth):
    clusters = spark.read.parquet(str(out)).selectExpr("concat(source_dataset, '/', unique_id) as mention_id", "cluster_id")
    truth_df = spark.createDataFrame(sorted(truth.items()), "mention_id string, person_id string")
    return pairwise_scores(clusters, truth_df)


@pytest.mark.spark
def test_dedupe_one_file(spark, link_config):
    config, root = link_config
    rng = random.Random(1)
    people = _people(300, seed=1)
    rows, truth = [], {}
    for person in people:
        for copy in [person] + ([_messy(person, rng)] if rng.random() < 0.4 else []):
            rec_id = f"r{len(rows)}"
            rows.append({**copy, "rec_id": rec_id})
            truth[f"people.csv/{rec_id}"] = person["person"]
    rng.shuffle(rows)
    _write(root / "people.csv", rows)
    (root / "mapping.yaml").write_text(MAPPING)

    counts = run(spark, config, load_mapping(root / "mapping.yaml"), [str(root / "people.csv")], str(root / "out.parquet"))

    assert counts["written"] == counts["records"] == len(rows)
    scores = _scores(spark, root / "out.parquet", truth)
    assert scores["pairwise_precision"] >= 0.95 and scores["pairwise_recall"] >= 0.9, scores


@pytest.mark.spark
def test_link_two_files(spark, link_config):
    config, root = link_config
    rng = random.Random(2)
    people = _people(250, seed=2)
    crm = [{**p, "rec_id": f"c{i}"} for i, p in enumerate(people[:200])]
    web = [{**_messy(p, rng), "rec_id": f"w{i}"} for i, p in enumerate(people[100:])]
    truth = {f"crm.csv/c{i}": p["person"] for i, p in enumerate(people[:200])}
    truth |= {f"web.parquet/w{i}": p["person"] for i, p in enumerate(people[100:])}
    _write(root / "crm.csv", crm, padded=True)
    _write(root / "web.csv", web)
    spark.read.option("header", True).csv(str(root / "web.csv")).write.mode("overwrite").parquet(str(root / "web.parquet"))
    out = root / "linked.csv"
    out.write_text("an earlier run's file")

    counts = run(spark, config, load_mapping_from_text(root), [str(root / "crm.csv"), str(root / "web.parquet")], str(out))

    assert out.is_file(), "--out NAME.csv is one file, not a folder"
    assert not (root / "linked.csv.writing").exists()
    with out.open(encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert len(written) == counts["written"] == len(crm) + len(web)
    assert written == sorted(written, key=lambda r: (r["source_dataset"], r["unique_id"]))
    assert {r["unique_id"] for r in written} >= {"c0", "w0"}  # padded names and values read trimmed
    clusters = spark.createDataFrame([(f"{r['source_dataset']}/{r['unique_id']}", r["cluster_id"]) for r in written], "mention_id string, cluster_id string")
    truth_df = spark.createDataFrame(sorted(truth.items()), "mention_id string, person_id string")
    scores = pairwise_scores(clusters, truth_df)
    assert scores["pairwise_precision"] >= 0.95 and scores["pairwise_recall"] >= 0.9, scores


def load_mapping_from_text(root):
    (root / "mapping.yaml").write_text(MAPPING)
    return load_mapping(root / "mapping.yaml")


@pytest.mark.spark
def test_missing_column_names_the_file_and_column(spark, link_config):
    config, root = link_config
    _write(root / "short.csv", [{"rec_id": "1", "given_name": "A"}])
    mapping = LinkMapping(unique_id="rec_id", full_name="name", phone="phone_number")
    with pytest.raises(ConfigError, match=r"short\.csv: column\(s\) name named in the mapping are not in the file"):
        run(spark, config, mapping, [str(root / "short.csv")], str(root / "x.parquet"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unique_id: id\nphone: p\n", "map full_name, or both given_name and surname"),
        ("unique_id: id\nfull_name: n\n", "map at least one of birth_date, phone, email, national_id, postcode"),
        ("unique_id: id\nfull_name: n\nphone: p\nfax: f\n", "fax: Extra inputs are not permitted"),
    ],
)
def test_bad_mapping_is_rejected_with_the_file_name(tmp_path, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_mapping(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_no_blocking_rule_pairs_a_name_part_with_a_whole_city():
    """A common surname (wang) or name start in a whole city would be millions of pairs: a city
    only ever blocks together with the house number. No JVM."""
    with_number = LinkMapping(unique_id="id", full_name="name", surname="surname", city="city", street_number="no", postcode="pc")
    without = LinkMapping(unique_id="id", full_name="name", surname="surname", city="city", phone="phone")
    for mapping in (with_number, without):
        settings = build_link_settings(mapping, "dedupe_only").get_settings("duckdb").as_dict()
        rules = [r["blocking_rule"] for r in settings["blocking_rules_to_generate_predictions"]]
        assert rules, mapping
        for rule in rules:
            if '"city"' in rule and ("surname_key" in rule or "substr" in rule):
                assert '"street_number"' in rule, rule
    assert not [r for r in rules if '"city"' in r]  # no house number: the city blocks nothing


LINK_COLUMNS = ["unique_id", "name_key", "name_sorted", "surname_key", "birth_date", "phone", "email", "national_id",
                "address", "street_number", "postcode", "city", "state"]


def _awkward(path):
    """Records as dealer and CRM exports hold them: padding, traditional characters, pinyin in
    capitals, separators in phones, dates that are not dates, empty fields."""
    rows = [
        ["rec_id", "given_name", "surname", "date_of_birth", "phone_number", "email", "street_number", "address_1", "suburb", "postcode", "state"],
        [" r1", " 偉", "王 ", "19560419", "+61 412-345-678", " A.Wang@Example.COM ", "12", " 1  Main   St ", "Syd-ney", " 2 000", "n.s.w."],
        ["r2", "WEI", "WANG", "1956-04-19", "0412345678", "", "12a", "1 main st", "sydney", "2000", "NSW"],
        ["r3", "Wei", "Wang", "1956419", "12-34", "a@b.cn", "", "", "上海市", "200000", "上海"],
        ["r4", "", "欧阳", "", "", "", "", "", "", "", ""],
        ["r5", "Mary Anne", "O'Neil", "20010230", "(02) 9876 5432", "M@X.COM", "7/3", "Unit 3, 7 Hill Rd", "St. Kilda", "3182", "VIC"],
    ]
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


@pytest.mark.spark
def test_local_linkage_columns_equal_the_spark_ones(spark, tmp_path):
    """`cdp link` without Spark builds, value for value, the columns the Spark path builds."""
    from entity_resolution.link import with_link_columns
    from entity_resolution.link_files import _read
    from entity_resolution.link_local import linkage_columns

    _awkward(tmp_path / "awkward.csv")
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    mapping = load_mapping(tmp_path / "mapping.yaml")
    on_spark = with_link_columns(_read(spark, str(tmp_path / "awkward.csv")), mapping, "awkward.csv").select(*LINK_COLUMNS)
    expected = sorted(tuple(r) for r in on_spark.collect())
    local = linkage_columns([str(tmp_path / "awkward.csv")], mapping)[LINK_COLUMNS].astype(object)
    got = sorted(tuple(None if v is None or v != v else v for v in row) for row in local.itertuples(index=False))
    assert got == expected
    assert any(r[4] == "1956-04-19" for r in got) and sum(r[4] is None for r in got) == 4  # one date of five parses


def test_cdp_link_on_one_machine_starts_no_jvm(tmp_path, no_spark, capsys):
    """With the DuckDB engine the whole command runs in this process; its file is the same
    shape as the Spark path's (one CSV, sorted, replaced on a re-run) and it links the people."""
    from pathlib import Path

    from app.cli import main as cdp_main

    rng = random.Random(3)
    people = _people(120, seed=3)
    crm = [{**p, "rec_id": f"c{i}"} for i, p in enumerate(people[:80])]
    web = [{**_messy(p, rng), "rec_id": f"w{i}"} for i, p in enumerate(people[40:])]
    _write(tmp_path / "crm.csv", crm, padded=True)
    _write(tmp_path / "web.csv", web)
    (tmp_path / "mapping.yaml").write_text(MAPPING)
    out = tmp_path / "linked.csv"
    out.write_text("an earlier run's file")
    args = ["link", str(tmp_path / "crm.csv"), str(tmp_path / "web.csv"), "--mapping", str(tmp_path / "mapping.yaml"),
            "--out", str(out), "--conf", str(Path(__file__).resolve().parents[2] / "conf" / "local.yaml")]

    assert cdp_main(args) == 0
    assert f"{len(crm) + len(web)} records" in capsys.readouterr().out
    first = out.read_bytes()
    with out.open(encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert [r["unique_id"] for r in written] == sorted(r["unique_id"] for r in written)
    cluster = {r["unique_id"]: r["cluster_id"] for r in written}
    same = [(f"c{i}", f"w{i - 40}") for i in range(40, 80)]
    assert sum(cluster[a] == cluster[b] for a, b in same) >= 0.9 * len(same)
    assert len({cluster[f"c{i}"] for i in range(40)}) == 40  # people in one file only stay apart
    assert cdp_main(args) == 0 and out.read_bytes() == first  # a re-run writes the same bytes

    _write(tmp_path / "dup.csv", [{**people[0], "rec_id": "1"}, {**people[1], "rec_id": "1"}])
    assert cdp_main(["link", str(tmp_path / "dup.csv"), *args[3:]]) == 2
    assert "dup.csv: column rec_id has a repeated (1) value" in capsys.readouterr().err
    assert cdp_main(["link", str(tmp_path / "missing.csv"), *args[3:]]) == 2
    assert "missing.csv" in capsys.readouterr().err
