"""The one definition of a symptom trend, shared by the forecast and the patient's progress.

A clinician asks "where has this patient been going lately, and is it more
than noise?". Both the forecasting service (each ``InstrumentForecast.trend``)
and the orchestrator's ``GetPatientProgress`` answer it with this module, so
the two cannot disagree on the same scores.

* **Window.** The scores of the last six weeks: from ``WINDOW_DAYS`` (42)
  days before the instrument's last observed day up to it. Six weeks is
  recent enough that a relapse of the last two weeks dominates the course
  (over twelve weeks, the demo patient's rise from about 10 to 18 PHQ-9
  points in its last ten days fitted a flat line), and long enough to hold
  four fortnightly PHQ-9s, the fewest a trend is computed from (seven weekly
  ones, 43 daily ones). Only observed scores enter: forecast values are
  model output, and a slope fitted partly to them would describe the model,
  not the patient. Callers pass one score per day (the day's mean), so a day
  with several entries weighs no more than a day with one. The slower course
  (a response over a 12-week treatment course) is what
  ``GetPatientProgress``'s ``change`` between snapshots shows.
* **Slope.** Least squares on the real spacing of the scores, in points per
  week, so weekly, fortnightly and irregular cadences are handled alike.
  Not Theil-Sen or another rank method: with four to six scores a rank
  method sees only their order, so it cannot tell a 17-point rise with one
  small dip (5, 14, 12, 22) from noise, and four scores can never reach
  p < 0.05 two-sided (the issue this definition replaced). Least squares
  uses the size of the change, which is what the MID is about; the price is
  more pull from one wild entry, which the instruments' bounded ranges limit.
* **Uncertainty.** A ``CONFIDENCE`` (90 %, two-sided) t-interval of the slope
  from its residuals, with the residual degrees of freedom honestly few (two
  for four scores). Daily scores are strongly autocorrelated, which makes a
  plain interval far too narrow. From ``MIN_SCORES_FOR_AUTOCORRELATION``
  scores on, the residuals' autocorrelations r_k shrink the sample to an
  effective n / (1 + 2 sum_k (1 - k/n) r_k), summed over lags while r_k stays
  positive (Geyer's initial positive sequence, Stat Sci 1992;7:473-483); the
  effective n sets both the standard error and the degrees of freedom, as in
  Santer et al. (J Geophys Res 2000;105:7337-7356), who use lag 1 only: with
  measurement noise on top of day-to-day persistence lag 1 alone understates
  it. Estimated autocorrelations are biased low in short series, so the
  correction is partial: of simulated flat six-week daily series with
  day-to-day persistence 0.8 plus rating noise (the synthetic cohort's
  dynamics) about a quarter are called significant instead of a tenth, yet
  about 1 % get a direction, because the change must also reach the MID.
  Fewer scores than the threshold cannot estimate r_k; they are
  taken as independent. A direction is a one-sided claim, so the 90 % two-sided
  interval claims each direction at the 5 % level; ``p_value`` is the
  two-sided p of the same t statistic, so "the interval excludes zero" and
  "p < 0.10" are the same decision.
* **Direction.** WORSENING or IMPROVING only when both hold: the interval
  excludes zero (the change is not noise), and the fitted change over the
  window (slope times the time between its first and last score) is at least
  one minimal important difference (MID) of the instrument (the change is
  clinically meaningful): PHQ-9 5 points (Löwe, Unützer, Callahan, Perkins &
  Kroenke, Med Care 2004;42:1194-1201, PMID 15550799), GAD-7 4 points
  (Toussaint et al., J Affect Disord 2020;265:395-401, PMID 32090765). The
  0-10 mood and anxiety ratings have no validated MID; 1 point (a tenth of
  the scale) is this project's choice. Otherwise STABLE; with fewer than
  ``MIN_SCORES`` scores in the window, NOT_ASSESSED. For mood, where a higher
  score is better, a rise is improving.

What the definition does not do: a change smaller than one MID within six
weeks reads STABLE even when it continues a longer drift, and a rise of the
last few days moves a six-week slope only a little. Acute change is what the
forecast's risk periods and the biometric early warning are for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]

#: The trend uses scores from this many days before the last observed day up to it.
WINDOW_DAYS: Final = 42
#: Fewer scores than this in the window: the trend is not assessed.
MIN_SCORES: Final = 4
#: Two-sided confidence of the slope interval; each direction is claimed at (1 - CONFIDENCE) / 2.
CONFIDENCE: Final = 0.90
#: From this many scores the residuals' autocorrelation is estimated and corrected for.
MIN_SCORES_FOR_AUTOCORRELATION: Final = 10


class TrendDirection(Enum):
    NOT_ASSESSED = "not_assessed"
    IMPROVING = "improving"
    STABLE = "stable"
    WORSENING = "worsening"


@dataclass(frozen=True)
class TrendRule:
    """What makes a change on one instrument clinically meaningful, and which way is worse."""

    minimal_important_difference: float
    higher_is_worse: bool


#: By instrument column name (common.synthetic.INSTRUMENT_RANGES); sources in the module doc.
TREND_RULES: Final[dict[str, TrendRule]] = {
    "phq9": TrendRule(minimal_important_difference=5.0, higher_is_worse=True),
    "gad7": TrendRule(minimal_important_difference=4.0, higher_is_worse=True),
    "mood": TrendRule(minimal_important_difference=1.0, higher_is_worse=False),
    "anxiety": TrendRule(minimal_important_difference=1.0, higher_is_worse=True),
}


@dataclass(frozen=True)
class SymptomTrend:
    direction: TrendDirection
    #: Least-squares slope, score points per week (0 when not assessed).
    slope_per_week: float
    #: Bounds of the slope's CONFIDENCE interval, points per week.
    slope_lower_per_week: float
    slope_upper_per_week: float
    #: Slope times the time between the window's first and last score: the fitted change.
    fitted_change: float
    #: Two-sided p of the slope's t statistic (autocorrelation corrected).
    p_value: float
    #: Whether the slope's interval excludes zero (p_value < 1 - CONFIDENCE).
    significant: bool
    #: Scores in the window.
    scores: int


def least_squares_slope(days: FloatArray, values: FloatArray) -> float:
    """Slope per day; 0 when all scores share a day."""
    centered = days - days.mean()
    sxx = float((centered**2).sum())
    return float((centered * (values - values.mean())).sum() / sxx) if sxx > 0 else 0.0


def effective_sample_size(residuals: FloatArray) -> float:
    """n / (1 + 2 sum (1 - k/n) r_k) over the initial positive autocorrelations; n when short."""
    n = len(residuals)
    energy = float((residuals**2).sum())
    if n < MIN_SCORES_FOR_AUTOCORRELATION or energy == 0:
        return float(n)
    inflation = 1.0
    for k in range(1, n // 2):
        r_k = float((residuals[:-k] * residuals[k:]).sum()) / energy
        if r_k <= 0:
            break
        inflation += 2.0 * (1.0 - k / n) * r_k
    return n / inflation


def symptom_trend(
    days: FloatArray,
    values: FloatArray,
    rule: TrendRule,
    *,
    window_days: int = WINDOW_DAYS,
    confidence: float = CONFIDENCE,
) -> SymptomTrend:
    """The trend of one instrument's daily scores; ``days`` are day numbers on any origin."""
    days = np.asarray(days, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if days.shape != values.shape or days.ndim != 1:
        raise ValueError("days and values must be 1-D arrays of equal length")
    keep = np.isfinite(days) & np.isfinite(values)
    days, values = days[keep], values[keep]
    if len(days):
        recent = days >= days.max() - window_days
        days, values = days[recent], values[recent]
    if len(days) < MIN_SCORES or np.ptp(days) == 0:
        return SymptomTrend(TrendDirection.NOT_ASSESSED, 0.0, 0.0, 0.0, 0.0, 1.0, False, len(days))

    order = np.argsort(days, kind="stable")
    days, values = days[order], values[order]
    slope = least_squares_slope(days, values)
    centered = days - days.mean()
    residuals = values - values.mean() - slope * centered
    # At least one degree of freedom: a very wide interval rather than none.
    dof = max(effective_sample_size(residuals), 3.0) - 2.0
    variance = float((residuals**2).sum()) / dof  # residual variance at the effective n
    standard_error = math.sqrt(variance / float((centered**2).sum()))
    half_width = float(stats.t.ppf(0.5 + confidence / 2.0, dof)) * standard_error
    lower, upper = slope - half_width, slope + half_width
    if standard_error > 0:
        p_value = float(2.0 * stats.t.sf(abs(slope) / standard_error, dof))
    else:
        p_value = 0.0 if slope != 0 else 1.0
    significant = lower > 0 or upper < 0
    fitted_change = slope * float(np.ptp(days))
    direction = TrendDirection.STABLE
    if significant and abs(fitted_change) >= rule.minimal_important_difference:
        rising = fitted_change > 0
        direction = (
            TrendDirection.WORSENING if rising == rule.higher_is_worse else TrendDirection.IMPROVING
        )
    return SymptomTrend(
        direction=direction,
        slope_per_week=slope * 7.0,
        slope_lower_per_week=lower * 7.0,
        slope_upper_per_week=upper * 7.0,
        fitted_change=fitted_change,
        p_value=p_value,
        significant=significant,
        scores=len(days),
    )
