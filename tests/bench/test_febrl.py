"""The FEBRL benchmark's scoring (no JVM)."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.febrl import main, pairwise


def test_pairs_are_scored_by_the_person_in_the_record_id():
    clusters = pd.DataFrame(
        {
            "source_dataset": ["a.csv", "a.csv", "b.csv", "b.csv", "b.csv"],
            "unique_id": ["rec-1-org", " rec-2-org", "rec-1-dup-0", "rec-2-dup-0", "rec-3-dup-0"],
            "cluster_id": ["K1", "K2", "K1", "K1", "K3"],
        }
    )
    # Dedupe: three pairs predicted in K1, one of them true, out of two true pairs.
    assert pairwise(clusters, link=False) == {
        "pairs_predicted": 3, "pairs_true": 2, "precision": 0.3333, "recall": 0.5, "f1": 0.4,
    }
    # Link: only pairs across the files count (K1's b-b pair drops out).
    assert pairwise(clusters, link=True) == {
        "pairs_predicted": 2, "pairs_true": 2, "precision": 0.5, "recall": 0.5, "f1": 0.5,
    }


def test_a_folder_without_the_febrl_files_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(tmp_path), "--work", str(tmp_path / "work")])
    assert exit_info.value.code == 2
    assert f"{tmp_path}: no dataset3.csv, dataset4a.csv, dataset4b.csv" in capsys.readouterr().err
