"""Seeded generator of a synthetic psychiatric cohort with known ground truth.

The cohort is the default training, test and demo data of the mesh. It is a
documented *generative model*: every number below is a modelling choice, most
of them anchored to a published figure, none of them a claim that real
patients behave exactly this way. The ground truth (couplings and their lags,
relapse onsets, the latent severity, the true response probabilities) is
returned next to the observable frames so models can be scored against it.

Everything is drawn from one ``numpy.random.default_rng(seed)``: the same
``CohortConfig`` gives identical frames, a different seed a different cohort.
All daily series are generated as ``(patients, days)`` arrays; the only Python
loops run over days (AR recursions) or over the at most three medication
trials, never over patients.

Latent depressive severity (PHQ-9 points, 0..27)
------------------------------------------------
``severity[t] = clip(level[t] + relapse[t] + weekly[t] + ar[t], 0, 27)``

* ``level``: the patient's untreated baseline (``baseline_phq9``, normal with
  mean 14.5 and SD 3.5, clipped to 8..23: outpatients starting treatment are
  mostly in the moderate band; PHQ-9 bands 5/10/15/20 = mild, moderate,
  moderately severe, severe; Kroenke et al. 2001, PMID 11556941) multiplied by
  ``(1 - effect_k[t])`` for each medication trial ``k``. A trial's effect
  rises as ``r * (1 - exp(-(t - start) / tau))`` with ``tau`` 7..14 days, so a
  responder reaches ~95 % of the effect after 3-6 weeks; responders have
  ``r`` 0.5..0.8 (response = a >= 50 % fall, as defined in STAR*D), non-responders
  ``r`` 0.0..0.2. After a stop the effect decays with a 14-day time constant.
* ``relapse``: onsets form a renewal process with a 28-day refractory period
  whose mean gap is chosen so the long-run onset rate equals
  ``relapse_rate_per_year``. An episode rises linearly over 5..10 days to a
  peak severity drawn from 16..25 (so relapses reach PHQ-9 >= 15 and often
  >= 20) and then decays exponentially with a time constant of 14..35 days.
  A share ``prodrome_fraction`` (default 0.9) of onsets is preceded by a
  *prodrome*: subsyndromal symptoms that build up linearly over 7..28 days to
  2..5 PHQ-9 points on the day before onset, from where the episode rises as
  above. At least 80 % of people with a mood disorder can name prodromal
  symptoms, and depressive prodromes last a mean of just under 19 days (range
  2..365; Jackson, Cavanagh & Scott 2003, systematic review, PMID 12738039);
  the default share 0.9 sits inside "at least 80 %".
  Biometrics carry the prodrome in two ways. A coupled metric follows
  severity (below), so the build-up shows there ``lag_days`` earlier still.
  And in *every* patient with a prodrome the biometrics grow unstable:
  zero-mean extra day-to-day noise whose SD rises with the build-up to 1.5..3
  times the metric's own noise SD at onset (drawn per patient and metric)
  and fades over the episode's first week (time constant 7 days). Rising
  variance before a depressive transition ("critical slowing down") was
  shown in mood self-ratings by van de Leemput et al. 2014 (PNAS, PMID
  24324144); carrying it over to wearables, and its size, are modelling
  choices. Being zero-mean it moves no level, so uncoupled biometrics stay
  uncorrelated with symptom levels. The prodrome draws use their own random
  stream, so turning it off (``prodrome_fraction=0``) leaves every other draw
  of the cohort unchanged.
* ``weekly``: weekdays slightly worse than weekends (zero-mean pattern,
  weekend days ``-a``, weekdays ``+0.4 a``), ``a`` 0.3..1.0 PHQ-9 points for
  ``"default"`` dynamics; weekend mood is better than weekday mood in
  population day-reconstruction data (Stone et al., J Posit Psychol 2012).
* ``ar``: AR(1) day-to-day persistence, coefficient 0.80 and innovation SD 1.2
  (``"default"``), i.e. a stationary SD of 2 PHQ-9 points.

Readouts: ``phq9 = round(severity + e)`` (0..27), ``gad7 = round(0.65 severity
+ offset + anxiety_state + e)`` (0..21; Spitzer et al. 2006, PMID 16717171),
``mood = 8.8 + offset - 0.27 severity + e`` (0..10, 10 best, one decimal),
``anxiety = 0.25 severity + offset + 0.35 anxiety_state + e`` (0..10, 10
worst). ``anxiety_state`` is a small AR(1) anxiety-specific component. Each
patient has one *indicator* instrument (``CohortTruth.couplings.indicator``)
whose measurement noise is 0.6x that of the others, so it carries the
biometric coupling most clearly.

Biometrics
----------
Per-patient baselines: resting HR 55..80 bpm, HRV RMSSD 20..80 ms (normal
short-term RMSSD in healthy adults is ~19..75 ms, Nunan et al., Pacing Clin
Electrophysiol 2010), sleep 6..8.5 h (7-9 h recommended for adults, Hirshkowitz
et al., Sleep Health 2015), sleep efficiency 0.80..0.95 (>= 0.85 is the usual
"normal" cut-off), steps 3,000..12,000 per day (Tudor-Locke et al., Int J Behav
Nutr Phys Act 2011), active minutes 10..60. HRV, steps and active minutes vary
on a log scale, the others linearly; each has AR(1) noise (coefficient 0.5), a
weekly rhythm (weekend: longer sleep, fewer steps, slightly higher HR) and
rare artefact spikes (0.2 % of metric-days) that are *independent* of
symptoms and listed in ``CohortTruth.artefacts``.

For a COUPLED patient (share ``coupled_fraction``) one lead metric, and with
probability 0.3 each up to two weaker secondary metrics, follows the latent
severity ``lag_days`` days LATER:
``metric[t] += direction * k * sd * (fast[t + lag] + slow[t + lag])``, where
``sd`` is the metric's noise SD, ``k`` is 1.3..2.0 for the lead metric and
0.3..0.5 of that for secondaries, ``fast = 3 tanh(f / 6)`` for the day-to-day
part ``f`` of severity (weekly rhythm + AR fluctuation; ~1 unit per 2 PHQ-9
points) and ``slow = 1.5 tanh((s - median(s)) / 6)`` for its sustained part
``s`` (treatment level + relapse), so an episode moves sleep by ~1-1.5 h and
steps by ~40 % rather than off the chart. A biometric change therefore
PRECEDES the symptom change by ``lag_days`` (1..10 for ``"default"``, 2..14
for ``"shifted"``); severity is generated for ``n_days + max_lag`` days and
trimmed. Directions when symptoms worsen: resting HR up, HRV down, sleep
duration down (up in 20 % of patients: hypersomnia), efficiency down, steps
and active minutes down. Uncoupled patients' biometrics are independent of
their symptoms.

Genotypes (European-ancestry allele frequencies)
------------------------------------------------
Diplotypes are two independent draws (Hardy-Weinberg) from ``ALLELE_FREQUENCIES``:

* CYP2D6: rounded from the CPIC/PharmGKB CYP2D6 frequency table (European),
  see Gaedigk et al. 2017 (PMID 27388693); alleles not modelled here (*3,
  *6, ...) are folded into *1. Activity values follow the CPIC/DPWG consensus
  (Caudle et al. 2020, PMID 31647186): *1/*2 = 1, *4/*5 = 0, *10 = 0.25,
  *9/*17/*29/*41 = 0.5, *1x2/*2x2 = 2.
* CYP2C19: *2 0.147, *3 0.002, *17 0.215 (CPIC/PharmGKB CYP2C19 frequency
  table, European; Bousman et al. 2023, PMID 37032427).
* CYP2C9: *2 0.127, *3 0.076 (CPIC/PharmGKB CYP2C9 frequency table, European).
* CYP2B6: *6 0.24 (CPIC CYP2B6 frequency table, European; Desta et al. 2019,
  PMID 31006110). *18 is essentially an African-ancestry allele (~5-8 %,
  < 0.1 % in Europeans); the generator uses 0.5 % so carriers occur in cohorts
  of a few hundred. This is a deliberate deviation, kept visible here.
* HLA-B*15:02 allele frequency 0.001 (near absent in Europeans, 5-15 % in
  parts of South-East Asia) and HLA-A*31:01 0.03 (2-5 % in Europeans); carrier
  status = at least one copy (Phillips et al. 2018, PMID 29392710).

Medication trials and response
------------------------------
Each patient has 1..3 sequential trials (the first starting on day 0..28);
a trial that fails is stopped after 6..10 weeks (2..5 weeks when a side
effect made it intolerable) and the next starts 1..7 days later; a responder
stays on the drug and has no further trial. Aripiprazole is only ever the
last trial and is added to the running antidepressant (augmentation), which is
then not stopped. Each start is followed by one up-titration
(``dose_change``) 10..21 days later when the trial lasts that long.

``P(response)`` is logistic with odds ratios multiplied into a base of 0.58 for
a patient with no failed trial (``"default"``). With the cohort's mix of prior
failures (0/1/2/3 with probability 0.45/0.30/0.15/0.10) this gives a
first-trial response rate of ~47 %, the STAR*D level-1 response rate
(Trivedi et al. 2006, PMID 16390886). Odds ratios:

* 0.6 per prior failed trial (``prior_treatment_failures`` plus failed trials
  earlier in the window): STAR*D remission fell from 36.8 % to 30.6 % to
  13.7 % over steps 1-3 (Rush et al. 2006, PMID 17074942).
* CYP2C19 poor metabolizer on citalopram/escitalopram/sertraline: response OR
  0.8, side-effect OR 2.0 (higher exposure; CPIC 2023 recommends a 50 % lower
  dose or an alternative; Bousman et al. 2023, PMID 37032427; Hicks et al.
  2015, PMID 25974703).
* CYP2C19 ultrarapid metabolizer (*17/*17) on citalopram/escitalopram:
  response OR 0.6 (lower exposure; CPIC: consider an alternative).
* CYP2C19 poor metabolizer on amitriptyline: side-effect OR 1.5 (Hicks et al.
  2017, PMID 27997040).
* CYP2D6 poor metabolizer on paroxetine/venlafaxine/amitriptyline/aripiprazole:
  side-effect OR 2.0 (CPIC 2023; Hicks 2017; aripiprazole label: half dose in
  CYP2D6 PMs). CYP2D6 ultrarapid metabolizer on paroxetine/amitriptyline:
  response OR 0.6.
* CYP2B6 poor metabolizer (*6/*6, *6/*18, *18/*18) on sertraline: side-effect
  OR 1.5 (CPIC 2023: consider a lower starting dose).

``P(side effect)`` base 0.20. CPIC gives dosing recommendations, not odds
ratios: the ORs only encode the direction and a plausible size of those
recommendations. The ``"shifted"`` dynamics lower the base response to 0.46.

Missing data
------------
Symptom days and biometric days (all metrics at once: the watch was off) go
missing in runs of geometric length (mean 3 days, at most 14); the run start
rate is set so that the expected missing share equals ``missing_rate``.
"""

