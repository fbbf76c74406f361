from __future__ import annotations

import datetime as dt
import random

import pytest

from entity_resolution.standardise import name_pinyin, simplify_name


@pytest.mark.parametrize(
    ("raw", "simplified", "pinyin"),
    [
        ("王伟", "王伟", "wang wei"),
        ("王偉", "王伟", "wang wei"),  # traditional
        ("王维", "王维", "wang wei"),  # homophone typo: same pinyin
        (" 張 國榮 ", "张国荣", "zhang guo rong"),
        ("WANG WEI", "WANG WEI", "wang wei"),
        ("Wang Wei", "WANG WEI", "wang wei"),
        ("Wei Wang", "WEI WANG", "wang wei"),  # given name first, surname recognised
        ("ＷＡＮＧ　ＷＥＩ", "WANG WEI", "wang wei"),  # full-width letters and space
        ("单雄信", "单雄信", "shan xiong xin"),  # surname reading, not dan
        ("曾小贤", "曾小贤", "zeng xiao xian"),
        ("买买提·艾力", "买买提艾力", "mai mai ti ai li"),
        ("广州市恒通汽车贸易有限公司", "广州市恒通汽车贸易有限公司", "guang zhou shi heng tong qi che mao yi you xian gong si"),
        ("", None, None),
        ("   ", None, None),
        (None, None, None),
    ],
)
def test_names_standardise_to_simplified_and_pinyin(raw, simplified, pinyin):
    assert simplify_name(raw) == simplified
    assert name_pinyin(raw) == pinyin


@pytest.mark.spark
def test_with_standardised_name_on_spark(spark):
    from pyspark.testing import assertDataFrameEqual

    from entity_resolution.standardise import with_standardised_name

    df = spark.createDataFrame([("a", "劉麗華"), ("b", "LIU LIHUA"), ("c", None)], "id string, owner_name string")
    expected = spark.createDataFrame(
        [("a", "劉麗華", "刘丽华", "liu li hua"), ("b", "LIU LIHUA", "LIU LIHUA", "liu lihua"), ("c", None, None, None)],
        "id string, owner_name string, owner_name_simplified string, owner_name_pinyin string",
    )
    assertDataFrameEqual(df.transform(with_standardised_name, "owner_name"), expected)


_MOBILES = [
    ("+86 138-0013-8000", "13800138000", True),
    ("8613800138000", "13800138000", True),
    ("138 0013 8000", "13800138000", True),
    ("0086 13800138000", "13800138000", True),
    ("１３８００１３８０００", "13800138000", True),  # full-width digits
    ("1380013800", "1380013800", False),  # a digit short
    ("12800138000", "12800138000", False),  # no such prefix
    ("020-12345678", "02012345678", False),  # landline
    ("n/a", None, False),
    (None, None, False),
]


@pytest.mark.spark
def test_mobiles_normalise_and_flag(spark):
    from pyspark.testing import assertDataFrameEqual

    from entity_resolution.standardise import with_standardised_mobile

    df = spark.createDataFrame([(r[0],) for r in _MOBILES], "mobile_raw string")
    got = df.transform(with_standardised_mobile, "mobile_raw", "mobile")
    expected = spark.createDataFrame(_MOBILES, "mobile_raw string, mobile string, mobile_valid boolean")
    assertDataFrameEqual(got, expected)


def test_a_typed_mobile_normalises_like_the_spark_column():
    from entity_resolution.standardise.mobiles import standardise_mobile

    assert [standardise_mobile(raw) for raw, _, _ in _MOBILES if raw is not None] == [
        mobile for raw, mobile, _ in _MOBILES if raw is not None
    ]


def _random_resident_id(rng: random.Random) -> str:
    from stdnum.cn import ric

    body = f"{rng.choice(['110105', '440106', '310104'])}{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return body + ric.calc_check_digit(body + "0")


@pytest.mark.spark
def test_resident_id_check_agrees_with_python_stdnum(spark):
    from stdnum.cn import ric

    rng = random.Random(7)
    ids = [_random_resident_id(rng) for _ in range(300)]
    # Mistype one digit in half of them; the check digit must catch most such typos.
    for i in range(0, len(ids), 2):
        pos = rng.randrange(17)
        ids[i] = ids[i][:pos] + str((int(ids[i][pos]) + rng.randint(1, 9)) % 10) + ids[i][pos + 1 :]
    from entity_resolution.standardise.resident_ids import build_resident_id_valid

    df = spark.createDataFrame([(i,) for i in ids], "id_number string")
    got = {r[0]: r[1] for r in df.select("id_number", build_resident_id_valid(df.id_number)).collect()}
    def trusted(i: str) -> bool:
        # stdnum's check digit, plus a real calendar date (stdnum's is_valid also needs a
        # known region code, which synthetic IDs need not have).
        try:
            dt.date(int(i[6:10]), int(i[10:12]), int(i[12:14]))
        except ValueError:
            return False
        return ric.calc_check_digit(i) == i[17]

    assert got == {i: trusted(i) for i in ids}
    assert 0 < sum(got.values()) < len(ids)


