"""A hand-built, realistic GenerateInsights answer for one patient, with the
PatientData it came from and a GetPatientProgress timeline.

The scenario: a patient on paroxetine whose depression is relapsing. CYP2D6
*1/*1 (normal metabolizer by genotype) is phenoconverted to a poor metabolizer
by paroxetine, a strong CYP2D6 inhibitor; CYP2C19 *1/*2 is an intermediate
metabolizer; HLA-B*15:02 is positive, so carbamazepine must not be started.
Guidance texts are the knowledge base's (CPIC 2023 SSRI guideline, PMID
37032427; CPIC 2017 HLA/carbamazepine update, PMID 29392710; FDA Abilify label).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from novamind.biometric.v1 import biometric_pb2
from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2
from novamind.pharmacogenomics.v1 import pharmacogenomics_pb2 as pgx_pb2
from novamind.twin.v1 import twin_pb2

REQUEST_ID = "3f9c2a7be1d04c6f8a5e0b7d2c4f6a81"
REAL_PATIENT_ID = "MRN-58213-QX"
LAST_OBSERVED_DAY = datetime(2026, 11, 20, tzinfo=UTC)
GENERATED_AT = datetime(2026, 11, 21, 8, 30, tzinfo=UTC)
HISTORY_DAYS = 90
HORIZON_DAYS = 30
SKIPPED_PHQ9_DAYS = frozenset({7, 19, 33, 46, 61, 74})
HRV_MISSING_START = datetime(2026, 10, 8, tzinfo=UTC)
HRV_MISSING_DAYS = 5
SCRIPT_TEXT = '<script>alert("x")</script>'
RISK_THRESHOLD = 15.0
FDA_ABILIFY = "FDA label Abilify (aripiprazole), Dosage and Administration"
CPIC_SSRI = "CPIC 2023 serotonin reuptake inhibitor antidepressants (Bousman et al.)"
CPIC_CBZ = "CPIC HLA genotype and carbamazepine/oxcarbazepine: 2017 update (Phillips et al.)"
FDA_INHIBITORS = "FDA table of CYP2D6 inhibitors (strong)"


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _day(index: int) -> datetime:
    """Day `index` of the 90-day history; index 89 is the last observed day."""
    return LAST_OBSERVED_DAY - timedelta(days=HISTORY_DAYS - 1 - index)


def phq9_history() -> list[tuple[datetime, float]]:
    rng = np.random.default_rng(7)
    scores: list[tuple[datetime, float]] = []
    for index in range(HISTORY_DAYS):
        if index in SKIPPED_PHQ9_DAYS:
            continue
        # Improves on treatment until about day 55, then relapses.
        base = 16.0 - 7.0 * min(index, 55) / 55 + max(0, index - 55) * 0.14
        weekly = 0.8 * math.sin(2 * math.pi * index / 7)
        score = float(np.clip(round(base + weekly + rng.normal(0, 1.0)), 0, 27))
        scores.append((_day(index), score))
    return scores


def patient_data() -> twin_pb2.PatientData:
    data = twin_pb2.PatientData()
    rng = np.random.default_rng(11)
    for moment, score in phq9_history():
        data.symptoms.add(
            instrument=common_pb2.INSTRUMENT_PHQ9, observed_at=ts(moment), score=score
        )
        mood = float(np.clip(round(7.4 - 0.35 * (score - 8) + rng.normal(0, 0.4), 1), 0, 10))
        data.symptoms.add(instrument=common_pb2.INSTRUMENT_MOOD, observed_at=ts(moment), score=mood)

    hrv_gap = {HRV_MISSING_START + timedelta(days=k) for k in range(HRV_MISSING_DAYS)}
    for index in range(HISTORY_DAYS):
        day = _day(index)
        values = {
            common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE: 62 + rng.normal(0, 2),
            common_pb2.BIOMETRIC_METRIC_HRV_RMSSD: 41 + rng.normal(0, 4),
            common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION: 7.1 + rng.normal(0, 0.4),
            common_pb2.BIOMETRIC_METRIC_STEPS: 7400 + rng.normal(0, 1200),
        }
        for metric, value in values.items():
            if metric == common_pb2.BIOMETRIC_METRIC_HRV_RMSSD and day in hrv_gap:
                continue
            data.biometrics.add(
                metric=metric,
                measured_at=ts(day),
                value=round(float(value), 2),
                granularity=common_pb2.SAMPLE_GRANULARITY_DAY,
            )

    data.genotype.diplotypes.add(gene="CYP2D6", diplotype="*1/*1")
    data.genotype.diplotypes.add(gene="CYP2C19", diplotype="*1/*2")
    data.genotype.hla_results.add(allele="HLA-B*15:02", status=common_pb2.HLA_STATUS_POSITIVE)
    data.genotype.hla_results.add(allele="HLA-A*31:01", status=common_pb2.HLA_STATUS_NEGATIVE)
    data.current_medications.add(
        name="paroxetine", daily_dose_mg=20, started_at=ts(datetime(2026, 6, 1, tzinfo=UTC))
    )
    data.candidate_medications.extend(
        ["aripiprazole", "carbamazepine", "sertraline", "escitalopram"]
    )
    data.clinical.age_years = 41
    data.clinical.sex = common_pb2.SEX_FEMALE
    data.clinical.baseline_phq9 = phq9_history()[-1][1]
    return data


def insights_request() -> twin_pb2.GenerateInsightsRequest:
    """What a caller sends: the real id travels only here, never in the response."""
    return twin_pb2.GenerateInsightsRequest(patient_id=REAL_PATIENT_ID, data=patient_data())


def phq9_point_forecast() -> list[float]:
    return [13.2 + 3.6 * math.sin(math.pi * min(h, 26) / 26) + 0.02 * h for h in range(1, 31)]


def risk_days() -> list[int]:
    """Horizon days where the fixture's point forecast is at or above 15."""
    return [h for h, p in enumerate(phq9_point_forecast(), start=1) if p >= RISK_THRESHOLD]