from __future__ import annotations

import datetime
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

_LOGGER = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

METRICS: Final = (
    "resting_heart_rate",
    "hrv_rmssd",
    "sleep_duration",
    "sleep_efficiency",
    "steps",
    "active_minutes",
)
INSTRUMENTS: Final = ("phq9", "gad7", "mood", "anxiety")

#: Inclusive score range of each instrument. mood: 10 is best; anxiety: 10 is worst.
INSTRUMENT_RANGES: Final[Mapping[str, tuple[float, float]]] = {
    "phq9": (0.0, 27.0),
    "gad7": (0.0, 21.0),
    "mood": (0.0, 10.0),
    "anxiety": (0.0, 10.0),
}

#: Medications a synthetic patient can be tried on (generic names, lowercase).
MEDICATIONS: Final = (
    "sertraline",
    "escitalopram",
    "citalopram",
    "fluoxetine",
    "paroxetine",
    "venlafaxine",
    "amitriptyline",
    "bupropion",
    "aripiprazole",
)

#: Start and target daily dose in mg (usual adult dosing for depression).
MEDICATION_DOSES_MG: Final[Mapping[str, tuple[float, float]]] = {
    "sertraline": (50.0, 100.0),
    "escitalopram": (10.0, 20.0),
    "citalopram": (20.0, 40.0),
    "fluoxetine": (20.0, 40.0),
    "paroxetine": (20.0, 40.0),
    "venlafaxine": (75.0, 150.0),
    "amitriptyline": (25.0, 75.0),
    "bupropion": (150.0, 300.0),
    "aripiprazole": (2.0, 5.0),
}

#: European-ancestry allele frequencies the genotypes are drawn from (see module doc).
ALLELE_FREQUENCIES: Final[Mapping[str, Mapping[str, float]]] = {
    "cyp2d6": {
        "*1": 0.358,
        "*2": 0.270,
        "*4": 0.185,
        "*5": 0.030,
        "*9": 0.028,
        "*10": 0.016,
        "*17": 0.003,
        "*29": 0.001,
        "*41": 0.092,
        "*1x2": 0.007,
        "*2x2": 0.010,
    },
    "cyp2c19": {"*1": 0.636, "*2": 0.147, "*3": 0.002, "*17": 0.215},
    "cyp2c9": {"*1": 0.797, "*2": 0.127, "*3": 0.076},
    "cyp2b6": {"*1": 0.755, "*6": 0.240, "*18": 0.005},
}

#: Allele frequency of each HLA risk allele; carrier status is drawn from 1 - (1 - p)^2.
HLA_ALLELE_FREQUENCIES: Final[Mapping[str, float]] = {
    "hla_b_15_02": 0.001,
    "hla_a_31_01": 0.03,
}

_CYP2D6_ACTIVITY: Final[Mapping[str, float]] = {
    "*1": 1.0,
    "*2": 1.0,
    "*4": 0.0,
    "*5": 0.0,
    "*9": 0.5,
    "*10": 0.25,
    "*17": 0.5,
    "*29": 0.5,
    "*41": 0.5,
    "*1x2": 2.0,
    "*2x2": 2.0,
}
_CYP2C19_NO_FUNCTION: Final = frozenset({"*2", "*3"})
_CYP2B6_DECREASED_OR_NONE: Final = frozenset({"*6", "*18"})

# Physiological sign of each metric's change when depressive symptoms worsen.
_WORSENING_DIRECTION: Final[Mapping[str, int]] = {
    "resting_heart_rate": 1,
    "hrv_rmssd": -1,
    "sleep_duration": -1,
    "sleep_efficiency": -1,
    "steps": -1,
    "active_minutes": -1,
}
_LEAD_METRIC_WEIGHTS: Final = (0.2, 0.2, 0.2, 0.1, 0.2, 0.1)
_INDICATOR_WEIGHTS: Final = (0.35, 0.15, 0.35, 0.15)

