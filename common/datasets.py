"""Validating loaders for the files real patient data arrives in.

The formats are specified in docs/data-formats.md: long form, one observation
per row, ISO 8601 timestamps with an explicit UTC offset. Every loader checks
the file completely before returning anything and raises ``DatasetError`` on
the first broken rule. The error names the file, the 1-based row (the header
is row 1), the column and the rule; it never contains a cell value, because a
cell may hold patient data.

Parquet files (``*.parquet``) are read when pandas has a Parquet engine
(pyarrow) installed; pyarrow is not a runtime dependency of the mesh, so
without it a ``.parquet`` path raises ``DatasetError`` asking for CSV.
Parquet cells are converted to text and go through the same checks as CSV.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from common.biometric_metrics import METRICS
from common.synthetic import INSTRUMENT_RANGES, INSTRUMENTS, Cohort

_LOGGER = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]
PathLike = str | Path

GRANULARITIES: Final = ("minute", "hour", "day")
MEDICATION_EVENTS: Final = ("start", "stop", "dose_change")
#: Genes a genotypes file may contain; HLA rows carry a carrier result, not a diplotype.
CYP_GENES: Final = ("CYP2D6", "CYP2C19", "CYP2C9", "CYP2B6")
HLA_ALLELES: Final = ("HLA-B*15:02", "HLA-A*31:01")
GENES: Final = CYP_GENES + HLA_ALLELES
#: Column of ``Cohort.patients`` holding each HLA allele's carrier status.
HLA_COLUMNS: Final[Mapping[str, str]] = {"HLA-B*15:02": "hla_b_15_02", "HLA-A*31:01": "hla_a_31_01"}
#: Metrics summed over a day (durations and counts); the others are averaged.
ADDITIVE_METRICS: Final = ("sleep_duration", "steps", "active_minutes")
#: Largest plausible daily total of each additive metric.
DAILY_LIMITS: Final[Mapping[str, float]] = {
    "sleep_duration": 24.0,
    "steps": 100_000.0,
    "active_minutes": 1_440.0,
}
#: Inclusive physiologic range of a single reading of the averaged metrics.
READING_RANGES: Final[Mapping[str, tuple[float, float]]] = {
    "resting_heart_rate": (25.0, 250.0),
    "hrv_rmssd": (1.0, 500.0),
    "sleep_efficiency": (0.0, 1.0),
    "heart_rate": (25.0, 250.0),
    # SDNN norms: 32-93 ms over 5-min recordings (Nunan et al., Pacing Clin Electrophysiol
    # 2010;33:1407), 141 +/- 39 ms over 24 h (Task Force of the ESC and NASPE, Circulation
    # 1996;93:1043); 1..500 keeps every real recording length and rejects unit slips (s, us).
    "hrv_sdnn": (1.0, 500.0),
}
_GRANULARITY_HOURS: Final[Mapping[str, float]] = {"minute": 1.0 / 60.0, "hour": 1.0, "day": 24.0}
_MAX_DOSE_MG: Final = 10_000.0
_MAX_ID_LENGTH: Final = 128
_MAX_OFFSET_MINUTES: Final = 18 * 60
# Device clocks drift; a reading a few minutes "ahead" is not a future observation.
_FUTURE_TOLERANCE: Final = pd.Timedelta(minutes=5)
# Sub-minute sleep durations written with few decimals (0.0167 h) must still fit a minute.
_CAPACITY_TOLERANCE: Final = 1.01

_TIMESTAMP = re.compile(
    r"^(?P<local>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)"
    r"(?P<offset>[Zz]|[+-]\d{2}(?::?\d{2})?)$"
)
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_MEDICATION_NAME = re.compile(r"^[a-z][a-z0-9 ()/+.-]{0,63}$")
_STAR_ALLELE = r"\*\d+[A-Z]?(?:x(?:\d+|N))?"
_DIPLOTYPE = re.compile(rf"^{_STAR_ALLELE}/{_STAR_ALLELE}$")
_HLA_RESULTS: Final = ("positive", "negative")
_TIMESTAMP_RULE: Final = (
    "must be an ISO 8601 date-time with a UTC offset "
    "(e.g. 2026-03-01T08:00:00+01:00 or 2026-03-01T07:00:00Z)"
)


class DatasetError(ValueError):
    """A data file breaks a documented rule.

    The message names the file, the 1-based row (header = row 1), the column
    and the rule, and never a cell value: cells may contain patient data.
    """

    def __init__(
        self, file: str, rule: str, *, row: int | None = None, column: str | None = None
    ) -> None:
        self.file = file
        self.row = row
        self.column = column
        self.rule = rule
        where = [file]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where)}: {rule}")


@dataclass(frozen=True)
class _Table:
    """A file's cells as stripped text, in file order, with the rule-checking helpers."""

    file: str
    cells: pd.DataFrame

    def fail_first(self, bad: object, column: str, rule: str) -> None:
        mask = np.asarray(bad, dtype=np.bool_)
        if mask.any():
            # The index holds each row's position in the file (blank rows are skipped);
            # +2 because rows are 1-based and the header is row 1.
            row = int(self.cells.index[int(np.argmax(mask))]) + 2
            raise DatasetError(self.file, rule, row=row, column=column)

    def text(self, column: str) -> pd.Series:
        return self.cells[column]

    def required(self, column: str) -> pd.Series:
        values = self.text(column)
        self.fail_first(values == "", column, "required value missing")
        return values

    def patient_ids(self) -> pd.Series:
        values = self.required("patient_id")
        codes, distinct = _distinct(values)
        too_long = (distinct.str.len() > _MAX_ID_LENGTH).to_numpy()
        self.fail_first(
            too_long[codes], "patient_id", f"must be at most {_MAX_ID_LENGTH} characters"
        )
        control = distinct.str.contains(_CONTROL_CHARACTERS).to_numpy(dtype=np.bool_)
        self.fail_first(control[codes], "patient_id", "must not contain control characters")
        return values

    def choice(self, column: str, allowed: Sequence[str]) -> pd.Series:
        values = self.required(column).str.lower()
        self.fail_first(~values.isin(list(allowed)), column, f"must be one of {', '.join(allowed)}")
        return values

    def numbers(self, column: str, *, optional: bool = False) -> pd.Series:
        """Parse decimal numbers (empty cells become NaN when ``optional``)."""
        values = self.text(column) if optional else self.required(column)
        codes, distinct = _distinct(values)
        present = (distinct != "").to_numpy()
        well_formed = distinct.str.fullmatch(_NUMBER).to_numpy(dtype=np.bool_)
        parsed = pd.to_numeric(distinct.where(present, "nan"), errors="coerce").to_numpy(
            dtype=np.float64
        )
        # Overflowing literals such as 1e999 parse to inf and are as unusable as "nan".
        bad = present & ~(well_formed & np.isfinite(parsed))
        self.fail_first(bad[codes], column, "must be a finite decimal number")
        return pd.Series(parsed[codes], index=values.index, dtype=np.float64)

    def timestamps(self, column: str) -> tuple[pd.Series, pd.Series]:
        """Parse to UTC; also return each timestamp's own UTC offset in minutes."""
        values = self.required(column)
        codes, distinct = _distinct(values)
        parts = distinct.str.extract(_TIMESTAMP)
        self.fail_first(parts["local"].isna().to_numpy()[codes], column, _TIMESTAMP_RULE)
        now = pd.Timestamp.now(tz="UTC")
        # Years past pandas' range (2262) would otherwise read as "not a valid date".
        years = parts["local"].str[:4].astype(np.int64).to_numpy()
        self.fail_first((years > now.year + 1)[codes], column, "must not be in the future")
        local = pd.to_datetime(
            parts["local"].str.replace(" ", "T", regex=False), format="ISO8601", errors="coerce"
        )
        self.fail_first(
            local.isna().to_numpy()[codes], column, "is not a valid calendar date and time"
        )
        offsets = parts["offset"].map(_offset_minutes).to_numpy(dtype=np.int64)
        self.fail_first(
            (np.abs(offsets) > _MAX_OFFSET_MINUTES)[codes],
            column,
            "UTC offset must be within ±18:00",
        )
        utc_distinct = (local - pd.to_timedelta(offsets, unit="m")).to_numpy(dtype="datetime64[ns]")
        utc = pd.Series(utc_distinct[codes], index=values.index).dt.tz_localize("UTC")
        self.fail_first(utc > now + _FUTURE_TOLERANCE, column, "must not be in the future")
        return utc, pd.Series(offsets[codes], index=values.index, dtype=np.int64)

    def no_duplicates(self, keys: pd.DataFrame, column: str, description: str) -> None:
        self.fail_first(
            keys.duplicated(keep="first").to_numpy(),
            column,
            f"duplicate {description}: the same observation appears more than once",
        )