def _instrument_forecast(
    instrument: common_pb2.Instrument,
    points: list[float],
    widen: float,
    low: float,
    high: float,
) -> forecasting_pb2.InstrumentForecast:
    forecast = forecasting_pb2.InstrumentForecast(
        instrument=instrument,
        model=forecasting_pb2.FORECAST_MODEL_ENSEMBLE,
        observed_days=HISTORY_DAYS - len(SKIPPED_PHQ9_DAYS),
    )
    for horizon, point in enumerate(points, start=1):
        width = widen * math.sqrt(horizon)
        forecast.points.add(
            date=ts(LAST_OBSERVED_DAY + timedelta(days=horizon)),
            horizon_day=horizon,
            point=round(point, 2),
            quantiles=[
                forecasting_pb2.QuantileValue(level=0.1, value=round(max(low, point - width), 2)),
                forecasting_pb2.QuantileValue(level=0.5, value=round(point, 2)),
                forecasting_pb2.QuantileValue(level=0.9, value=round(min(high, point + width), 2)),
            ],
            lower=round(max(low, point - 1.15 * width), 2),
            upper=round(min(high, point + 1.15 * width), 2),
        )
    return forecast


def forecast_section() -> twin_pb2.ForecastSection:
    phq9 = _instrument_forecast(common_pb2.INSTRUMENT_PHQ9, phq9_point_forecast(), 1.3, 0, 27)
    phq9.trend.CopyFrom(
        forecasting_pb2.Trend(
            direction=forecasting_pb2.TREND_DIRECTION_WORSENING,
            slope_per_week=1.1,
            p_value=0.004,
            significant=True,
        )
    )
    days = risk_days()
    phq9.risk_periods.add(
        start_date=ts(LAST_OBSERVED_DAY + timedelta(days=days[0])),
        end_date=ts(LAST_OBSERVED_DAY + timedelta(days=days[-1])),
        threshold=RISK_THRESHOLD,
        threshold_label="PHQ-9 >= 15 (moderately severe)",
        peak_probability=0.68,
        peak_date=ts(LAST_OBSERVED_DAY + timedelta(days=13)),
    )
    for feature, importance in (("lag_1", 0.31), ("rolling_mean_7", 0.22), ("sleep_hours", 0.14)):
        phq9.feature_importance.add(
            feature=feature, importance=importance, source=forecasting_pb2.IMPORTANCE_SOURCE_SHAP
        )
    mood_points = [5.6 - 0.05 * h for h in range(1, 31)]
    mood = _instrument_forecast(common_pb2.INSTRUMENT_MOOD, mood_points, 0.45, 0, 10)
    mood.trend.CopyFrom(
        forecasting_pb2.Trend(
            direction=forecasting_pb2.TREND_DIRECTION_WORSENING,
            slope_per_week=-0.3,
            p_value=0.03,
            significant=True,
        )
    )
    response = forecasting_pb2.ForecastSymptomsResponse(
        forecasts=[phq9, mood], validation_interval_coverage=0.81
    )
    response.models.add(
        name="forecasting.ensemble",
        version="20261118T040000Z-3f2a9c1d",
        signature_verified=True,
    )
    return twin_pb2.ForecastSection(result=_ok(twin_pb2.SECTION_FORECAST, 840), forecast=response)