@pytest.mark.spark
def test_resident_id_derives_birth_date_and_gender(spark):
    from pyspark.testing import assertDataFrameEqual

    from entity_resolution.standardise import with_standardised_resident_id

    rows = [
        ("11010519491231002X", "11010519491231002X", "resident_id", True, dt.date(1949, 12, 31), "F"),
        ("110105 19491231 0012", "110105194912310012", "resident_id", False, None, None),  # bad check digit
        ("44010619900230123X", "44010619900230123X", "resident_id", False, None, None),  # 30 February
        ("91440101MA59XXXX0Y", "91440101MA59XXXX0Y", "unknown", False, None, None),  # USCC, bad check
        ("91110000802100433B", "91110000802100433B", "uscc", True, None, None),
        ("12345", "12345", "unknown", False, None, None),
        # First-generation 15-digit ID -> its 18-character form with the check character.
        ("110105 491231 002", "11010519491231002X", "resident_id", True, dt.date(1949, 12, 31), "F"),
        ("440106900230123", "440106900230123", "unknown", False, None, None),  # no such birth date: left alone
        ("", None, None, None, None, None),
    ]
    df = spark.createDataFrame([(r[0],) for r in rows], "id_number string")
    expected = spark.createDataFrame(
        [r[1:] for r in rows],
        "id_number string, id_type string, id_valid boolean, id_birth_date date, id_gender string",
    )
    assertDataFrameEqual(df.transform(with_standardised_resident_id), expected)


@pytest.mark.spark
def test_vin_check_digit(spark):
    from pyspark.testing import assertDataFrameEqual

    from entity_resolution.standardise import with_standardised_vin

    rows = [
        ("1M8GDM9AXKP042788", "1M8GDM9AXKP042788", True),  # ISO 3779 textbook example
        ("1m8gdm9a-xkp042788", "1M8GDM9AXKP042788", True),
        ("1M8GDM9A1KP042788", "1M8GDM9A1KP042788", False),  # wrong check digit
        ("1M8GDM9AXKP04278", "1M8GDM9AXKP04278", False),  # 16 characters
        ("1M8GDM9AXKPO42788", "1M8GDM9AXKPO42788", False),  # letter O is not allowed
        (None, None, False),
    ]
    df = spark.createDataFrame([(r[0],) for r in rows], "vin string")
    expected = spark.createDataFrame([r[1:] for r in rows], "vin string, vin_valid boolean")
    assertDataFrameEqual(df.transform(with_standardised_vin), expected)


@pytest.mark.spark
def test_uscc_check_agrees_with_python_stdnum(spark):
    from stdnum.cn import uscc

    from entity_resolution.standardise.resident_ids import build_uscc_valid

    rng = random.Random(11)
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    codes = []
    for _ in range(200):
        body = rng.choice(["91", "92", "11", "51"]) + f"{rng.randint(110000, 659999)}" + "".join(rng.choice(alphabet) for _ in range(9))
        check = uscc.calc_check_digit(body)
        codes.append(body + (check if rng.random() < 0.5 else rng.choice(alphabet)))
    df = spark.createDataFrame([(c,) for c in codes], "id_number string")
    got = {r[0]: r[1] for r in df.select("id_number", build_uscc_valid(df.id_number)).collect()}
    assert got == {c: uscc.is_valid(c) for c in codes}


@pytest.mark.spark
def test_vin_check_agrees_with_generator_on_random_vins(spark):
    from datagen.identifiers import vin, vin_check_digit
    from entity_resolution.standardise.vins import build_vin_valid

    rng = random.Random(3)
    vins = [vin(rng, rng.choice(["AA3B1", "SX5F5", "EN1H7"]), rng.randint(2010, 2030), rng.randrange(10**6)) for _ in range(200)]
    vins = [v if i % 2 else v[:12] + str(rng.randrange(10)) + v[13:] for i, v in enumerate(vins)]
    df = spark.createDataFrame([(v,) for v in vins], "vin string")
    got = {r[0]: r[1] for r in df.select("vin", build_vin_valid(df.vin)).collect()}
    assert got == {v: v[8] == vin_check_digit(v) for v in vins}
    assert 0 < sum(got.values()) < len(vins)


def test_a_form_of_address_after_a_name(spark):
    """高秀强先生 is 高秀强; 王先生 and 欧阳女士 are only surnames; 王伟女士 is 王伟."""
    from entity_resolution.mentions import with_name_parts

    names = ["高秀强先生", "高秀强", "王伟女士", "王先生", "欧阳女士", "李小姐", "张丽太太", "先生", "陈先生好", None]
    rows = [(n, simplify_name(n), name_pinyin(n)) for n in names]
    parts = with_name_parts(spark.createDataFrame(rows, "raw string, name_simplified string, name_pinyin string")).collect()
    got = {r["raw"]: (r["name_simplified"], r["name_pinyin"], r["name_key"], r["surname_pinyin"]) for r in parts}
    assert got["高秀强先生"] == got["高秀强"] == ("高秀强", "gao xiu qiang", "gaoxiuqiang", "gao")
    assert got["王伟女士"] == ("王伟", "wang wei", "wangwei", "wang")
    assert got["王先生"] == (None, None, None, "wang")
    assert got["欧阳女士"] == (None, None, None, "ou")
    assert got["李小姐"] == (None, None, None, "li")
    assert got["张丽太太"] == ("张丽", "zhang li", "zhangli", "zhang")
    assert got["陈先生好"][0] == "陈先生好"  # not at the end: a name, left alone
    assert got[None] == (None, None, None, None)