def _distinct(values: pd.Series) -> tuple[npt.NDArray[np.intp], pd.Series]:
    """Row codes and distinct values: text rules run once per distinct value, not per row."""
    codes, distinct = pd.factorize(values.to_numpy(dtype=object))
    return codes, pd.Series(distinct, dtype=object)


def _offset_minutes(offset: str) -> int:
    if offset in ("Z", "z"):
        return 0
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or "0")
    return sign * (hours * 60 + minutes)


# --- reading ----------------------------------------------------------------------------


def _read_table(path: PathLike, required: Sequence[str], optional: Sequence[str] = ()) -> _Table:
    source = Path(path)
    name = source.name
    is_parquet = source.suffix.lower() == ".parquet"
    raw = _read_parquet(source) if is_parquet else _read_csv(source)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    seen: set[str] = set()
    for column in raw.columns:
        if column in seen:
            raise DatasetError(
                name, "column appears more than once in the header", row=1, column=column
            )
        seen.add(column)
    for column in required:
        if column not in seen:
            raise DatasetError(name, "required column missing", row=1, column=column)
    kept = [c for c in (*required, *optional) if c in seen]
    raw = raw.reset_index(drop=True)
    cells = pd.DataFrame(index=raw.index)
    for column in kept:
        codes, distinct = _distinct(raw[column].astype(str))
        stripped = np.array([text.strip() for text in distinct.tolist()], dtype=object)
        cells[column] = pd.Series(stripped[codes], index=raw.index, dtype=object)
    # Blank lines (e.g. a trailing empty line) are skipped but keep their row numbers.
    blank = (cells == "").all(axis=1)
    others = [c for c in raw.columns if c not in kept]
    if others:
        blank &= (raw[others].astype(str) == "").all(axis=1)
    cells = cells.loc[~blank]
    for column in optional:
        if column not in seen:
            cells[column] = ""
    return _Table(file=name, cells=cells)


