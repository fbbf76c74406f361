"""The feature catalogue as users read it (no JVM)."""

from __future__ import annotations

from app.cli import main
from features.catalog import FEATURES


def test_describe_prints_every_feature_with_its_definition(capsys):
    assert main(["run", "features", "--describe"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(FEATURES) + 1
    for feature, line in zip(FEATURES, out[1:]):
        assert line.startswith(feature.name) and feature.definition in line
        assert ("[drives segments]" in line) == feature.drives_segments


def test_feature_names_are_unique_snake_case():
    names = [f.name for f in FEATURES]
    assert len(names) == len(set(names))
    assert all(n == n.lower() and " " not in n for n in names)
    assert {f.family for f in FEATURES} == {"demographics", "behaviour", "value", "lifecycle"}
