"""`python -m bench forecasting --data-dir DIR`: a clinic's own CSVs, the benchmark's table."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pandas as pd

from bench.forecasting import main
from tests.unit.forecasting.tiny_models import ARTIFACT_KEY_HEX, tiny_model_dir
from worlds import Sampling, get_world


def _write_symptoms_csv(directory: Path) -> None:
    """Weekly PHQ-9/GAD-7 visits and daily check-ins, in the documented symptoms.csv layout."""
    rows = []
    for cadence, world in (("weekly", "step_change"), ("daily", "drift")):
        data, _ = get_world(world).generate(
            3, seed=9, sampling=Sampling(history_days=(100, 100), cadence=cadence)
        )
        long = data.symptoms.melt(
            id_vars=["patient_id", "date"], var_name="instrument", value_name="score"
        ).dropna()
        long["observed_at"] = (long["date"] + pd.Timedelta(hours=19)).dt.strftime(
            "%Y-%m-%dT%H:%M:%S+00:00"
        )
        rows.append(long[["patient_id", "observed_at", "instrument", "score"]])
    pd.concat(rows).to_csv(directory / "symptoms.csv", index=False)


def test_backtest_on_a_clinics_csvs_prints_the_benchmark_table(tmp_path, capsys) -> None:
    _write_symptoms_csv(tmp_path)
    out = tmp_path / "report.md"
    with mock.patch.dict(os.environ, {"NOVAMIND_ARTIFACT_KEY": ARTIFACT_KEY_HEX}):
        code = main(
            ["--data-dir", str(tmp_path), "--model-dir", str(tiny_model_dir()), "--out", str(out)]
        )
    assert code == 0
    printed = capsys.readouterr().out
    report = out.read_text(encoding="utf-8")
    assert printed.strip().endswith(report.strip().splitlines()[-1])
    for row in ("**ensemble**", "member: ets", "baseline: AutoETS", "baseline: seasonal naive"):
        assert f"| {row} |" in report
    # Six patients: three weekly (PHQ-9, GAD-7), three daily (four instruments).
    assert "6 patients, 18 series" in report
    table = next(line for line in report.splitlines() if line.startswith("| **ensemble** |"))
    mase = [float(cell) for cell in table.strip("|").split("|")[1:4]]
    assert all(0.1 < value < 5 for value in mase)
