"""Person and company names: simplified Chinese plus a toneless pinyin form.

王偉 (traditional) and 王伟 share the simplified form 王伟 and the pinyin `wang wei`; a
romanised spelling (WANG WEI, Wang Wei, Wei Wang) gets the same pinyin, surname first,
so linkage can compare Chinese and romanised records. Homophones (王伟/王维) share pinyin.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType, StructField, StructType

__all__ = ["name_pinyin", "simplify_name", "standardise_name", "with_standardised_name"]

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_TOKEN = re.compile(r"[a-z]+")
_DROP = re.compile(r"[\s·•\.\u00b7\u30fb]+")

# Surnames whose reading differs from the character's everyday reading (单 shan, not dan).
_SURNAME_READINGS = {
    "单": "shan", "曾": "zeng", "区": "ou", "仇": "qiu", "解": "xie", "查": "zha",
    "朴": "piao", "盖": "ge", "乐": "yue", "尉": "yu", "缪": "miao", "翟": "zhai",
    "覃": "qin", "召": "shao", "折": "she", "黑": "he", "车": "che", "种": "chong",
}

# Common surnames, used to put a romanised "Given Surname" into surname-first order.
_COMMON_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤欧阳司马诸葛上官"
)


@lru_cache(maxsize=1)
def _t2s():  # type: ignore[no-untyped-def]
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=1)
def _surname_rank() -> dict[str, int]:
    """Pinyin of common surnames -> rank by frequency (0 = most common)."""
    from pypinyin import lazy_pinyin

    rank: dict[str, int] = {}
    for i, syllable in enumerate(lazy_pinyin(_COMMON_SURNAMES)):
        rank.setdefault(syllable, i)
    return rank


def _clean(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = unicodedata.normalize("NFKC", str(raw)).strip()
    return text or None


@lru_cache(maxsize=200_000)
def simplify_name(raw: str | None) -> str | None:
    """Name in simplified Chinese without spaces, or upper-case tokens for a romanised name."""
    text = _clean(raw)
    if text is None:
        return None
    if _CJK.search(text):
        return _DROP.sub("", _t2s().convert(text)) or None
    tokens = _LATIN_TOKEN.findall(text.lower())
    return " ".join(tokens).upper() or None


@lru_cache(maxsize=200_000)
def name_pinyin(raw: str | None) -> str | None:
    """Toneless lower-case pinyin syllables, surname first: 王偉 / WANG WEI / Wei Wang -> `wang wei`."""
    simplified = simplify_name(raw)
    if simplified is None:
        return None
    if _CJK.search(simplified):
        from pypinyin import lazy_pinyin

        syllables = [s for s in lazy_pinyin(simplified, errors="ignore") if s.isalpha()]
        if len(simplified) > 1 and simplified[0] in _SURNAME_READINGS and syllables:
            syllables[0] = _SURNAME_READINGS[simplified[0]]
        return " ".join(s.lower() for s in syllables) or None
    tokens = simplified.lower().split()
    # "Wei Wang": both can be surnames; the more common one is taken as the surname.
    rank = _surname_rank()
    unranked = len(rank) + 1
    if len(tokens) >= 2 and rank.get(tokens[-1], unranked) < rank.get(tokens[0], unranked):
        tokens = [tokens[-1], *tokens[:-1]]
    return " ".join(tokens)


def standardise_name(raw: str | None) -> tuple[str | None, str | None]:
    """(simplified name, pinyin) for one raw name."""
    return simplify_name(raw), name_pinyin(raw)


_NAME_STRUCT = StructType(
    [StructField("simplified", StringType()), StructField("pinyin", StringType())]
)


@pandas_udf(_NAME_STRUCT)  # type: ignore[call-overload]
def _standardise_name_udf(names: pd.Series) -> pd.DataFrame:
    simplified = [simplify_name(n) if isinstance(n, str) else None for n in names]
    pinyin = [name_pinyin(n) if isinstance(n, str) else None for n in names]
    return pd.DataFrame({"simplified": simplified, "pinyin": pinyin})


def build_standardised_name(name: Column) -> Column:
    """Struct column (simplified, pinyin) for a raw name column."""
    return _standardise_name_udf(name)


def with_standardised_name(df: DataFrame, source: str, prefix: str | None = None) -> DataFrame:
    """Add `<prefix>_simplified` and `<prefix>_pinyin` for the raw name column `source`.

    Grain unchanged. `prefix` defaults to `source`.
    """
    prefix = prefix or source
    tmp = f"__{prefix}_std"
    return (
        df.withColumn(tmp, build_standardised_name(F.col(source)))
        .withColumn(f"{prefix}_simplified", F.col(f"{tmp}.simplified"))
        .withColumn(f"{prefix}_pinyin", F.col(f"{tmp}.pinyin"))
        .drop(tmp)
    )