def _ok(section: twin_pb2.Section, millis: int) -> twin_pb2.SectionResult:
    return twin_pb2.SectionResult(
        section=section,
        status=common_pb2.SECTION_STATUS_OK,
        latency=Duration(seconds=millis // 1000, nanos=(millis % 1000) * 1_000_000),
    )


#: (metric, indicator, best lag, r, q, significant) for the six analysed pairs.
CORRELATIONS: tuple[tuple[int, int, int, float, float, bool], ...] = (
    (common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION, common_pb2.INSTRUMENT_MOOD, 3, 0.52, 0.002, True),
    (common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION, common_pb2.INSTRUMENT_PHQ9, 3, -0.44, 0.008, True),
    (common_pb2.BIOMETRIC_METRIC_HRV_RMSSD, common_pb2.INSTRUMENT_PHQ9, 5, -0.47, 0.004, True),
    (common_pb2.BIOMETRIC_METRIC_HRV_RMSSD, common_pb2.INSTRUMENT_MOOD, 4, 0.29, 0.09, False),
    (common_pb2.BIOMETRIC_METRIC_STEPS, common_pb2.INSTRUMENT_PHQ9, 1, -0.21, 0.21, False),
    (common_pb2.BIOMETRIC_METRIC_STEPS, common_pb2.INSTRUMENT_MOOD, 0, 0.18, 0.27, False),
)

#: (date, severity, method, [(metric, value, baseline, robust z)]) for the five anomalies.
ANOMALIES: tuple[tuple[datetime, int, int, tuple[tuple[int, float, float, float], ...]], ...] = (
    (
        datetime(2026, 9, 14, tzinfo=UTC),
        biometric_pb2.ANOMALY_SEVERITY_LOW,
        biometric_pb2.DETECTION_METHOD_ROBUST_Z,
        ((common_pb2.BIOMETRIC_METRIC_STEPS, 2100.0, 7400.0, -3.4),),
    ),
    (
        datetime(2026, 10, 2, tzinfo=UTC),
        biometric_pb2.ANOMALY_SEVERITY_MODERATE,
        biometric_pb2.DETECTION_METHOD_ROBUST_Z,
        ((common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE, 75.0, 62.0, 4.6),),
    ),
    (
        datetime(2026, 10, 27, tzinfo=UTC),
        biometric_pb2.ANOMALY_SEVERITY_LOW,
        biometric_pb2.DETECTION_METHOD_ISOLATION_FOREST,
        (),
    ),
    (
        datetime(2026, 11, 12, tzinfo=UTC),
        biometric_pb2.ANOMALY_SEVERITY_MODERATE,
        biometric_pb2.DETECTION_METHOD_BOTH,
        (
            (common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION, 5.6, 7.1, -4.2),
            (common_pb2.BIOMETRIC_METRIC_HRV_RMSSD, 27.0, 41.0, -3.6),
        ),
    ),
    (
        datetime(2026, 11, 18, tzinfo=UTC),
        biometric_pb2.ANOMALY_SEVERITY_HIGH,
        biometric_pb2.DETECTION_METHOD_BOTH,
        (
            (common_pb2.BIOMETRIC_METRIC_HRV_RMSSD, 24.0, 41.0, -6.4),
            (common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION, 5.2, 7.1, -5.1),
            (common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE, 70.5, 62.0, 4.0),
        ),
    ),
)


def _profile(best_lag: int, best_r: float) -> list[biometric_pb2.LagCorrelation]:
    return [
        biometric_pb2.LagCorrelation(
            lag_days=lag,
            pearson_r=round(best_r * math.exp(-(((lag - best_lag) / 4.0) ** 2)), 3),
        )
        for lag in range(15)
    ]


def biometric_section() -> twin_pb2.BiometricSection:
    correlations = biometric_pb2.AnalyzeCorrelationsResponse(
        reliability=biometric_pb2.RELIABILITY_GRADE_HIGH
    )
    for metric, indicator, lag, r, q, significant in CORRELATIONS:
        correlations.correlations.add(
            metric=metric,
            indicator=indicator,
            lag_days=lag,
            pearson_r=r,
            spearman_r=round(r * 0.93, 3),
            n=84,
            p_value=q / 2,
            q_value=q,
            significant=significant,
            reading="",
            profile=_profile(lag, r),
        )
    correlations.key_indicators.add(
        rank=1,
        metric=common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION,
        indicator=common_pb2.INSTRUMENT_MOOD,
        lead_days=3,
        strength=0.52,
        reading="Sleep duration falls about 3 days before mood drops",
    )
    correlations.key_indicators.add(
        rank=2,
        metric=common_pb2.BIOMETRIC_METRIC_HRV_RMSSD,
        indicator=common_pb2.INSTRUMENT_PHQ9,
        lead_days=5,
        strength=0.47,
        reading="HRV falls about 5 days before PHQ-9 rises",
    )
    correlations.coverage.window_days = HISTORY_DAYS
    correlations.coverage.indicator_days = HISTORY_DAYS - len(SKIPPED_PHQ9_DAYS)
    correlations.early_warning.CopyFrom(
        biometric_pb2.EarlyWarning(
            level=common_pb2.RISK_LEVEL_ELEVATED,
            probability=0.41,
            expected_lead_days=3,
            detail="Sleep and HRV below the patient's baseline over the last week",
            drivers=[
                biometric_pb2.WarningDriver(
                    metric=common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION,
                    date=ts(datetime(2026, 11, 18, tzinfo=UTC)),
                    weight=0.38,
                    description="Sleep 1.9 h below baseline",
                ),
                biometric_pb2.WarningDriver(
                    metric=common_pb2.BIOMETRIC_METRIC_HRV_RMSSD,
                    date=ts(datetime(2026, 11, 18, tzinfo=UTC)),
                    weight=0.27,
                    description="HRV 41% below baseline",
                ),
            ],
        )
    )

    anomalies = biometric_pb2.DetectAnomaliesResponse()
    for moment, severity, method, deviations in ANOMALIES:
        anomaly = anomalies.anomalies.add(
            date=ts(moment), severity=severity, method=method, score=0.5 + 0.1 * severity
        )
        for metric, value, baseline, z in deviations:
            anomaly.deviations.add(metric=metric, value=value, baseline_median=baseline, robust_z=z)
    anomalies.missing.add(
        metric=common_pb2.BIOMETRIC_METRIC_HRV_RMSSD,
        start_date=ts(HRV_MISSING_START),
        end_date=ts(HRV_MISSING_START + timedelta(days=HRV_MISSING_DAYS - 1)),
        days=HRV_MISSING_DAYS,
    )

    plan = biometric_pb2.RecommendMonitoringPlanResponse(
        summary="Watch sleep duration and HRV daily; they lead mood and PHQ-9 by 3-5 days."
    )
    plan.metrics.add(
        priority=1,
        metric=common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION,
        frequency=biometric_pb2.MONITORING_FREQUENCY_DAILY,
        alert_below=5.6,
        reason="Leads mood by about 3 days (r +0.52); alert at baseline minus 3 robust SD",
    )
    plan.metrics.add(
        priority=2,
        metric=common_pb2.BIOMETRIC_METRIC_HRV_RMSSD,
        frequency=biometric_pb2.MONITORING_FREQUENCY_DAILY,
        alert_below=28.0,
        reason="Leads PHQ-9 by about 5 days (r -0.47)",
    )
    plan.metrics.add(
        priority=3,
        metric=common_pb2.BIOMETRIC_METRIC_STEPS,
        frequency=biometric_pb2.MONITORING_FREQUENCY_WEEKLY,
        reason="Context for activity; no significant lead",
    )
    return twin_pb2.BiometricSection(
        result=_ok(twin_pb2.SECTION_BIOMETRIC, 1260),
        correlations=correlations,
        anomalies=anomalies,
        monitoring_plan=plan,
    )


def _evidence(source: str, strength: str, pmid: str = "", detail: str = "") -> common_pb2.Evidence:
    return common_pb2.Evidence(source=source, strength=strength, pmid=pmid, detail=detail)


def pharmacogenomics_section() -> twin_pb2.PharmacogenomicsSection:
    interactions = pgx_pb2.AnalyzeGeneMedicationInteractionsResponse(
        knowledge_base_version="2026.11.0"
    )
    interactions.phenotypes.add(
        gene="CYP2D6",
        diplotype="*1/*1",
        activity_score=2.0,
        genotype_phenotype=pgx_pb2.PHENOTYPE_NORMAL_METABOLIZER,
        effective_phenotype=pgx_pb2.PHENOTYPE_POOR_METABOLIZER,
        effective_activity_score=0.0,
        explanation="Activity score 2.0 (normal); paroxetine, a strong CYP2D6 inhibitor, "
        "sets it to 0 (Caudle et al. 2020, PMID 31647186)",
    )
    interactions.phenotypes.add(
        gene="CYP2C19",
        diplotype="*1/*2",
        genotype_phenotype=pgx_pb2.PHENOTYPE_INTERMEDIATE_METABOLIZER,
        effective_phenotype=pgx_pb2.PHENOTYPE_INTERMEDIATE_METABOLIZER,
        explanation="One normal-function and one no-function allele",
    )
    interactions.phenotypes.add(
        gene="HLA-B*15:02",
        diplotype="positive",
        genotype_phenotype=pgx_pb2.PHENOTYPE_POSITIVE,
        effective_phenotype=pgx_pb2.PHENOTYPE_POSITIVE,
        explanation="HLA-B*15:02 carrier",
    )
    interactions.phenoconversions.add(
        gene="CYP2D6",
        inhibitor="paroxetine",
        strength=pgx_pb2.INHIBITOR_STRENGTH_STRONG,
        from_phenotype=pgx_pb2.PHENOTYPE_NORMAL_METABOLIZER,
        to_phenotype=pgx_pb2.PHENOTYPE_POOR_METABOLIZER,
        what_would_change="If paroxetine is stopped, CYP2D6 reverts to Normal Metabolizer",
        evidence=_evidence(FDA_INHIBITORS, "FDA"),
    )
    interactions.interactions.add(
        medication="aripiprazole",
        gene="CYP2D6",
        phenotype=pgx_pb2.PHENOTYPE_POOR_METABOLIZER,
        action=pgx_pb2.GUIDANCE_ACTION_ADJUST_DOSE,
        strength=pgx_pb2.CLASSIFICATION_STRENGTH_FDA_LABEL,
        recommendation="Known CYP2D6 poor metabolizers: administer half of the usual dose. "
        "Adjunctive use in major depressive disorder is given without dosage adjustment.",
        dose_adjustment="50% of the usual dose (25% with a concomitant strong CYP3A4 "
        "inhibitor); no adjustment for adjunctive MDD",
        rationale="Paroxetine makes this CYP2D6 normal metabolizer behave as a poor metabolizer",
        evidence=_evidence(FDA_ABILIFY, "FDA label"),
        what_would_change="Stopping paroxetine",
        phenoconverted=True,
    )
    interactions.interactions.add(
        medication="carbamazepine",
        gene="HLA-B*15:02",
        phenotype=pgx_pb2.PHENOTYPE_POSITIVE,
        action=pgx_pb2.GUIDANCE_ACTION_AVOID,
        strength=pgx_pb2.CLASSIFICATION_STRENGTH_STRONG,
        recommendation="If patient is carbamazepine-naïve, do not use carbamazepine.",
        dose_adjustment="Not applicable (do not use)",
        rationale="Greater risk of carbamazepine-induced SJS/TEN",
        evidence=_evidence(CPIC_CBZ, "Strong", "29392710"),
    )
    for medication in ("sertraline", "escitalopram"):
        interactions.interactions.add(
            medication=medication,
            gene="CYP2C19",
            phenotype=pgx_pb2.PHENOTYPE_INTERMEDIATE_METABOLIZER,
            action=pgx_pb2.GUIDANCE_ACTION_ADJUST_DOSE,
            strength=pgx_pb2.CLASSIFICATION_STRENGTH_MODERATE,
            recommendation="Initiate therapy with recommended starting dose. Consider a slower "
            "titration schedule and lower maintenance dose.",
            dose_adjustment="Standard starting dose; slower titration and lower maintenance dose",
            rationale="Reduced metabolism compared with CYP2C19 normal metabolizers",
            evidence=_evidence(CPIC_SSRI, "Moderate", "37032427"),
        )
    interactions.interactions.add(
        medication="paroxetine",
        gene="CYP2D6",
        phenotype=pgx_pb2.PHENOTYPE_NORMAL_METABOLIZER,
        action=pgx_pb2.GUIDANCE_ACTION_USE_STANDARD,
        strength=pgx_pb2.CLASSIFICATION_STRENGTH_STRONG,
        recommendation="Initiate therapy with recommended starting dose",
        dose_adjustment="None",
        evidence=_evidence(CPIC_SSRI, "Strong", "37032427"),
        is_current=True,
    )

    responses = pgx_pb2.PredictMedicationResponseResponse()
    for rank, (medication, probability, action, strength, overrides) in enumerate(
        (
            ("sertraline", 0.58, "ADJUST_DOSE", "MODERATE", False),
            ("escitalopram", 0.53, "ADJUST_DOSE", "MODERATE", False),
            ("aripiprazole", 0.46, "ADJUST_DOSE", "FDA_LABEL", False),
            ("carbamazepine", 0.34, "AVOID", "STRONG", True),
        ),
        start=1,
    ):
        responses.predictions.add(
            medication=medication,
            response_probability=probability,
            guidance_action=pgx_pb2.GuidanceAction.Value(f"GUIDANCE_ACTION_{action}"),
            guidance_strength=pgx_pb2.ClassificationStrength.Value(
                f"CLASSIFICATION_STRENGTH_{strength}"
            ),
            guidance_overrides_prediction=overrides,
            rank=rank,
        )
    side_effects = pgx_pb2.PredictSideEffectsResponse()
    for medication, probability, level, overrides in (
        ("sertraline", 0.18, common_pb2.RISK_LEVEL_LOW, False),
        ("escitalopram", 0.21, common_pb2.RISK_LEVEL_LOW, False),
        ("carbamazepine", 0.24, common_pb2.RISK_LEVEL_HIGH, True),
        ("aripiprazole", 0.33, common_pb2.RISK_LEVEL_ELEVATED, False),
    ):
        side_effects.predictions.add(
            medication=medication,
            side_effect_probability=probability,
            risk_level=level,
            guidance_overrides_prediction=overrides,
        )
    return twin_pb2.PharmacogenomicsSection(
        result=_ok(twin_pb2.SECTION_PHARMACOGENOMICS, 310),
        interactions=interactions,
        responses=responses,
        side_effects=side_effects,
    )


def recommendations() -> list[common_pb2.Recommendation]:
    return [
        common_pb2.Recommendation(
            rule_id="pgx-avoid",
            priority=common_pb2.PRIORITY_URGENT,
            category=common_pb2.RECOMMENDATION_CATEGORY_MEDICATION_REVIEW,
            text="Do not start carbamazepine: the patient carries HLA-B*15:02.",
            rationale="HLA-B*15:02 carriers have a greater risk of carbamazepine-induced "
            "Stevens-Johnson syndrome / toxic epidermal necrolysis.",
            evidence=[_evidence(CPIC_CBZ, "Strong", "29392710")],
            source_section="pharmacogenomics",
            confidence=0.95,
        ),
        common_pb2.Recommendation(
            rule_id="forecast-follow-up",
            priority=common_pb2.PRIORITY_HIGH,
            category=common_pb2.RECOMMENDATION_CATEGORY_CLINICAL_FOLLOW_UP,
            text="Contact the patient this week to review worsening depressive symptoms.",
            rationale="The PHQ-9 forecast reaches the moderately severe range (≥ 15) with a "
            "peak probability of 68%, and sleep & HRV fell below baseline on 18 Nov.",
            evidence=[
                _evidence(
                    "Symptom forecast (ensemble, conformal-calibrated)",
                    "",
                    "",
                    "P(PHQ-9 >= 15) peaks at 68%",
                ),
                _evidence("PHQ-9 severity bands (Kroenke et al. 2001)", "", "11556941"),
            ],
            source_section="forecast",
            confidence=0.72,
        ),
        common_pb2.Recommendation(
            rule_id="pgx-phenoconversion",
            priority=common_pb2.PRIORITY_HIGH,
            category=common_pb2.RECOMMENDATION_CATEGORY_MEDICATION_REVIEW,
            text="If aripiprazole is started for a non-adjunctive indication, give half the "
            "usual dose while the patient takes paroxetine.",
            rationale="Paroxetine, a strong CYP2D6 inhibitor, makes this CYP2D6 normal "
            "metabolizer behave as a poor metabolizer. The label keeps the usual dose for "
            "adjunctive treatment of major depressive disorder.",
            evidence=[_evidence(FDA_ABILIFY, "FDA label"), _evidence(FDA_INHIBITORS, "FDA")],
            source_section="pharmacogenomics",
            confidence=0.85,
        ),
        common_pb2.Recommendation(
            rule_id="pgx-adjust",
            priority=common_pb2.PRIORITY_MEDIUM,
            category=common_pb2.RECOMMENDATION_CATEGORY_MEDICATION_REVIEW,
            text="If sertraline is chosen, titrate slowly to a lower maintenance dose.",
            rationale="CYP2C19 intermediate metabolizer (*1/*2).",
            evidence=[_evidence(CPIC_SSRI, "Moderate", "37032427")],
            source_section="pharmacogenomics",
            confidence=0.8,
        ),
        common_pb2.Recommendation(
            rule_id="monitor-key-indicator",
            priority=common_pb2.PRIORITY_MEDIUM,
            category=common_pb2.RECOMMENDATION_CATEGORY_MONITORING,
            text="Review sleep duration daily and alert when it falls below 5.6 h.",
            rationale="Sleep duration leads mood by about 3 days in this patient (r +0.52, "
            "q 0.002).",
            evidence=[_evidence("Lagged correlation, 84 paired days", "", "", "FDR q = 0.002")],
            source_section="biometric",
            confidence=0.66,
        ),
        common_pb2.Recommendation(
            rule_id="data-gap",
            priority=common_pb2.PRIORITY_LOW,
            category=common_pb2.RECOMMENDATION_CATEGORY_DATA_QUALITY,
            text=f"Ask the patient to wear the watch overnight {SCRIPT_TEXT}",
            rationale="HRV was missing for 5 consecutive days in October.",
            source_section="biometric",
            confidence=0.9,
        ),
    ]


def insights_response() -> twin_pb2.GenerateInsightsResponse:
    return twin_pb2.GenerateInsightsResponse(
        request_id=REQUEST_ID,
        snapshot_id="snap_5c1e0d9a",
        generated_at=ts(GENERATED_AT),
        overall_risk=common_pb2.RISK_LEVEL_HIGH,
        risk_drivers=[
            "PHQ-9 forecast reaches the moderately severe range (peak probability 68%)",
            "Early warning elevated: sleep duration and HRV below baseline",
            "High-severity biometric anomaly on 18 Nov",
        ],
        recommendations=recommendations(),
        forecast=forecast_section(),
        biometric=biometric_section(),
        pharmacogenomics=pharmacogenomics_section(),
    )


#: (days before generation, overall risk, latest PHQ-9) of each stored snapshot.
PROGRESS_POINTS: tuple[tuple[int, int, float], ...] = (
    (84, common_pb2.RISK_LEVEL_ELEVATED, 15.0),
    (56, common_pb2.RISK_LEVEL_LOW, 12.0),
    (28, common_pb2.RISK_LEVEL_LOW, 10.0),
    (0, common_pb2.RISK_LEVEL_HIGH, 14.0),
)

#: (snapshot index, instrument, days compared, MAE, interval coverage).
FORECAST_ACCURACY: tuple[tuple[int, int, int, float, float], ...] = (
    (1, common_pb2.INSTRUMENT_PHQ9, 28, 1.73, 0.82),
    (2, common_pb2.INSTRUMENT_PHQ9, 29, 2.41, 0.76),
    (2, common_pb2.INSTRUMENT_MOOD, 29, 0.64, 0.86),
)


def progress() -> twin_pb2.GetPatientProgressResponse:
    answer = twin_pb2.GetPatientProgressResponse()
    snapshot_ids = [f"snap_{index:08x}" for index in range(len(PROGRESS_POINTS))]
    for snapshot_id, (days_before, risk, phq9) in zip(snapshot_ids, PROGRESS_POINTS, strict=True):
        moment = GENERATED_AT - timedelta(days=days_before)
        answer.timeline.add(
            snapshot_id=snapshot_id,
            generated_at=ts(moment),
            overall_risk=risk,
            latest_scores=[
                common_pb2.SymptomObservation(
                    instrument=common_pb2.INSTRUMENT_PHQ9, observed_at=ts(moment), score=phq9
                )
            ],
            recommendation_count=4,
        )
    for index, instrument, days, mae, coverage in FORECAST_ACCURACY:
        answer.forecast_accuracy.add(
            snapshot_id=snapshot_ids[index],
            instrument=instrument,
            days_compared=days,
            mae=mae,
            interval_coverage=coverage,
        )
    answer.symptom_trends.add(
        instrument=common_pb2.INSTRUMENT_PHQ9,
        direction=forecasting_pb2.TREND_DIRECTION_STABLE,
        change=PROGRESS_POINTS[-1][2] - PROGRESS_POINTS[0][2],
        slope_per_week=-0.1,
    )
    answer.medication_changes.add(
        snapshot_id=snapshot_ids[1],
        detected_at=ts(GENERATED_AT - timedelta(days=PROGRESS_POINTS[1][0])),
        medication="mirtazapine",
        change=common_pb2.MEDICATION_EVENT_TYPE_STOP,
    )
    return answer