def _read_csv(source: Path) -> pd.DataFrame:
    name = source.name
    try:
        return pd.read_csv(
            source,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8",
        )
    except FileNotFoundError:
        raise DatasetError(name, "file not found") from None
    except pd.errors.EmptyDataError:
        raise DatasetError(name, "file is empty; a header row is required") from None
    except pd.errors.ParserError:
        # pandas' own message may quote file content; only the rule is reported.
        raise DatasetError(name, "malformed CSV: a row has more fields than the header") from None
    except UnicodeDecodeError:
        raise DatasetError(name, "file is not UTF-8 text") from None


def _read_parquet(source: Path) -> pd.DataFrame:
    name = source.name
    if not source.exists():
        raise DatasetError(name, "file not found")
    try:
        frame = pd.read_parquet(source)
    except ImportError:
        raise DatasetError(
            name, "reading Parquet needs pyarrow, which is not installed; provide CSV"
        ) from None
    except Exception:  # the engine's errors vary and may quote content
        raise DatasetError(name, "not a readable Parquet file") from None
    return pd.DataFrame({str(c): _parquet_column_as_text(frame[c]) for c in frame.columns})


def _parquet_column_as_text(column: pd.Series) -> pd.Series:
    missing = column.isna().to_numpy()
    if pd.api.types.is_bool_dtype(column):
        text = column.map(lambda v: "1" if v else "0")
    elif isinstance(column.dtype, pd.DatetimeTZDtype):
        text = column.map(lambda v: v.isoformat())
    elif pd.api.types.is_datetime64_dtype(column):
        # A naive timestamp has no offset and fails the timestamp rule, as in CSV.
        text = column.map(lambda v: v.isoformat())
    else:
        text = column.map(str)
    return text.where(~missing, "").astype(str)


# --- loaders ----------------------------------------------------------------------------