_MAX_TRIALS: Final = 3
_NO_STOP: Final = 10**6
_SEVERITY_MAX: Final = 27.0
_COUPLING_REFERENCE_SD: Final = 2.0  # PHQ-9 points of fluctuation per unit of drive
_FAST_SATURATION: Final = 3.0
_SUSTAINED_MAX: Final = 1.5
_SUSTAINED_SCALE: Final = 6.0  # PHQ-9 points
_RELAPSE_REFRACTORY_DAYS: Final = 28.0
_PRODROME_DAYS: Final = (7, 28)  # inclusive; Jackson et al. 2003: mean < 19 days
_PRODROME_POINTS: Final = (2.0, 5.0)  # PHQ-9 points reached the day before onset
_PRODROME_INSTABILITY_SD: Final = (1.5, 3.0)  # extra noise at onset, in noise SDs, per metric
_PRODROME_FADE_DAYS: Final = 7.0
_PRODROME_STREAM: Final = 0x9D0  # seeds the prodrome's own random stream
_MISSING_RUN_MEAN_DAYS: Final = 3.0
_MISSING_RUN_MAX_DAYS: Final = 14
_ARTEFACT_RATE: Final = 0.002


@dataclass(frozen=True)
class _Dynamics:
    """Parameters that differ between the default and the out-of-distribution cohort."""

    ar_coefficient: float
    innovation_sd: float
    weekly_amplitude: tuple[float, float]
    biometric_weekly_scale: float
    biometric_noise_scale: float
    measurement_noise_scale: float
    lag_range: tuple[int, int]
    base_response: float


_DYNAMICS: Final[Mapping[str, _Dynamics]] = {
    "default": _Dynamics(
        ar_coefficient=0.80,
        innovation_sd=1.2,
        weekly_amplitude=(0.3, 1.0),
        biometric_weekly_scale=1.0,
        biometric_noise_scale=1.0,
        measurement_noise_scale=1.0,
        lag_range=(1, 10),
        base_response=0.58,
    ),
    "shifted": _Dynamics(
        ar_coefficient=0.90,
        innovation_sd=1.0,
        weekly_amplitude=(0.8, 2.0),
        biometric_weekly_scale=1.8,
        biometric_noise_scale=1.25,
        measurement_noise_scale=1.3,
        lag_range=(2, 14),
        base_response=0.46,
    ),
}


@dataclass(frozen=True)
class CohortConfig:
    """What cohort to generate; the same config always gives the same cohort."""

    n_patients: int = 200
    n_days: int = 180
    seed: int = 0
    start_date: datetime.date = datetime.date(2026, 1, 1)
    coupled_fraction: float = 0.7
    relapse_rate_per_year: float = 2.0
    prodrome_fraction: float = 0.9
    missing_rate: float = 0.05
    dynamics: str = "default"

    def __post_init__(self) -> None:
        if self.n_patients < 1:
            raise ValueError("n_patients must be >= 1")
        if self.n_days < 14:
            raise ValueError("n_days must be >= 14")
        if not 0.0 <= self.coupled_fraction <= 1.0:
            raise ValueError("coupled_fraction must be within 0..1")
        if self.relapse_rate_per_year < 0.0:
            raise ValueError("relapse_rate_per_year must be >= 0")
        if not 0.0 <= self.prodrome_fraction <= 1.0:
            raise ValueError("prodrome_fraction must be within 0..1")
        if not 0.0 <= self.missing_rate < 0.9:
            raise ValueError("missing_rate must be within 0..0.9")
        if self.dynamics not in _DYNAMICS:
            raise ValueError(f"dynamics must be one of {sorted(_DYNAMICS)}")


def _empty_artefacts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": pd.Series([], dtype="str"),
            "date": pd.Series([], dtype="datetime64[ns]"),
            "metric": pd.Series([], dtype="str"),
        }
    )


@dataclass(frozen=True)
class CohortTruth:
    """What the generator knows and a model has to find out.

    couplings: one row per patient: patient_id, coupled, lead_metric (METRICS
        name or None), indicator (INSTRUMENTS name or None), lag_days (int or
        None), direction (+1/-1 sign of the lead metric's change when symptoms
        worsen; 0 when uncoupled), secondary_metrics (tuple of weaker coupled
        METRICS names).
    relapse_onsets: patient_id, onset_date, prodrome_days (0 = none) (onsets inside
        the cohort window only).
    latent_severity: patient_id, date, severity (PHQ-9 points).
    artefacts: patient_id, date, metric of injected artefact spikes (not caused by symptoms).
    """

    couplings: pd.DataFrame
    relapse_onsets: pd.DataFrame
    latent_severity: pd.DataFrame
    artefacts: pd.DataFrame = field(default_factory=_empty_artefacts)


@dataclass(frozen=True)
class Cohort:
    """Observable frames plus ground truth.

    patients: one row per patient: patient_id ("MRN-" + 7 digits), age, sex
        (female/male/other), prior_treatment_failures, baseline_phq9 (untreated
        level), cyp2d6, cyp2c19, cyp2c9, cyp2b6 (diplotypes such as "*1/*4"),
        hla_b_15_02, hla_a_31_01 (carrier, bool).
    symptoms: patient_id, date (datetime64[ns], midnight), phq9, gad7, mood,
        anxiety (float, NaN where missing); one row per patient and day.
    biometrics: patient_id, date and one float column per METRICS name.
    medications: patient_id, date, medication, event (start/stop/dose_change),
        daily_dose_mg (0 for a stop).
    outcomes: one row per trial: patient_id, medication, responded,
        side_effect, true_response_probability, true_side_effect_probability.
    """

    config: CohortConfig
    patients: pd.DataFrame
    symptoms: pd.DataFrame
    biometrics: pd.DataFrame
    medications: pd.DataFrame
    outcomes: pd.DataFrame
    truth: CohortTruth


@dataclass(frozen=True)
class _Trials:
    """Per-patient, per-trial arrays of shape (n_patients, _MAX_TRIALS)."""

    present: BoolArray
    medication: IntArray
    start: IntArray
    stop: IntArray
    titration: IntArray
    responded: BoolArray
    side_effect: BoolArray
    p_response: FloatArray
    p_side_effect: FloatArray
    reduction: FloatArray
    tau: FloatArray


@dataclass(frozen=True)
class _Phenotypes:
    cyp2d6_pm: BoolArray
    cyp2d6_um: BoolArray
    cyp2c19_pm: BoolArray
    cyp2c19_um: BoolArray
    cyp2b6_pm: BoolArray


