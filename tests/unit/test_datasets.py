"""CSV loaders: round trip from the synthetic cohort, every validation rule, PHI-free errors."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common.datasets import (
    DatasetError,
    biometrics_to_daily,
    cohort_to_csvs,
    genotypes_to_wide,
    load_biometrics,
    load_genotypes,
    load_medications,
    load_outcomes,
    load_symptoms,
    sha256_of_frames,
    symptoms_to_daily,
)
from common.synthetic import INSTRUMENTS, METRICS, Cohort, CohortConfig, generate_cohort

Loader = Callable[[Path], pd.DataFrame]

SYMPTOMS_HEADER = "patient_id,observed_at,instrument,score"
BIOMETRICS_HEADER = "patient_id,measured_at,metric,value,granularity"
MEDICATIONS_HEADER = "patient_id,occurred_at,medication,event,daily_dose_mg"
GENOTYPES_HEADER = "patient_id,gene,diplotype"
OUTCOMES_HEADER = "patient_id,medication,responded,side_effect"

GOOD_SYMPTOM = "MRN-1000001,2026-03-01T08:00:00+01:00,phq9,12"
GOOD_BIOMETRIC = "MRN-1000001,2026-03-01T00:00:00Z,resting_heart_rate,61.5,day"
GOOD_MEDICATION = "MRN-1000001,2026-03-01T09:00:00-05:00,sertraline,start,50"
GOOD_GENOTYPE = "MRN-1000001,CYP2C19,*1/*17"
GOOD_OUTCOME = "MRN-1000001,sertraline,1,0"


@pytest.fixture(scope="module")
def cohort() -> Cohort:
    return generate_cohort(CohortConfig(n_patients=25, n_days=40, seed=7))


@pytest.fixture(scope="module")
def csv_paths(cohort: Cohort, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return cohort_to_csvs(cohort, tmp_path_factory.mktemp("cohort"))


def write(tmp_path: Path, name: str, header: str, *rows: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


# --- round trip ---------------------------------------------------------------------------


def test_cohort_to_csvs_writes_the_five_files(csv_paths: dict[str, Path]) -> None:
    assert set(csv_paths) == {"symptoms", "biometrics", "medications", "genotypes", "outcomes"}
    headers = {kind: path.read_text().splitlines()[0] for kind, path in csv_paths.items()}
    assert headers == {
        "symptoms": SYMPTOMS_HEADER,
        "biometrics": BIOMETRICS_HEADER,
        "medications": MEDICATIONS_HEADER,
        "genotypes": GENOTYPES_HEADER,
        "outcomes": OUTCOMES_HEADER,
    }


def _assert_daily_round_trip(
    original: pd.DataFrame, daily: pd.DataFrame, columns: tuple[str, ...]
) -> None:
    merged = original.merge(daily, on=["patient_id", "date"], how="left", suffixes=("", "_loaded"))
    assert len(merged) == len(original)
    for column in columns:
        np.testing.assert_array_equal(
            merged[column].to_numpy(np.float64), merged[f"{column}_loaded"].to_numpy(np.float64)
        )
    # Nothing appears that the cohort did not have.
    extra = daily.merge(original[["patient_id", "date"]], how="left", indicator=True)
    assert (extra["_merge"] == "both").all()


def test_symptoms_round_trip(cohort: Cohort, csv_paths: dict[str, Path]) -> None:
    long = load_symptoms(csv_paths["symptoms"])
    assert len(long) == int(cohort.symptoms[list(INSTRUMENTS)].notna().sum().sum())
    assert str(long["observed_at"].dt.tz) == "UTC"
    _assert_daily_round_trip(cohort.symptoms, symptoms_to_daily(long), INSTRUMENTS)


def test_biometrics_round_trip(cohort: Cohort, csv_paths: dict[str, Path]) -> None:
    long = load_biometrics(csv_paths["biometrics"])
    assert set(long["granularity"]) == {"day"}
    _assert_daily_round_trip(cohort.biometrics, biometrics_to_daily(long), METRICS)


def test_medications_round_trip(cohort: Cohort, csv_paths: dict[str, Path]) -> None:
    loaded = load_medications(csv_paths["medications"])
    local = loaded["occurred_at"].dt.tz_localize(None) + pd.to_timedelta(
        loaded["utc_offset_minutes"], unit="m"
    )
    loaded = loaded.assign(date=local.dt.floor("D"))
    keys = ["patient_id", "date", "medication", "event"]
    expected = cohort.medications.sort_values(keys).reset_index(drop=True)
    actual = loaded.sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(
        actual[[*keys, "daily_dose_mg"]], expected[[*keys, "daily_dose_mg"]], check_dtype=False
    )


def test_genotypes_round_trip(cohort: Cohort, csv_paths: dict[str, Path]) -> None:
    wide = genotypes_to_wide(load_genotypes(csv_paths["genotypes"]))
    expected = cohort.patients.sort_values("patient_id").reset_index(drop=True)
    assert wide["patient_id"].tolist() == expected["patient_id"].tolist()
    for column in ("cyp2d6", "cyp2c19", "cyp2c9", "cyp2b6", "hla_b_15_02", "hla_a_31_01"):
        assert wide[column].tolist() == expected[column].tolist(), column


def test_outcomes_round_trip(cohort: Cohort, csv_paths: dict[str, Path]) -> None:
    loaded = load_outcomes(csv_paths["outcomes"])
    keys = ["patient_id", "medication"]
    expected = cohort.outcomes.sort_values(keys).reset_index(drop=True)
    for column in (*keys, "responded", "side_effect"):
        assert loaded[column].tolist() == expected[column].tolist(), column


# --- daily aggregation --------------------------------------------------------------------


def test_biometrics_to_daily_sums_durations_and_averages_rates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        # 22:00 at -05:00 is 03:00 UTC the next day; it still belongs to the local 1 March.
        "MRN-1000001,2026-03-01T22:00:00-05:00,steps,1200,hour",
        "MRN-1000001,2026-03-01T08:00:00-05:00,steps,3000,hour",
        "MRN-1000001,2026-03-01T01:00:00-05:00,sleep_duration,1,hour",
        "MRN-1000001,2026-03-01T02:00:00-05:00,sleep_duration,0.75,hour",
        "MRN-1000001,2026-03-01T07:00:00-05:00,resting_heart_rate,60,hour",
        "MRN-1000001,2026-03-01T19:00:00-05:00,resting_heart_rate,70,hour",
        "MRN-1000001,2026-03-03T07:00:00-05:00,resting_heart_rate,58,hour",
    )
    daily = biometrics_to_daily(load_biometrics(path))
    assert daily["date"].tolist() == [
        pd.Timestamp("2026-03-01"),
        pd.Timestamp("2026-03-02"),
        pd.Timestamp("2026-03-03"),
    ]
    first = daily.iloc[0]
    assert first["steps"] == 4200
    assert first["sleep_duration"] == 1.75
    assert first["resting_heart_rate"] == 65
    assert np.isnan(first["hrv_rmssd"])
    assert daily.iloc[1][list(METRICS)].isna().all()  # the gap day is present, empty
    assert daily.iloc[2]["resting_heart_rate"] == 58


def test_heart_rate_and_sdnn_are_averaged_per_day_as_their_own_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        "MRN-1000001,2026-03-01T09:00:00+01:00,heart_rate,72,hour",
        "MRN-1000001,2026-03-01T15:00:00+01:00,heart_rate,90,hour",
        "MRN-1000001,2026-03-01T00:00:00+01:00,hrv_sdnn,48,day",
        "MRN-1000001,2026-03-01T00:00:00+01:00,resting_heart_rate,61,day",
    )
    (day,) = biometrics_to_daily(load_biometrics(path)).itertuples(index=False)
    assert (day.heart_rate, day.hrv_sdnn, day.resting_heart_rate) == (81.0, 48.0, 61.0)
    assert np.isnan(day.hrv_rmssd)  # SDNN is never taken for RMSSD


def test_symptoms_to_daily_averages_same_day_scores(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        "MRN-1000001,2026-03-01T08:00:00+01:00,mood,4",
        "MRN-1000001,2026-03-01T20:00:00+01:00,mood,7",
        # 23:30 UTC on 1 March is already 2 March at +05:30.
        "MRN-1000002,2026-03-01T23:30:00+05:30,phq9,9",
    )
    daily = symptoms_to_daily(load_symptoms(path))
    assert list(daily.columns) == ["patient_id", "date", *INSTRUMENTS]
    row = daily[daily["patient_id"] == "MRN-1000001"].iloc[0]
    assert row["mood"] == 5.5
    other = daily[daily["patient_id"] == "MRN-1000002"].iloc[0]
    assert other["date"] == pd.Timestamp("2026-03-01")
    assert other["phq9"] == 9


# --- hashing ------------------------------------------------------------------------------


def test_hash_is_stable_and_ignores_file_row_order(
    csv_paths: dict[str, Path], tmp_path: Path
) -> None:
    original = load_symptoms(csv_paths["symptoms"])
    lines = csv_paths["symptoms"].read_text().splitlines()
    shuffled_rows = [lines[i] for i in np.random.default_rng(0).permutation(range(1, len(lines)))]
    shuffled = write(tmp_path, "symptoms.csv", lines[0], *shuffled_rows)
    assert sha256_of_frames(original) == sha256_of_frames(load_symptoms(shuffled))
    assert len(sha256_of_frames(original)) == 64


def test_hash_changes_when_any_value_changes(csv_paths: dict[str, Path]) -> None:
    frame = load_symptoms(csv_paths["symptoms"])
    changed = frame.copy()
    changed.loc[len(changed) // 2, "score"] += 1
    assert sha256_of_frames(frame) != sha256_of_frames(changed)
    outcomes = load_outcomes(csv_paths["outcomes"])
    assert sha256_of_frames(frame, outcomes) != sha256_of_frames(outcomes, frame)


def test_hash_differs_between_cohorts() -> None:
    first = generate_cohort(CohortConfig(n_patients=5, n_days=20, seed=1))
    again = generate_cohort(CohortConfig(n_patients=5, n_days=20, seed=1))
    other = generate_cohort(CohortConfig(n_patients=5, n_days=20, seed=2))
    assert sha256_of_frames(first.symptoms) == sha256_of_frames(again.symptoms)
    assert sha256_of_frames(first.symptoms) != sha256_of_frames(other.symptoms)


# --- validation rules ---------------------------------------------------------------------

NEXT_MONTH = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%SZ")

# (id, loader, file name, header, rows, bad row, column, value that must not leak, rule fragment)
# (loader, file name, header, rows, bad row number, column, value that must not leak)
BAD_INPUTS: list[tuple[str, Loader, str, str, tuple[str, ...], int, str, str, str]] = [
    (
        "symptoms: required column missing",
        load_symptoms,
        "symptoms.csv",
        "patient_id,observed_at,instrument,MRN-999",
        ("MRN-1000001,2026-03-01T08:00:00Z,phq9,1",),
        1,
        "score",
        "MRN-999",
        "required column missing",
    ),
    (
        "symptoms: unknown instrument",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        (GOOD_SYMPTOM, "MRN-1000001,2026-03-02T08:00:00Z,John Smith,3"),
        3,
        "instrument",
        "John Smith",
        "must be one of",
    ),
    (
        "symptoms: score above the instrument's range",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        (
            GOOD_SYMPTOM,
            GOOD_SYMPTOM.replace("03-01", "03-02"),
            "MRN-1000001,2026-03-03T08:00:00Z,phq9,4711",
        ),
        4,
        "score",
        "4711",
        "0..27 for phq9",
    ),
    (
        "symptoms: negative mood",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        ("MRN-1000001,2026-03-03T08:00:00Z,mood,-3.25",),
        2,
        "score",
        "3.25",
        "0..10 for mood",
    ),
    (
        "symptoms: fractional PHQ-9",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        (GOOD_SYMPTOM, "MRN-1000001,2026-03-04T08:00:00Z,phq9,12.25"),
        3,
        "score",
        "12.25",
        "whole number",
    ),
    (
        "symptoms: NaN score",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        (GOOD_SYMPTOM, "MRN-1000001,2026-03-04T08:00:00Z,mood,NaN"),
        3,
        "score",
        "NaN",
        "finite decimal number",
    ),
    (
        "symptoms: infinite score",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        ("MRN-1000001,2026-03-04T08:00:00Z,mood,Infinity",),
        2,
        "score",
        "Infinity",
        "finite decimal number",
    ),
    (
        "symptoms: overflowing score",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        ("MRN-1000001,2026-03-04T08:00:00Z,mood,1e999",),
        2,
        "score",
        "1e999",
        "finite decimal number",
    ),
    (
        "symptoms: empty score",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        (GOOD_SYMPTOM, "MRN-999,2026-03-04T08:00:00Z,mood,"),
        3,
        "score",
        "MRN-999",
        "required value missing",
    ),
    (
        "symptoms: timestamp is not a timestamp",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        (GOOD_SYMPTOM, "MRN-1000001,MRN-999,phq9,3"),
        3,
        "observed_at",
        "MRN-999",
        "ISO 8601",
    ),
    (
        "symptoms: timestamp without offset",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        ("MRN-1000001,2026-03-05T08:17:00,phq9,3",),
        2,
        "observed_at",
        "08:17",
        "UTC offset",
    ),
    (
        "symptoms: impossible date",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        ("MRN-1000001,2026-02-30T08:17:00Z,phq9,3",),
        2,
        "observed_at",
        "02-30",
        "valid calendar date",
    ),
    (
        "symptoms: timestamp in the future",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        (GOOD_SYMPTOM, f"MRN-1000001,{NEXT_MONTH},phq9,3"),
        3,
        "observed_at",
        NEXT_MONTH[:10],
        "future",
    ),
    (
        "symptoms: timestamp beyond the representable range",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        (GOOD_SYMPTOM, "MRN-1000001,2999-01-01T00:00:00Z,phq9,3"),
        3,
        "observed_at",
        "2999",
        "future",
    ),
    (
        "symptoms: duplicate observation",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        (
            "MRN-999,2026-03-01T08:00:00+01:00,phq9,12",
            "MRN-999,2026-03-01T07:00:00Z,phq9,13",  # the same instant written in UTC
        ),
        3,
        "observed_at",
        "MRN-999",
        "duplicate",
    ),
    (
        "symptoms: control character in patient id",
        load_symptoms,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        (GOOD_SYMPTOM, "John\x07Smith,2026-03-02T08:00:00Z,phq9,3"),
        3,
        "patient_id",
        "Smith",
        "control characters",
    ),
    (
        "biometrics: unknown metric",
        load_biometrics,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        (GOOD_BIOMETRIC, "MRN-1000001,2026-03-02T00:00:00Z,John Smith,5,day"),
        3,
        "metric",
        "John Smith",
        "must be one of",
    ),
    (
        "biometrics: heart rate out of physiologic range",
        load_biometrics,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        (GOOD_BIOMETRIC, "MRN-1000001,2026-03-02T00:00:00Z,resting_heart_rate,312.5,day"),
        3,
        "value",
        "312.5",
        "25..250",
    ),
    (
        "biometrics: HRV below range",
        load_biometrics,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        ("MRN-1000001,2026-03-02T00:00:00Z,hrv_rmssd,0.25,day",),
        2,
        "value",
        "0.25",
        "1..500",
    ),
    (
        "biometrics: heart rate (any time of day) above range",
        load_biometrics,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        (GOOD_BIOMETRIC, "MRN-1000001,2026-03-02T00:00:00Z,heart_rate,262,day"),
        3,
        "value",
        "262",
        "heart_rate must be within 25..250",
    ),
    (
        "biometrics: SDNN given in seconds",
        load_biometrics,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        ("MRN-1000001,2026-03-02T00:00:00Z,hrv_sdnn,0.052,day",),
        2,
        "value",
        "0.052",
        "hrv_sdnn must be within 1..500",
    ),
    (
        "biometrics: efficiency above 1",
        load_biometrics,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        ("MRN-1000001,2026-03-02T00:00:00Z,sleep_efficiency,1.75,day",),
        2,
        "value",
        "1.75",
        "0..1",
    ),
    (
        "biometrics: daily sleep above 24 h",
        load_biometrics,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        (
            "MRN-1000001,2026-03-02T00:00:00Z,sleep_duration,20.25,day",
            "MRN-1000001,2026-03-02T12:00:00Z,sleep_duration,10.5,day",
        ),
        3,
        "value",
        "10.5",
        "daily total of sleep_duration",
    ),
    (
        "biometrics: an hour holds more than an hour of sleep",
        load_biometrics,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        ("MRN-1000001,2026-03-02T03:00:00Z,sleep_duration,1.5,hour",),
        2,
        "value",
        "1.5",
        "span of its granularity",
    ),
    (
        "biometrics: daily steps above 100,000",
        load_biometrics,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        (
            "MRN-1000001,2026-03-02T09:00:00Z,steps,40001,hour",
            "MRN-1000001,2026-03-02T10:00:00Z,steps,40001,hour",
            "MRN-1000001,2026-03-02T11:00:00Z,steps,40001,hour",
        ),
        4,
        "value",
        "40001",
        "daily total of steps",
    ),
    (
        "biometrics: active minutes above a day",
        load_biometrics,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        ("MRN-1000001,2026-03-02T00:00:00Z,active_minutes,1517,day",),
        2,
        "value",
        "1517",
        "minutes in its granularity",
    ),
    (
        "biometrics: negative steps",
        load_biometrics,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        ("MRN-1000001,2026-03-02T00:00:00Z,steps,-4321,day",),
        2,
        "value",
        "4321",
        "negative",
    ),
    (
        "biometrics: unknown granularity",
        load_biometrics,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        ("MRN-1000001,2026-03-02T00:00:00Z,steps,4321,fortnightly",),
        2,
        "granularity",
        "fortnightly",
        "must be one of",
    ),
    (
        "biometrics: two granularities for one metric and day",
        load_biometrics,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        (
            "MRN-1000001,2026-03-02T00:00:00Z,steps,4321,day",
            "MRN-1000001,2026-03-02T10:00:00Z,steps,500,hour",
        ),
        3,
        "granularity",
        "MRN-1000001",
        "one granularity",
    ),
    (
        "biometrics: duplicate reading",
        load_biometrics,
        "biometrics.csv",
        BIOMETRICS_HEADER,
        (
            "MRN-999,2026-03-02T00:00:00Z,steps,4321,day",
            "MRN-999,2026-03-02T00:00:00Z,steps,4322,day",
        ),
        3,
        "measured_at",
        "MRN-999",
        "duplicate",
    ),
    (
        "medications: unknown event",
        load_medications,
        "medications.csv",
        MEDICATIONS_HEADER,
        (GOOD_MEDICATION, "MRN-1000001,2026-03-09T09:00:00Z,sertraline,John Smith,50"),
        3,
        "event",
        "John Smith",
        "must be one of",
    ),
    (
        "medications: start without dose",
        load_medications,
        "medications.csv",
        MEDICATIONS_HEADER,
        ("MRN-999,2026-03-09T09:00:00Z,sertraline,start,",),
        2,
        "daily_dose_mg",
        "MRN-999",
        "required for start",
    ),
    (
        "medications: negative dose",
        load_medications,
        "medications.csv",
        MEDICATIONS_HEADER,
        ("MRN-1000001,2026-03-09T09:00:00Z,sertraline,dose_change,-75.5",),
        2,
        "daily_dose_mg",
        "75.5",
        "greater than 0",
    ),
    (
        "medications: a name is not a drug name",
        load_medications,
        "medications.csv",
        MEDICATIONS_HEADER,
        ('MRN-1000001,2026-03-09T09:00:00Z,"Smith, John",start,50',),
        2,
        "medication",
        "Smith",
        "generic drug name",
    ),
    (
        "genotypes: unknown gene",
        load_genotypes,
        "genotypes.csv",
        GENOTYPES_HEADER,
        (GOOD_GENOTYPE, "MRN-1000001,John Smith,*1/*1"),
        3,
        "gene",
        "John Smith",
        "must be one of",
    ),
    (
        "genotypes: malformed diplotype",
        load_genotypes,
        "genotypes.csv",
        GENOTYPES_HEADER,
        ("MRN-1000001,CYP2D6,MRN-999",),
        2,
        "diplotype",
        "MRN-999",
        "star-allele diplotype",
    ),
    (
        "genotypes: HLA result that is neither positive nor negative",
        load_genotypes,
        "genotypes.csv",
        GENOTYPES_HEADER,
        ("MRN-1000001,HLA-B*15:02,inconclusive",),
        2,
        "diplotype",
        "inconclusive",
        "positive or negative",
    ),
    (
        "genotypes: gene reported twice",
        load_genotypes,
        "genotypes.csv",
        GENOTYPES_HEADER,
        ("MRN-999,CYP2C19,*1/*2", "MRN-999,cyp2c19,*2/*2"),
        3,
        "gene",
        "MRN-999",
        "duplicate",
    ),
    (
        "outcomes: flag that is not 0/1",
        load_outcomes,
        "outcomes.csv",
        OUTCOMES_HEADER,
        (GOOD_OUTCOME, "MRN-1000001,citalopram,maybe,0"),
        3,
        "responded",
        "maybe",
        "0 or 1",
    ),
    (
        "outcomes: medication twice",
        load_outcomes,
        "outcomes.csv",
        OUTCOMES_HEADER,
        ("MRN-999,sertraline,1,0", "MRN-999,sertraline,0,1"),
        3,
        "medication",
        "MRN-999",
        "duplicate",
    ),
]


@pytest.mark.parametrize(
    ("loader", "file_name", "header", "rows", "row", "column", "secret", "rule"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUTS],
)
def test_bad_input_names_file_row_and_column_but_not_the_value(
    tmp_path: Path,
    loader: Loader,
    file_name: str,
    header: str,
    rows: tuple[str, ...],
    row: int,
    column: str,
    secret: str,
    rule: str,
) -> None:
    path = write(tmp_path, file_name, header, *rows)
    with pytest.raises(DatasetError) as caught:
        loader(path)
    error = caught.value
    message = str(error)
    assert error.row == row and error.column == column
    assert message.startswith(f"{file_name}, row {row}, column '{column}': ")
    assert rule in error.rule
    assert secret not in message
    assert isinstance(error, ValueError)
    assert error.__cause__ is None


def test_valid_rows_of_every_format_load(tmp_path: Path) -> None:
    assert len(load_symptoms(write(tmp_path, "s.csv", SYMPTOMS_HEADER, GOOD_SYMPTOM))) == 1
    assert len(load_biometrics(write(tmp_path, "b.csv", BIOMETRICS_HEADER, GOOD_BIOMETRIC))) == 1
    medications = load_medications(
        write(
            tmp_path,
            "m.csv",
            MEDICATIONS_HEADER,
            GOOD_MEDICATION,
            "MRN-1000001,2026-04-01T09:00:00-05:00,Sertraline,stop,",
        )
    )
    assert medications["daily_dose_mg"].tolist() == [50.0, 0.0]
    assert medications["medication"].tolist() == ["sertraline", "sertraline"]
    assert medications["occurred_at"].iloc[0] == pd.Timestamp("2026-03-01T14:00:00Z")
    genotypes = load_genotypes(
        write(
            tmp_path, "g.csv", GENOTYPES_HEADER, GOOD_GENOTYPE, "MRN-1000001,hla-a*31:01,Positive"
        )
    )
    assert genotypes["diplotype"].tolist() == ["*1/*17", "positive"]
    assert len(load_outcomes(write(tmp_path, "o.csv", OUTCOMES_HEADER, GOOD_OUTCOME))) == 1


def test_granularity_column_is_optional(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "biometrics.csv",
        "patient_id,measured_at,metric,value",
        "MRN-1000001,2026-03-02T00:00:00Z,steps,4321",
    )
    assert load_biometrics(path)["granularity"].tolist() == ["day"]


def test_malformed_and_missing_files_are_dataset_errors(tmp_path: Path) -> None:
    ragged = write(
        tmp_path, "symptoms.csv", SYMPTOMS_HEADER, "MRN-999,2026-03-01T08:00:00Z,phq9,3,John Smith"
    )
    with pytest.raises(DatasetError) as caught:
        load_symptoms(ragged)
    assert "John Smith" not in str(caught.value) and "MRN-999" not in str(caught.value)

    binary = tmp_path / "outcomes.csv"
    binary.write_bytes(OUTCOMES_HEADER.encode() + b"\nMRN-999,\xff\xfe,1,0\n")
    with pytest.raises(DatasetError, match="UTF-8"):
        load_outcomes(binary)

    with pytest.raises(DatasetError, match="not found"):
        load_genotypes(tmp_path / "absent.csv")


def test_parquet_is_read_only_with_a_parquet_engine(tmp_path: Path) -> None:
    path = tmp_path / "symptoms.parquet"
    has_engine = importlib.util.find_spec("pyarrow") is not None
    if not has_engine:
        path.write_bytes(b"PAR1")
        with pytest.raises(DatasetError, match="CSV"):
            load_symptoms(path)
        return
    frame = pd.DataFrame(
        {
            "patient_id": ["MRN-1000001", "MRN-1000001"],
            "observed_at": pd.to_datetime(["2026-03-01T07:00:00Z", "2026-03-02T07:00:00Z"]),
            "instrument": ["phq9", "mood"],
            "score": [12.0, 6.5],
        }
    )
    frame.to_parquet(path)
    loaded = load_symptoms(path)
    assert loaded["score"].tolist() == [12.0, 6.5]
    assert loaded["observed_at"].tolist() == frame["observed_at"].tolist()

    naive = frame.assign(observed_at=frame["observed_at"].dt.tz_localize(None))
    naive.to_parquet(path)
    with pytest.raises(DatasetError, match="UTC offset"):
        load_symptoms(path)


def test_blank_lines_are_skipped_but_still_counted_as_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "symptoms.csv",
        SYMPTOMS_HEADER,
        GOOD_SYMPTOM,
        "",
        " , , , ",
        "MRN-1000001,2026-03-05T08:00:00Z,phq9,4711",
        "",
    )
    with pytest.raises(DatasetError) as caught:
        load_symptoms(path)
    assert caught.value.row == 5
    trailing = write(tmp_path, "ok.csv", SYMPTOMS_HEADER, GOOD_SYMPTOM, "", "")
    assert len(load_symptoms(trailing)) == 1