def load_symptoms(path: PathLike) -> pd.DataFrame:
    """Load symptoms.csv: patient_id, observed_at, instrument, score.

    Returns columns patient_id, observed_at (UTC), instrument, score (float),
    utc_offset_minutes (the offset written in the file, used for local days).
    """
    table = _read_table(path, ("patient_id", "observed_at", "instrument", "score"))
    patient_id = table.patient_ids()
    observed_at, offset = table.timestamps("observed_at")
    instrument = table.choice("instrument", INSTRUMENTS)
    score = table.numbers("score")
    for name in INSTRUMENTS:
        low, high = INSTRUMENT_RANGES[name]
        table.fail_first(
            (instrument == name) & ((score < low) | (score > high)),
            "score",
            f"must be within {low:g}..{high:g} for {name}",
        )
    whole_only = instrument.isin(["phq9", "gad7"])
    table.fail_first(
        whole_only & (score != np.round(score)), "score", "must be a whole number for phq9 and gad7"
    )
    frame = pd.DataFrame(
        {
            "patient_id": patient_id,
            "observed_at": observed_at,
            "instrument": instrument,
            "score": score,
            "utc_offset_minutes": offset,
        }
    )
    table.no_duplicates(
        frame[["patient_id", "observed_at", "instrument"]],
        "observed_at",
        "(patient_id, observed_at, instrument)",
    )
    return _sorted(frame, ["patient_id", "observed_at", "instrument"], table.file)


def load_biometrics(path: PathLike) -> pd.DataFrame:
    """Load biometrics.csv: patient_id, measured_at, metric, value[, granularity].

    Returns columns patient_id, measured_at (UTC), metric, value, granularity,
    utc_offset_minutes. Single readings and daily totals are range-checked.
    """
    table = _read_table(
        path, ("patient_id", "measured_at", "metric", "value"), optional=("granularity",)
    )
    patient_id = table.patient_ids()
    measured_at, offset = table.timestamps("measured_at")
    metric = table.choice("metric", METRICS)
    value = table.numbers("value")
    granularity_text = table.text("granularity").str.lower()
    granularity = granularity_text.where(granularity_text != "", "day")
    table.fail_first(
        ~granularity.isin(list(GRANULARITIES)),
        "granularity",
        f"must be one of {', '.join(GRANULARITIES)} (empty means day)",
    )

    for name, (low, high) in READING_RANGES.items():
        table.fail_first(
            (metric == name) & ((value < low) | (value > high)),
            "value",
            f"{name} must be within {low:g}..{high:g}",
        )
    table.fail_first(
        metric.isin(list(ADDITIVE_METRICS)) & (value < 0), "value", "must not be negative"
    )
    span_hours = granularity.map(_GRANULARITY_HOURS).astype(np.float64)
    table.fail_first(
        (metric == "sleep_duration") & (value > span_hours * _CAPACITY_TOLERANCE),
        "value",
        "sleep_duration (hours) must not exceed the span of its granularity",
    )
    table.fail_first(
        (metric == "active_minutes") & (value > span_hours * 60.0 * _CAPACITY_TOLERANCE),
        "value",
        "active_minutes must not exceed the minutes in its granularity",
    )
    table.fail_first(
        (metric == "steps") & (value > DAILY_LIMITS["steps"]),
        "value",
        f"steps must be at most {DAILY_LIMITS['steps']:,.0f} per reading",
    )

    frame = pd.DataFrame(
        {
            "patient_id": patient_id,
            "measured_at": measured_at,
            "metric": metric,
            "value": value,
            "granularity": granularity,
            "utc_offset_minutes": offset,
        }
    )
    table.no_duplicates(
        frame[["patient_id", "measured_at", "metric"]],
        "measured_at",
        "(patient_id, measured_at, metric)",
    )
    day_keys = [frame["patient_id"], _local_days(frame, "measured_at"), frame["metric"]]
    first_granularity = frame.groupby(day_keys, sort=False)["granularity"].transform("first")
    table.fail_first(
        frame["granularity"] != first_granularity,
        "granularity",
        "one metric must use one granularity per patient and day",
    )
    running_total = frame.groupby(day_keys, sort=False)["value"].cumsum()
    for name, limit in DAILY_LIMITS.items():
        table.fail_first(
            (frame["metric"] == name) & (running_total > limit * _CAPACITY_TOLERANCE),
            "value",
            f"daily total of {name} must be at most {limit:,.0f}",
        )
    return _sorted(frame, ["patient_id", "measured_at", "metric"], table.file)