def generate_cohort(config: CohortConfig = CohortConfig()) -> Cohort:
    """Generate a full synthetic cohort for ``config`` (deterministic in ``config``)."""
    started = time.perf_counter()
    dyn = _DYNAMICS[config.dynamics]
    rng = np.random.default_rng(config.seed)
    n, n_days = config.n_patients, config.n_days
    max_lag = dyn.lag_range[1]
    n_ext = n_days + max_lag
    first_weekday = config.start_date.weekday()
    weekday = (first_weekday + np.arange(n_ext)) % 7

    patient_ids = _patient_ids(rng, n)
    patients, phenotypes = _sample_patients(rng, patient_ids)
    trials = _simulate_trials(rng, patients, phenotypes, dyn, n_days)
    level = _treated_level(patients["baseline_phq9"].to_numpy(np.float64), trials, n_ext)
    prodrome_rng = np.random.default_rng([config.seed, _PRODROME_STREAM])
    relapse, onsets, prodrome = _relapses(
        rng, prodrome_rng, level, config.relapse_rate_per_year, config.prodrome_fraction
    )
    severity, fluctuation = _severity(rng, level, relapse, weekday, dyn)
    sustained = level + relapse

    couplings = _sample_couplings(rng, n, config.coupled_fraction, dyn)
    symptom_values = _symptom_readouts(rng, severity[:, :n_days], couplings, dyn)
    drive = _coupling_drive(sustained, fluctuation, couplings.lag, n_days)
    biometric_values, artefact_mask = _biometrics(rng, drive, couplings, weekday, dyn)
    _add_prodrome(prodrome_rng, biometric_values, prodrome[:, :n_days], dyn)

    symptom_missing = _missing_runs(rng, n, n_days, config.missing_rate)
    biometric_missing = _missing_runs(rng, n, n_days, config.missing_rate)
    for values in symptom_values.values():
        values[symptom_missing] = np.nan
    for values in biometric_values.values():
        values[biometric_missing] = np.nan
    artefact_mask &= ~biometric_missing[:, None, :]

    dates = pd.date_range(config.start_date, periods=n_days, freq="D").astype("datetime64[ns]")
    id_column = np.repeat(np.asarray(patient_ids), n_days)
    date_column = np.tile(dates.to_numpy(), n)
    symptoms = pd.DataFrame({"patient_id": id_column, "date": date_column})
    for name in INSTRUMENTS:
        symptoms[name] = symptom_values[name].reshape(-1)
    biometrics = pd.DataFrame({"patient_id": id_column, "date": date_column})
    for name in METRICS:
        biometrics[name] = biometric_values[name].reshape(-1)
    latent = pd.DataFrame(
        {
            "patient_id": id_column,
            "date": date_column,
            "severity": severity[:, :n_days].reshape(-1),
        }
    )

    medications, outcomes = _medication_frames(trials, patient_ids, dates, n_days)
    truth = CohortTruth(
        couplings=_couplings_frame(couplings, patient_ids),
        relapse_onsets=_onsets_frame(onsets, patient_ids, dates, n_days),
        latent_severity=latent,
        artefacts=_artefacts_frame(artefact_mask, patient_ids, dates),
    )
    _LOGGER.debug(
        "synthetic cohort generated",
        extra={"n_patients": n, "n_days": n_days, "seconds": time.perf_counter() - started},
    )
    return Cohort(
        config=config,
        patients=patients,
        symptoms=symptoms,
        biometrics=biometrics,
        medications=medications,
        outcomes=outcomes,
        truth=truth,
    )