def load_medications(path: PathLike) -> pd.DataFrame:
    """Load medications.csv: patient_id, occurred_at, medication, event, daily_dose_mg.

    Returns those columns (occurred_at in UTC, a stop without a dose as 0 mg)
    plus utc_offset_minutes.
    """
    table = _read_table(path, ("patient_id", "occurred_at", "medication", "event", "daily_dose_mg"))
    patient_id = table.patient_ids()
    occurred_at, offset = table.timestamps("occurred_at")
    medication = _medication_names(table)
    event = table.choice("event", MEDICATION_EVENTS)
    dose_text = table.text("daily_dose_mg")
    table.fail_first(
        (event != "stop") & (dose_text == ""),
        "daily_dose_mg",
        "required for start and dose_change events",
    )
    dose = table.numbers("daily_dose_mg", optional=True)
    table.fail_first((event != "stop") & (dose <= 0.0), "daily_dose_mg", "must be greater than 0")
    table.fail_first(
        (dose < 0.0) | (dose > _MAX_DOSE_MG),
        "daily_dose_mg",
        f"must be within 0..{_MAX_DOSE_MG:,.0f} mg",
    )
    frame = pd.DataFrame(
        {
            "patient_id": patient_id,
            "occurred_at": occurred_at,
            "medication": medication,
            "event": event,
            "daily_dose_mg": dose.fillna(0.0),
            "utc_offset_minutes": offset,
        }
    )
    table.no_duplicates(
        frame[["patient_id", "occurred_at", "medication"]],
        "occurred_at",
        "(patient_id, occurred_at, medication)",
    )
    return _sorted(frame, ["patient_id", "occurred_at", "medication"], table.file)


def load_genotypes(path: PathLike) -> pd.DataFrame:
    """Load genotypes.csv: patient_id, gene, diplotype (HLA rows: positive/negative)."""
    table = _read_table(path, ("patient_id", "gene", "diplotype"))
    patient_id = table.patient_ids()
    gene_text = table.required("gene").str.upper()
    table.fail_first(~gene_text.isin(list(GENES)), "gene", f"must be one of {', '.join(GENES)}")
    diplotype = table.required("diplotype")
    is_hla = gene_text.isin(list(HLA_ALLELES))
    hla_result = diplotype.str.lower()
    table.fail_first(
        is_hla & ~hla_result.isin(list(_HLA_RESULTS)),
        "diplotype",
        "must be positive or negative for an HLA allele",
    )
    table.fail_first(
        ~is_hla & ~diplotype.str.fullmatch(_DIPLOTYPE),
        "diplotype",
        "must be a star-allele diplotype such as *1/*4 or *1x2/*2",
    )
    frame = pd.DataFrame(
        {
            "patient_id": patient_id,
            "gene": gene_text,
            "diplotype": diplotype.where(~is_hla, hla_result),
        }
    )
    table.no_duplicates(frame[["patient_id", "gene"]], "gene", "(patient_id, gene)")
    return _sorted(frame, ["patient_id", "gene"], table.file)


def load_outcomes(path: PathLike) -> pd.DataFrame:
    """Load outcomes.csv: patient_id, medication, responded (0/1), side_effect (0/1)."""
    table = _read_table(path, ("patient_id", "medication", "responded", "side_effect"))
    patient_id = table.patient_ids()
    medication = _medication_names(table)
    flags = {}
    for column in ("responded", "side_effect"):
        values = table.required(column)
        table.fail_first(~values.isin(["0", "1"]), column, "must be 0 or 1")
        flags[column] = values == "1"
    frame = pd.DataFrame(
        {
            "patient_id": patient_id,
            "medication": medication,
            "responded": flags["responded"].astype(np.bool_),
            "side_effect": flags["side_effect"].astype(np.bool_),
        }
    )
    table.no_duplicates(
        frame[["patient_id", "medication"]], "medication", "(patient_id, medication)"
    )
    return _sorted(frame, ["patient_id", "medication"], table.file)


def _medication_names(table: _Table) -> pd.Series:
    names = table.required("medication").str.lower()
    table.fail_first(
        ~names.str.fullmatch(_MEDICATION_NAME),
        "medication",
        "must be a generic drug name (letters, digits, spaces, ()/+.-; at most 64 characters)",
    )
    return names


def _sorted(frame: pd.DataFrame, keys: list[str], file: str) -> pd.DataFrame:
    # A fixed row order makes the training-data hash independent of the file's row order.
    result = frame.sort_values(keys, kind="stable").reset_index(drop=True)
    _LOGGER.debug("dataset loaded", extra={"file": file, "rows": len(result)})
    return result


# --- daily aggregation ------------------------------------------------------------------


def _local_days(frame: pd.DataFrame, column: str) -> pd.Series:
    """Each row's calendar day on the patient's own clock (the offset written in the file)."""
    instants = pd.to_datetime(frame[column], utc=True).dt.tz_localize(None)
    if "utc_offset_minutes" in frame.columns:
        instants = instants + pd.to_timedelta(frame["utc_offset_minutes"], unit="m")
    return instants.dt.floor("D").astype("datetime64[ns]")


def _daily_grid(wide: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Reindex to every day from each patient's first to last day (NaN where nothing was seen)."""
    if wide.empty:
        empty = pd.DataFrame(
            {
                "patient_id": pd.Series([], dtype=object),
                "date": pd.Series([], dtype="datetime64[ns]"),
            }
        )
        for column in columns:
            empty[column] = pd.Series([], dtype=np.float64)
        return empty
    bounds = wide.reset_index().groupby("patient_id")["date"].agg(["min", "max"])
    lengths = ((bounds["max"] - bounds["min"]).dt.days + 1).to_numpy(np.int64)
    patients = np.repeat(bounds.index.to_numpy(), lengths)
    starts = np.repeat(bounds["min"].to_numpy(), lengths)
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    dates = starts + within.astype("timedelta64[D]")
    index = pd.MultiIndex.from_arrays([patients, dates], names=["patient_id", "date"])
    grid = wide.reindex(index).reset_index()
    grid["date"] = grid["date"].astype("datetime64[ns]")
    result = grid[["patient_id", "date", *columns]].astype({c: np.float64 for c in columns})
    result.columns.name = None
    return result.reset_index(drop=True)


def symptoms_to_daily(long_df: pd.DataFrame) -> pd.DataFrame:
    """Daily wide frame shaped like ``Cohort.symptoms``: the mean score per local day."""
    days = _local_days(long_df, "observed_at")
    wide = (
        pd.DataFrame(
            {
                "patient_id": long_df["patient_id"],
                "date": days,
                "instrument": long_df["instrument"],
                "score": long_df["score"].astype(np.float64),
            }
        )
        .groupby(["patient_id", "date", "instrument"])["score"]
        .mean()
        .unstack("instrument")
        .reindex(columns=list(INSTRUMENTS))
    )
    return _daily_grid(wide, INSTRUMENTS)


def biometrics_to_daily(long_df: pd.DataFrame) -> pd.DataFrame:
    """Daily wide frame shaped like ``Cohort.biometrics``.

    sleep_duration, steps and active_minutes are summed over the local day,
    the other metrics averaged.
    """
    days = _local_days(long_df, "measured_at")
    grouped = pd.DataFrame(
        {
            "patient_id": long_df["patient_id"],
            "date": days,
            "metric": long_df["metric"],
            "value": long_df["value"].astype(np.float64),
        }
    ).groupby(["patient_id", "date", "metric"])["value"]
    totals, means = grouped.sum(), grouped.mean()
    additive = totals.index.get_level_values("metric").isin(list(ADDITIVE_METRICS))
    daily = means.where(~additive, totals)
    wide = daily.unstack("metric").reindex(columns=list(METRICS))
    return _daily_grid(wide, METRICS)


def genotypes_to_wide(long_df: pd.DataFrame) -> pd.DataFrame:
    """One row per patient with the genotype columns of ``Cohort.patients``.

    CYP genes become lowercase columns of diplotype strings, HLA alleles the
    booleans hla_b_15_02 / hla_a_31_01; a gene that was not tested is None.
    """
    calls: dict[str, dict[str, str]] = {}
    for patient_id, gene, diplotype in zip(
        long_df["patient_id"], long_df["gene"], long_df["diplotype"], strict=True
    ):
        calls.setdefault(str(patient_id), {})[str(gene)] = str(diplotype)
    rows: list[dict[str, object]] = []
    for patient_id in sorted(calls):
        patient_calls = calls[patient_id]
        row: dict[str, object] = {"patient_id": patient_id}
        for gene in CYP_GENES:
            row[gene.lower()] = patient_calls.get(gene)
        for allele, column in HLA_COLUMNS.items():
            result = patient_calls.get(allele)
            row[column] = None if result is None else result == "positive"
        rows.append(row)
    columns = ["patient_id", *(g.lower() for g in CYP_GENES), *HLA_COLUMNS.values()]
    return pd.DataFrame(rows, columns=columns).astype(object)


# --- export and hashing -----------------------------------------------------------------

# Offsets given to synthetic patients in turn, so exported files exercise offset handling.
_EXPORT_OFFSETS: Final = (
    (0, "Z"),
    (60, "+01:00"),
    (-300, "-05:00"),
    (330, "+05:30"),
    (0, "+00:00"),
)


def _local_timestamps(
    patient_ids: pd.Series, dates: pd.Series, clock: str, offsets: Mapping[str, str]
) -> pd.Series:
    day_text = pd.to_datetime(dates).dt.strftime("%Y-%m-%d")
    return day_text + f"T{clock}" + patient_ids.map(offsets)


def cohort_to_csvs(cohort: Cohort, directory: PathLike) -> dict[str, Path]:
    """Write the five documented files for a synthetic cohort; return their paths by kind."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    ids = cohort.patients["patient_id"].tolist()
    offsets = {pid: _EXPORT_OFFSETS[i % len(_EXPORT_OFFSETS)][1] for i, pid in enumerate(ids)}
    paths = {
        kind: target / f"{kind}.csv"
        for kind in ("symptoms", "biometrics", "medications", "genotypes", "outcomes")
    }

    symptoms = cohort.symptoms.melt(
        id_vars=["patient_id", "date"], value_vars=list(INSTRUMENTS), var_name="instrument"
    ).dropna(subset=["value"])
    pd.DataFrame(
        {
            "patient_id": symptoms["patient_id"],
            "observed_at": _local_timestamps(
                symptoms["patient_id"], symptoms["date"], "20:30:00", offsets
            ),
            "instrument": symptoms["instrument"],
            "score": symptoms["value"],
        }
    ).to_csv(paths["symptoms"], index=False)

    # A synthetic cohort has no column for the metrics only real devices supply.
    present = [m for m in METRICS if m in cohort.biometrics.columns]
    biometrics = cohort.biometrics.melt(
        id_vars=["patient_id", "date"], value_vars=present, var_name="metric"
    ).dropna(subset=["value"])
    pd.DataFrame(
        {
            "patient_id": biometrics["patient_id"],
            "measured_at": _local_timestamps(
                biometrics["patient_id"], biometrics["date"], "00:00:00", offsets
            ),
            "metric": biometrics["metric"],
            "value": biometrics["value"],
            "granularity": "day",
        }
    ).to_csv(paths["biometrics"], index=False)

    medications = cohort.medications
    pd.DataFrame(
        {
            "patient_id": medications["patient_id"],
            "occurred_at": _local_timestamps(
                medications["patient_id"], medications["date"], "09:00:00", offsets
            ),
            "medication": medications["medication"],
            "event": medications["event"],
            "daily_dose_mg": medications["daily_dose_mg"],
        }
    ).to_csv(paths["medications"], index=False)

    genotype_rows = []
    for gene in CYP_GENES:
        genotype_rows.append(
            pd.DataFrame(
                {
                    "patient_id": cohort.patients["patient_id"],
                    "gene": gene,
                    "diplotype": cohort.patients[gene.lower()],
                }
            )
        )
    for allele, column in HLA_COLUMNS.items():
        genotype_rows.append(
            pd.DataFrame(
                {
                    "patient_id": cohort.patients["patient_id"],
                    "gene": allele,
                    "diplotype": np.where(cohort.patients[column], "positive", "negative"),
                }
            )
        )
    pd.concat(genotype_rows, ignore_index=True).to_csv(paths["genotypes"], index=False)

    outcomes = cohort.outcomes
    pd.DataFrame(
        {
            "patient_id": outcomes["patient_id"],
            "medication": outcomes["medication"],
            "responded": outcomes["responded"].astype(np.int64),
            "side_effect": outcomes["side_effect"].astype(np.int64),
        }
    ).to_csv(paths["outcomes"], index=False)
    return paths


def sha256_of_frames(*frames: pd.DataFrame) -> str:
    """Content hash of frames, used as the training-data hash in model manifests.

    Covers column names, row order and every value (as CSV text; floats in
    shortest round-trip form, timestamps in ISO 8601), so the same data loaded
    twice hashes the same and any changed cell changes the hash.
    """
    digest = hashlib.sha256()
    digest.update(f"frames:{len(frames)}\n".encode())
    for frame in frames:
        digest.update(json.dumps([str(c) for c in frame.columns]).encode("utf-8"))
        digest.update(b"\n")
        text = frame.to_csv(
            index=False, header=False, lineterminator="\n", date_format="%Y-%m-%dT%H:%M:%S.%f%z"
        )
        digest.update(f"rows:{len(frame)}\n".encode())
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()