def deterioration_labels(cohort: Cohort, horizon_days: int = 7) -> pd.DataFrame:
    """Label each patient-day 1 if a relapse onset falls in ``(date, date + horizon_days]``.

    Onsets after the cohort window are unknown, so the last ``horizon_days``
    days of each patient can only be labelled from onsets inside the window.
    """
    if horizon_days < 1:
        raise ValueError("horizon_days must be >= 1")
    grid = cohort.symptoms[["patient_id", "date"]].reset_index(drop=True)
    start = np.datetime64(cohort.config.start_date, "D").astype("datetime64[ns]")
    one_day = np.timedelta64(1, "D")
    patient_codes = pd.Categorical(
        grid["patient_id"], categories=cohort.patients["patient_id"]
    ).codes.astype(np.int64)
    day_index = ((grid["date"].to_numpy() - start) // one_day).astype(np.int64)
    n_patients, width = len(cohort.patients), cohort.config.n_days + horizon_days + 1
    onset_counts = np.zeros((n_patients, width), dtype=np.int64)
    onsets = cohort.truth.relapse_onsets
    if len(onsets):
        onset_codes = pd.Categorical(
            onsets["patient_id"], categories=cohort.patients["patient_id"]
        ).codes.astype(np.int64)
        onset_days = ((onsets["onset_date"].to_numpy() - start) // one_day).astype(np.int64)
        np.add.at(onset_counts, (onset_codes, onset_days), 1)
    cumulative = np.cumsum(onset_counts, axis=1)
    ahead = (
        cumulative[patient_codes, day_index + horizon_days] - cumulative[patient_codes, day_index]
    )
    return pd.DataFrame(
        {
            "patient_id": grid["patient_id"],
            "date": grid["date"],
            "label": (ahead > 0).astype(np.int64),
        }
    )


# --- patients and genotypes -------------------------------------------------------------


def _patient_ids(rng: np.random.Generator, n: int) -> list[str]:
    # MRN-like on purpose: PHI redaction tests need identifiers that look real.
    numbers = rng.choice(9_000_000, size=n, replace=False) + 1_000_000
    return [f"MRN-{number}" for number in numbers.tolist()]


def _allele_sort_key(allele: str) -> tuple[int, str]:
    number, _, copies = allele[1:].partition("x")
    return int(number), copies


def _sample_diplotypes(
    rng: np.random.Generator, frequencies: Mapping[str, float], n: int
) -> tuple[list[str], npt.NDArray[np.str_], npt.NDArray[np.str_]]:
    alleles = sorted(frequencies, key=_allele_sort_key)
    probabilities = np.array([frequencies[a] for a in alleles], dtype=np.float64)
    probabilities /= probabilities.sum()
    drawn = rng.choice(len(alleles), size=(n, 2), p=probabilities)
    first, second = drawn.min(axis=1), drawn.max(axis=1)
    names = np.array(alleles)
    low, high = names[first], names[second]
    diplotypes = np.char.add(np.char.add(low, "/"), high)
    return [str(d) for d in diplotypes.tolist()], low, high


def _sample_patients(
    rng: np.random.Generator, patient_ids: list[str]
) -> tuple[pd.DataFrame, _Phenotypes]:
    n = len(patient_ids)
    age = np.clip(np.rint(rng.normal(42.0, 14.0, n)), 18, 80).astype(np.int64)
    sex = rng.choice(np.array(["female", "male", "other"]), size=n, p=[0.62, 0.37, 0.01])
    failures = rng.choice(4, size=n, p=[0.45, 0.30, 0.15, 0.10]).astype(np.int64)
    baseline = np.round(np.clip(rng.normal(14.5, 3.5, n), 8.0, 23.0), 1)

    columns: dict[str, object] = {
        "patient_id": patient_ids,
        "age": age,
        "sex": [str(s) for s in sex.tolist()],
        "prior_treatment_failures": failures,
        "baseline_phq9": baseline,
    }
    alleles: dict[str, tuple[npt.NDArray[np.str_], npt.NDArray[np.str_]]] = {}
    for gene, frequencies in ALLELE_FREQUENCIES.items():
        diplotypes, low, high = _sample_diplotypes(rng, frequencies, n)
        columns[gene] = diplotypes
        alleles[gene] = (low, high)
    for column, allele_frequency in HLA_ALLELE_FREQUENCIES.items():
        carrier_probability = 1.0 - (1.0 - allele_frequency) ** 2
        columns[column] = rng.random(n) < carrier_probability

    return pd.DataFrame(columns), _phenotypes(alleles)


def _phenotypes(
    alleles: Mapping[str, tuple[npt.NDArray[np.str_], npt.NDArray[np.str_]]],
) -> _Phenotypes:
    def activity(values: npt.NDArray[np.str_]) -> FloatArray:
        return np.array([_CYP2D6_ACTIVITY[v] for v in values.tolist()], dtype=np.float64)

    def member(values: npt.NDArray[np.str_], group: frozenset[str]) -> BoolArray:
        return np.isin(values, list(group))

    d6_low, d6_high = alleles["cyp2d6"]
    score = activity(d6_low) + activity(d6_high)
    c19_low, c19_high = alleles["cyp2c19"]
    c19_null = member(c19_low, _CYP2C19_NO_FUNCTION).astype(np.int64) + member(
        c19_high, _CYP2C19_NO_FUNCTION
    ).astype(np.int64)
    b6_low, b6_high = alleles["cyp2b6"]
    return _Phenotypes(
        cyp2d6_pm=score == 0.0,
        cyp2d6_um=score > 2.25,
        cyp2c19_pm=c19_null == 2,
        cyp2c19_um=(c19_low == "*17") & (c19_high == "*17"),
        cyp2b6_pm=member(b6_low, _CYP2B6_DECREASED_OR_NONE)
        & member(b6_high, _CYP2B6_DECREASED_OR_NONE),
    )


# --- medication trials ------------------------------------------------------------------


def _medication_odds(
    medication: IntArray, phenotypes: _Phenotypes
) -> tuple[FloatArray, FloatArray]:
    """Genotype odds ratios (response, side effect) for each patient's drug (see module doc)."""

    def on(*names: str) -> BoolArray:
        return np.isin(medication, [MEDICATIONS.index(name) for name in names])

    response = np.ones(medication.shape, dtype=np.float64)
    side_effect = np.ones(medication.shape, dtype=np.float64)
    c19_pm_drugs = on("citalopram", "escitalopram", "sertraline") & phenotypes.cyp2c19_pm
    response[c19_pm_drugs] *= 0.8
    side_effect[c19_pm_drugs] *= 2.0
    response[on("citalopram", "escitalopram") & phenotypes.cyp2c19_um] *= 0.6
    side_effect[on("amitriptyline") & phenotypes.cyp2c19_pm] *= 1.5
    d6_pm_drugs = on("paroxetine", "venlafaxine", "amitriptyline", "aripiprazole")
    side_effect[d6_pm_drugs & phenotypes.cyp2d6_pm] *= 2.0
    response[on("paroxetine", "amitriptyline") & phenotypes.cyp2d6_um] *= 0.6
    side_effect[on("sertraline") & phenotypes.cyp2b6_pm] *= 1.5
    return response, side_effect


def _logistic(base_probability: float, odds_ratio: FloatArray) -> FloatArray:
    odds = base_probability / (1.0 - base_probability) * odds_ratio
    return odds / (1.0 + odds)


def _choose_medication(
    rng: np.random.Generator, used: BoolArray, allow_adjunct: BoolArray
) -> IntArray:
    # First-line SSRIs dominate; aripiprazole is only an add-on to a running antidepressant.
    base = np.array([0.22, 0.20, 0.14, 0.15, 0.06, 0.10, 0.04, 0.09, 0.0])
    weights = np.tile(base, (used.shape[0], 1))
    weights[:, MEDICATIONS.index("aripiprazole")] = np.where(allow_adjunct, 0.35, 0.0)
    weights[used] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(weights, axis=1)
    draws = rng.random(int(used.shape[0]))[:, None]
    chosen: IntArray = np.minimum((cumulative < draws).sum(axis=1), len(MEDICATIONS) - 1)
    return chosen.astype(np.int64)


def _simulate_trials(
    rng: np.random.Generator,
    patients: pd.DataFrame,
    phenotypes: _Phenotypes,
    dyn: _Dynamics,
    n_days: int,
) -> _Trials:
    n = len(patients)
    shape = (n, _MAX_TRIALS)
    present = np.zeros(shape, dtype=np.bool_)
    medication = np.zeros(shape, dtype=np.int64)
    start = np.full(shape, _NO_STOP, dtype=np.int64)
    stop = np.full(shape, _NO_STOP, dtype=np.int64)
    titration = np.full(shape, _NO_STOP, dtype=np.int64)
    responded = np.zeros(shape, dtype=np.bool_)
    side_effect = np.zeros(shape, dtype=np.bool_)
    p_response = np.zeros(shape, dtype=np.float64)
    p_side_effect = np.zeros(shape, dtype=np.float64)
    reduction = np.zeros(shape, dtype=np.float64)
    tau = np.ones(shape, dtype=np.float64)

    planned = rng.choice(np.array([1, 2, 3]), size=n, p=[0.3, 0.4, 0.3])
    failures = patients["prior_treatment_failures"].to_numpy(np.int64).copy()
    used = np.zeros((n, len(MEDICATIONS)), dtype=np.bool_)
    active = np.ones(n, dtype=np.bool_)
    previous_stop = np.zeros(n, dtype=np.int64)
    gap = rng.integers(0, 29, n)
    adjunct_index = MEDICATIONS.index("aripiprazole")

    for k in range(_MAX_TRIALS):
        chosen = _choose_medication(rng, used, allow_adjunct=(planned == k + 1) & (k >= 1))
        # Augmentation is added the day the failing drug would have been switched, and keeps
        # that antidepressant running underneath the add-on.
        augmenting = chosen == adjunct_index
        trial_start = np.where(augmenting, previous_stop, previous_stop + gap)
        trial_present = active & (trial_start < n_days)
        if k >= 1:
            stop[trial_present & augmenting, k - 1] = _NO_STOP

        response_or, side_or = _medication_odds(chosen, phenotypes)
        response_or = response_or * 0.6 ** failures.astype(np.float64)
        trial_p_response = _logistic(dyn.base_response, response_or)
        trial_p_side = _logistic(0.20, side_or)
        trial_responded = rng.random(n) < trial_p_response
        trial_side = rng.random(n) < trial_p_side
        intolerable = trial_side & ~trial_responded & (rng.random(n) < 0.6)
        duration = np.where(intolerable, rng.integers(14, 36, n), rng.integers(42, 71, n))
        trial_stop = np.where(trial_responded, _NO_STOP, trial_start + duration)

        present[:, k] = trial_present
        medication[:, k] = chosen
        start[:, k] = trial_start
        stop[:, k] = trial_stop
        titration[:, k] = trial_start + rng.integers(10, 22, n)
        responded[:, k] = trial_responded
        side_effect[:, k] = trial_side
        p_response[:, k] = trial_p_response
        p_side_effect[:, k] = trial_p_side
        reduction[:, k] = np.where(
            trial_responded, rng.uniform(0.5, 0.8, n), rng.uniform(0.0, 0.2, n)
        )
        tau[:, k] = rng.uniform(7.0, 14.0, n)

        used[np.arange(n)[trial_present], chosen[trial_present]] = True
        failures = failures + (trial_present & ~trial_responded)
        active = trial_present & ~trial_responded & (planned > k + 1)
        previous_stop = trial_stop
        gap = rng.integers(1, 8, n)

    return _Trials(
        present=present,
        medication=medication,
        start=start,
        stop=stop,
        titration=titration,
        responded=responded,
        side_effect=side_effect,
        p_response=p_response,
        p_side_effect=p_side_effect,
        reduction=reduction,
        tau=tau,
    )


def _medication_frames(
    trials: _Trials, patient_ids: list[str], dates: pd.DatetimeIndex, n_days: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    patient_index, trial_index = np.nonzero(trials.present)
    order = np.lexsort((trial_index, patient_index))
    patient_index, trial_index = patient_index[order], trial_index[order]
    ids = np.asarray(patient_ids)
    names = np.asarray(MEDICATIONS)
    meds = trials.medication[patient_index, trial_index]
    start_dose = np.array([MEDICATION_DOSES_MG[m][0] for m in MEDICATIONS])[meds]
    target_dose = np.array([MEDICATION_DOSES_MG[m][1] for m in MEDICATIONS])[meds]
    start = trials.start[patient_index, trial_index]
    stop = trials.stop[patient_index, trial_index]
    titration = trials.titration[patient_index, trial_index]

    event_parts = []
    for event, day, dose, keep in (
        ("start", start, start_dose, np.ones(len(start), dtype=np.bool_)),
        ("dose_change", titration, target_dose, (titration < stop) & (titration < n_days)),
        ("stop", stop, np.zeros(len(stop)), stop < n_days),
    ):
        event_parts.append(
            pd.DataFrame(
                {
                    "patient_id": ids[patient_index[keep]],
                    "day": day[keep],
                    "medication": names[meds[keep]],
                    "event": event,
                    "daily_dose_mg": dose[keep].astype(np.float64),
                }
            )
        )
    events = pd.concat(event_parts, ignore_index=True)
    event_rank = events["event"].map({"stop": 0, "start": 1, "dose_change": 2})
    events = (
        events.assign(_rank=event_rank)
        .sort_values(["patient_id", "day", "_rank", "medication"], kind="stable")
        .reset_index(drop=True)
    )
    medications = pd.DataFrame(
        {
            "patient_id": events["patient_id"],
            "date": dates.to_numpy()[events["day"].to_numpy(np.int64)],
            "medication": events["medication"],
            "event": events["event"],
            "daily_dose_mg": events["daily_dose_mg"].astype(np.float64),
        }
    )
    outcomes = pd.DataFrame(
        {
            "patient_id": ids[patient_index],
            "medication": names[meds],
            "responded": trials.responded[patient_index, trial_index],
            "side_effect": trials.side_effect[patient_index, trial_index],
            "true_response_probability": trials.p_response[patient_index, trial_index],
            "true_side_effect_probability": trials.p_side_effect[patient_index, trial_index],
        }
    )
    return medications, outcomes


# --- latent severity --------------------------------------------------------------------


def _treated_level(baseline: FloatArray, trials: _Trials, n_ext: int) -> FloatArray:
    days = np.arange(n_ext, dtype=np.float64)[None, :]
    multiplier = np.ones((baseline.shape[0], n_ext), dtype=np.float64)
    for k in range(_MAX_TRIALS):
        present = trials.present[:, k][:, None]
        start = trials.start[:, k].astype(np.float64)[:, None]
        stop = trials.stop[:, k].astype(np.float64)[:, None]
        reduction = trials.reduction[:, k][:, None]
        tau = trials.tau[:, k][:, None]
        since_start = np.clip(days - start, 0.0, None)
        rising = reduction * (1.0 - np.exp(-np.minimum(since_start, stop - start) / tau))
        after_stop = np.exp(-np.clip(days - stop, 0.0, None) / 14.0)
        effect = np.where(days < start, 0.0, rising * after_stop)
        multiplier *= 1.0 - np.where(present, effect, 0.0)
    return baseline[:, None] * multiplier


def _relapses(
    rng: np.random.Generator,
    prodrome_rng: np.random.Generator,
    level: FloatArray,
    rate_per_year: float,
    prodrome_fraction: float,
) -> tuple[FloatArray, list[tuple[int, int, int]], FloatArray]:
    """Relapse severity, onsets (patient, day, prodrome days or 0) and the prodrome's
    build-up (0..1) per day."""
    n, n_ext = int(level.shape[0]), int(level.shape[1])
    relapse = np.zeros((n, n_ext), dtype=np.float64)
    prodrome = np.zeros((n, n_ext), dtype=np.float64)
    if rate_per_year <= 0.0:
        return relapse, [], prodrome
    mean_interval = 365.0 / rate_per_year
    mean_gap = max(mean_interval - _RELAPSE_REFRACTORY_DAYS, 1.0)
    n_gaps = math.ceil(n_ext / _RELAPSE_REFRACTORY_DAYS) + 2
    first = rng.exponential(mean_interval, (n, 1))
    later = _RELAPSE_REFRACTORY_DAYS + rng.exponential(mean_gap, (n, n_gaps - 1))
    onset_times = np.floor(np.cumsum(np.concatenate([first, later], axis=1), axis=1))
    patient_index, gap_index = np.nonzero(onset_times < n_ext)
    onset_day = onset_times[patient_index, gap_index].astype(np.int64)
    count = len(onset_day)

    rise = rng.integers(5, 11, count).astype(np.float64)
    decay = rng.uniform(14.0, 35.0, count)
    peak = rng.uniform(16.0, 25.0, count)
    amplitude = np.maximum(peak - level[patient_index, onset_day], 4.0)
    since = np.arange(n_ext, dtype=np.float64)[None, :] - onset_day[:, None]
    rise_col, decay_col = rise[:, None], decay[:, None]

    # Prodrome: a linear build-up to ``prodrome_level`` (share of the amplitude) on the
    # day before onset; the episode then rises from there to its peak.
    has_prodrome = prodrome_rng.random(count) < prodrome_fraction
    prodrome_days = prodrome_rng.integers(_PRODROME_DAYS[0], _PRODROME_DAYS[1] + 1, count)
    prodrome_points = prodrome_rng.uniform(*_PRODROME_POINTS, count)
    prodrome_level = np.where(has_prodrome, np.minimum(prodrome_points / amplitude, 0.5), 0.0)
    length_col, level_col = prodrome_days.astype(np.float64)[:, None], prodrome_level[:, None]
    build_up = level_col * np.clip((since + length_col + 1.0) / length_col, 0.0, 1.0)
    episode_rise = level_col + (1.0 - level_col) * (since + 1.0) / rise_col
    shape = np.where(
        since < 0,
        build_up,
        np.where(
            since < rise_col,
            episode_rise,
            np.exp(-(since - rise_col + 1.0) / decay_col),
        ),
    )
    np.add.at(relapse, patient_index, amplitude[:, None] * shape)
    # The physiological side: full at onset, fading over the first week of the episode.
    fade = np.exp(-np.maximum(since, 0.0) / _PRODROME_FADE_DAYS)
    signal = np.where(since < 0, build_up / np.maximum(level_col, 1e-9), fade)
    np.maximum.at(prodrome, patient_index, np.where(has_prodrome[:, None], signal, 0.0))
    lengths = np.where(has_prodrome, prodrome_days, 0)
    onsets = list(zip(patient_index.tolist(), onset_day.tolist(), lengths.tolist(), strict=True))
    return relapse, onsets, prodrome


def _add_prodrome(
    rng: np.random.Generator,
    values: dict[str, FloatArray],
    prodrome: FloatArray,
    dyn: _Dynamics,
) -> None:
    """Make every patient's biometrics unstable during a prodrome (zero-mean extra noise).

    The extra day-to-day noise has SD ``gain x prodrome x metric noise SD``; it
    moves no metric's level, so it creates no correlation with symptom levels
    in patients whose biometrics are uncoupled.
    """
    n = int(prodrome.shape[0])
    gains = rng.uniform(*_PRODROME_INSTABILITY_SD, (n, len(METRICS)))
    for j, name in enumerate(METRICS):
        model = _METRIC_MODELS[name]
        sd = model.noise_sd * dyn.biometric_noise_scale
        shift = gains[:, j][:, None] * prodrome * sd * rng.standard_normal(prodrome.shape)
        current = values[name]
        shifted: FloatArray = current * np.exp(shift) if model.log_scale else current + shift
        values[name] = np.round(np.clip(shifted, *model.bounds), model.decimals).astype(np.float64)


def _ar1(
    rng: np.random.Generator, shape: tuple[int, ...], coefficient: float, stationary_sd: FloatArray
) -> FloatArray:
    """AR(1) noise along the last axis, scaled to ``stationary_sd`` (broadcast over the rest)."""
    innovations = rng.standard_normal(shape)
    series = np.empty(shape, dtype=np.float64)
    series[..., 0] = innovations[..., 0]
    scale = math.sqrt(1.0 - coefficient**2)
    for t in range(1, shape[-1]):
        series[..., t] = coefficient * series[..., t - 1] + scale * innovations[..., t]
    return series * stationary_sd


def _severity(
    rng: np.random.Generator,
    level: FloatArray,
    relapse: FloatArray,
    weekday: IntArray,
    dyn: _Dynamics,
) -> tuple[FloatArray, FloatArray]:
    """Return the latent severity and its fast part (weekly rhythm + AR fluctuation)."""
    n, n_ext = int(level.shape[0]), int(level.shape[1])
    weekly_pattern = np.where(weekday >= 5, -1.0, 0.4)
    amplitude = rng.uniform(*dyn.weekly_amplitude, n)[:, None]
    stationary_sd = dyn.innovation_sd / math.sqrt(1.0 - dyn.ar_coefficient**2)
    noise = _ar1(rng, (n, n_ext), dyn.ar_coefficient, np.array(stationary_sd))
    fluctuation = amplitude * weekly_pattern + noise
    return np.clip(level + relapse + fluctuation, 0.0, _SEVERITY_MAX), fluctuation


def _onsets_frame(
    onsets: list[tuple[int, int, int]],
    patient_ids: list[str],
    dates: pd.DatetimeIndex,
    n_days: int,
) -> pd.DataFrame:
    kept = sorted(onset for onset in onsets if onset[1] < n_days)
    return pd.DataFrame(
        {
            "patient_id": pd.Series([patient_ids[p] for p, _, _ in kept], dtype="str"),
            "onset_date": pd.Series(
                dates.to_numpy()[[d for _, d, _ in kept]], dtype="datetime64[ns]"
            ),
            "prodrome_days": np.array([length for _, _, length in kept], dtype=np.int64),
        }
    )


# --- symptoms ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Couplings:
    coupled: BoolArray
    lead: IntArray  # METRICS index, -1 when uncoupled
    indicator: IntArray  # INSTRUMENTS index for every patient (noise-favoured readout)
    lag: IntArray  # 0 when uncoupled
    strength: FloatArray  # (n, len(METRICS)) coupling gain per metric, 0 = uncoupled
    direction: IntArray  # (n, len(METRICS)) sign of change when symptoms worsen


def _sample_couplings(
    rng: np.random.Generator, n: int, coupled_fraction: float, dyn: _Dynamics
) -> _Couplings:
    n_metrics = len(METRICS)
    coupled = rng.random(n) < coupled_fraction
    lead = rng.choice(n_metrics, size=n, p=list(_LEAD_METRIC_WEIGHTS)).astype(np.int64)
    indicator = rng.choice(len(INSTRUMENTS), size=n, p=list(_INDICATOR_WEIGHTS)).astype(np.int64)
    lag = rng.integers(dyn.lag_range[0], dyn.lag_range[1] + 1, n).astype(np.int64)
    lead_gain = rng.uniform(1.3, 2.0, n)

    secondary_draw = rng.random((n, n_metrics))
    secondary_draw[np.arange(n), lead] = 1.0
    # At most two secondaries: keep the two smallest draws below 0.3.
    rank = np.argsort(np.argsort(secondary_draw, axis=1), axis=1)
    secondary = (secondary_draw < 0.3) & (rank < 2)
    secondary_gain = rng.uniform(0.3, 0.5, (n, n_metrics)) * lead_gain[:, None]

    strength = np.where(secondary, secondary_gain, 0.0)
    strength[np.arange(n), lead] = lead_gain
    strength[~coupled] = 0.0

    direction = np.tile(np.array([_WORSENING_DIRECTION[m] for m in METRICS]), (n, 1))
    hypersomnia = rng.random(n) < 0.2
    direction[hypersomnia, METRICS.index("sleep_duration")] = 1
    return _Couplings(
        coupled=coupled,
        lead=np.where(coupled, lead, -1).astype(np.int64),
        indicator=indicator,
        lag=np.where(coupled, lag, 0).astype(np.int64),
        strength=strength,
        direction=direction.astype(np.int64),
    )


def _couplings_frame(couplings: _Couplings, patient_ids: list[str]) -> pd.DataFrame:
    rows_lead: list[str | None] = []
    rows_indicator: list[str | None] = []
    rows_lag: list[int | None] = []
    rows_direction: list[int] = []
    rows_secondary: list[tuple[str, ...]] = []
    for i in range(len(patient_ids)):
        if not couplings.coupled[i]:
            rows_lead.append(None)
            rows_indicator.append(None)
            rows_lag.append(None)
            rows_direction.append(0)
            rows_secondary.append(())
            continue
        lead = int(couplings.lead[i])
        rows_lead.append(METRICS[lead])
        rows_indicator.append(INSTRUMENTS[int(couplings.indicator[i])])
        rows_lag.append(int(couplings.lag[i]))
        rows_direction.append(int(couplings.direction[i, lead]))
        rows_secondary.append(
            tuple(
                METRICS[j]
                for j in range(len(METRICS))
                if j != lead and couplings.strength[i, j] > 0.0
            )
        )
    return pd.DataFrame(
        {
            "patient_id": pd.Series(patient_ids, dtype="str"),
            "coupled": couplings.coupled.copy(),
            "lead_metric": pd.Series(rows_lead, dtype=object),
            "indicator": pd.Series(rows_indicator, dtype=object),
            "lag_days": pd.Series(rows_lag, dtype=object),
            "direction": np.array(rows_direction, dtype=np.int64),
            "secondary_metrics": pd.Series(rows_secondary, dtype=object),
        }
    )


def _symptom_readouts(
    rng: np.random.Generator, severity: FloatArray, couplings: _Couplings, dyn: _Dynamics
) -> dict[str, FloatArray]:
    n, n_days = int(severity.shape[0]), int(severity.shape[1])
    noise_scale = np.full((n, len(INSTRUMENTS)), dyn.measurement_noise_scale)
    noise_scale[np.arange(n), couplings.indicator] *= 0.6

    def noise(column: int, sd: float) -> FloatArray:
        scale = noise_scale[:, column][:, None] * sd
        return rng.standard_normal((n, n_days)) * scale

    anxiety_state = _ar1(rng, (n, n_days), 0.8, np.array(1.0))
    gad_offset = rng.normal(0.0, 1.5, n)[:, None]
    mood_offset = rng.normal(0.0, 0.6, n)[:, None]
    anxiety_offset = rng.normal(1.0, 0.6, n)[:, None]

    phq9 = np.clip(np.rint(severity + noise(0, 1.1)), 0.0, 27.0)
    gad7 = np.clip(np.rint(0.65 * severity + gad_offset + anxiety_state + noise(1, 1.1)), 0, 21)
    mood = np.clip(np.round(8.8 + mood_offset - 0.27 * severity + noise(2, 0.45), 1), 0, 10)
    anxiety = np.clip(
        np.round(0.25 * severity + anxiety_offset + 0.35 * anxiety_state + noise(3, 0.45), 1),
        0.0,
        10.0,
    )
    return {
        "phq9": phq9.astype(np.float64),
        "gad7": gad7.astype(np.float64),
        "mood": mood.astype(np.float64),
        "anxiety": anxiety.astype(np.float64),
    }


# --- biometrics -------------------------------------------------------------------------


@dataclass(frozen=True)
class _MetricModel:
    """How one metric is generated: baseline draw, scale, noise, weekend shift, bounds."""

    log_scale: bool
    baseline_mean: float  # natural units (geometric mean when log_scale)
    baseline_spread: float  # SD, in log units when log_scale
    baseline_range: tuple[float, float]
    noise_sd: float  # in the transformed (log or natural) space
    weekend_shift: float  # in the transformed space
    bounds: tuple[float, float]
    decimals: int
    artefact: tuple[float, float]  # additive (natural scale) or multiplicative (log scale)


_METRIC_MODELS: Final[Mapping[str, _MetricModel]] = {
    "resting_heart_rate": _MetricModel(
        False, 66.0, 7.0, (55.0, 80.0), 2.0, 1.0, (35.0, 140.0), 1, (25.0, 45.0)
    ),
    "hrv_rmssd": _MetricModel(
        True, 42.0, 0.35, (20.0, 80.0), 0.12, -0.03, (5.0, 250.0), 1, (2.0, 3.0)
    ),
    "sleep_duration": _MetricModel(
        False, 7.2, 0.6, (6.0, 8.5), 0.55, 0.4, (0.0, 14.0), 2, (3.0, 5.0)
    ),
    "sleep_efficiency": _MetricModel(
        False, 0.88, 0.035, (0.80, 0.95), 0.022, 0.0, (0.4, 1.0), 3, (-0.45, -0.3)
    ),
    "steps": _MetricModel(
        True, 7000.0, 0.4, (3000.0, 12000.0), 0.22, -0.12, (0.0, 60000.0), 0, (2.5, 4.0)
    ),
    "active_minutes": _MetricModel(
        True, 30.0, 0.45, (10.0, 60.0), 0.28, -0.10, (0.0, 600.0), 0, (2.5, 4.0)
    ),
}


def _coupling_drive(
    sustained: FloatArray, fluctuation: FloatArray, lag: IntArray, n_days: int
) -> FloatArray:
    """Push of severity ``lag`` days later on a coupled metric, in units of (gain x metric SD).

    Day-to-day fluctuations act almost linearly (1 unit per 2 PHQ-9 points), so a
    change in symptoms shows up in the metric ``lag`` days earlier; sustained
    shifts (treatment, relapse) act through a saturating curve of at most 1.5
    units, so an episode moves sleep by ~1-1.5 h rather than off the chart.
    """
    n_ext = int(sustained.shape[1])
    index = np.minimum(np.arange(n_days)[None, :] + lag[:, None], n_ext - 1)
    future_sustained = np.take_along_axis(sustained, index, axis=1)
    future_fluctuation = np.take_along_axis(fluctuation, index, axis=1)
    centre = np.median(sustained, axis=1, keepdims=True)
    fast = _FAST_SATURATION * np.tanh(
        future_fluctuation / _COUPLING_REFERENCE_SD / _FAST_SATURATION
    )
    slow = _SUSTAINED_MAX * np.tanh((future_sustained - centre) / _SUSTAINED_SCALE)
    result: FloatArray = fast + slow
    return result


def _biometrics(
    rng: np.random.Generator,
    drive: FloatArray,
    couplings: _Couplings,
    weekday: IntArray,
    dyn: _Dynamics,
) -> tuple[dict[str, FloatArray], BoolArray]:
    n, n_days = int(drive.shape[0]), int(drive.shape[1])
    n_metrics = len(METRICS)
    noise = _ar1(rng, (n, n_metrics, n_days), 0.5, np.array(1.0))
    # Steps and active minutes share most of their day-to-day variation.
    steps, active = METRICS.index("steps"), METRICS.index("active_minutes")
    noise[:, active] = 0.7 * noise[:, steps] + math.sqrt(1.0 - 0.49) * noise[:, active]
    weekly_scale = rng.uniform(0.5, 1.5, (n, n_metrics)) * dyn.biometric_weekly_scale
    weekend = (weekday[:n_days] >= 5).astype(np.float64)[None, :]

    artefact_mask = rng.random((n, n_metrics, n_days)) < _ARTEFACT_RATE
    values: dict[str, FloatArray] = {}
    for j, name in enumerate(METRICS):
        model = _METRIC_MODELS[name]
        low, high = model.baseline_range
        if model.log_scale:
            draw = np.exp(rng.normal(math.log(model.baseline_mean), model.baseline_spread, n))
            baseline = np.log(np.clip(draw, low, high))
        else:
            baseline = np.clip(rng.normal(model.baseline_mean, model.baseline_spread, n), low, high)
        sd = model.noise_sd * dyn.biometric_noise_scale
        gain = (couplings.strength[:, j] * couplings.direction[:, j] * sd)[:, None]
        transformed = (
            baseline[:, None]
            + model.weekend_shift * weekly_scale[:, j][:, None] * weekend
            + sd * noise[:, j]
            + gain * drive
        )
        natural = np.exp(transformed) if model.log_scale else transformed
        spike = rng.uniform(*model.artefact, (n, n_days))
        mask = artefact_mask[:, j]
        natural = np.where(mask, natural * spike if model.log_scale else natural + spike, natural)
        values[name] = np.round(np.clip(natural, *model.bounds), model.decimals)
    return values, artefact_mask


def _artefacts_frame(
    artefact_mask: BoolArray, patient_ids: list[str], dates: pd.DatetimeIndex
) -> pd.DataFrame:
    patient_index, metric_index, day_index = np.nonzero(artefact_mask)
    if len(patient_index) == 0:
        return _empty_artefacts()
    return pd.DataFrame(
        {
            "patient_id": np.asarray(patient_ids)[patient_index],
            "date": dates.to_numpy()[day_index],
            "metric": np.asarray(METRICS)[metric_index],
        }
    )


# --- missingness ------------------------------------------------------------------------


def _missing_runs(rng: np.random.Generator, n: int, n_days: int, rate: float) -> BoolArray:
    """Boolean (n, n_days) mask of missing days, in runs, with expected share ``rate``."""
    mask = np.zeros((n, n_days), dtype=np.bool_)
    if rate <= 0.0:
        return mask
    continue_probability = 1.0 - 1.0 / _MISSING_RUN_MEAN_DAYS
    lengths = np.arange(_MISSING_RUN_MAX_DAYS)
    expected_length = float(np.sum(continue_probability**lengths))
    # P(day covered) = 1 - prod_d (1 - p * P(L > d)) ~= p * E[L] for small p.
    start_probability = -math.log(1.0 - rate) / expected_length
    starts = rng.random((n, n_days)) < start_probability
    run_length = np.minimum(
        rng.geometric(1.0 / _MISSING_RUN_MEAN_DAYS, (n, n_days)), _MISSING_RUN_MAX_DAYS
    )
    for d in range(_MISSING_RUN_MAX_DAYS):
        covering = starts & (run_length > d)
        mask[:, d:] |= covering[:, : n_days - d]
    return mask
