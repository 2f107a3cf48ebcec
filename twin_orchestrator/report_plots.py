"""PNG figures for the clinician insights report.

Every figure is drawn on a bare :class:`matplotlib.figure.Figure` with the Agg
canvas (no pyplot, so no global state and no display) and returned as PNG
bytes together with the alt text that says, in words, what the figure shows.
The PNG metadata is stripped so the report carries no external URL.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import matplotlib.dates as mdates
from google.protobuf.timestamp_pb2 import Timestamp
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from common.clinical_scales import INSTRUMENT_LABELS, INSTRUMENT_RANGES
from novamind.biometric.v1 import biometric_pb2
from novamind.common.v1 import common_pb2
from novamind.forecasting.v1 import forecasting_pb2
from novamind.twin.v1 import twin_pb2

_LOGGER = logging.getLogger(__name__)

_DPI = 110
_INK = "#1f2933"
_MUTED = "#7b8794"
_GRID = "#e4e7eb"
_OBSERVED = "#243b53"
_FORECAST = "#2f6f8f"
_RISK_SHADE = "#d64545"


#: Severity cut-points drawn on the fan charts. PHQ-9: 10 moderate, 15 moderately
#: severe, 20 severe (Kroenke, Spitzer & Williams, J Gen Intern Med 2001;16:606,
#: PMID 11556941). GAD-7: 10 moderate, 15 severe (Spitzer et al., Arch Intern Med
#: 2006;166:1092, PMID 16717171). Mood and anxiety self-ratings have no validated
#: cut-points, so none are drawn.
CLINICAL_THRESHOLDS: dict[int, tuple[tuple[float, str], ...]] = {
    common_pb2.INSTRUMENT_PHQ9: (
        (10.0, "10 moderate"),
        (15.0, "15 moderately severe"),
        (20.0, "20 severe"),
    ),
    common_pb2.INSTRUMENT_GAD7: ((10.0, "10 moderate"), (15.0, "15 severe")),
}

METRIC_LABELS: dict[int, str] = {
    common_pb2.BIOMETRIC_METRIC_RESTING_HEART_RATE: "Resting heart rate",
    common_pb2.BIOMETRIC_METRIC_HRV_RMSSD: "HRV (RMSSD)",
    common_pb2.BIOMETRIC_METRIC_SLEEP_DURATION: "Sleep duration",
    common_pb2.BIOMETRIC_METRIC_SLEEP_EFFICIENCY: "Sleep efficiency",
    common_pb2.BIOMETRIC_METRIC_STEPS: "Steps",
    common_pb2.BIOMETRIC_METRIC_ACTIVE_MINUTES: "Active minutes",
    common_pb2.BIOMETRIC_METRIC_HEART_RATE: "Heart rate",
    common_pb2.BIOMETRIC_METRIC_HRV_SDNN: "HRV (SDNN)",
}

SEVERITY_LABELS: dict[int, str] = {
    biometric_pb2.ANOMALY_SEVERITY_UNSPECIFIED: "Unrated",
    biometric_pb2.ANOMALY_SEVERITY_LOW: "Low",
    biometric_pb2.ANOMALY_SEVERITY_MODERATE: "Moderate",
    biometric_pb2.ANOMALY_SEVERITY_HIGH: "High",
}

# Colour and marker both change with severity so the chart reads in greyscale too.
_SEVERITY_STYLE: dict[int, tuple[str, str]] = {
    biometric_pb2.ANOMALY_SEVERITY_UNSPECIFIED: ("#9aa5b1", "o"),
    biometric_pb2.ANOMALY_SEVERITY_LOW: ("#e1b12c", "o"),
    biometric_pb2.ANOMALY_SEVERITY_MODERATE: ("#e67e22", "s"),
    biometric_pb2.ANOMALY_SEVERITY_HIGH: ("#b03a2e", "D"),
}

RISK_LABELS: dict[int, str] = {
    common_pb2.RISK_LEVEL_UNSPECIFIED: "Not assessed",
    common_pb2.RISK_LEVEL_LOW: "Low",
    common_pb2.RISK_LEVEL_ELEVATED: "Elevated",
    common_pb2.RISK_LEVEL_HIGH: "High",
    common_pb2.RISK_LEVEL_CRITICAL: "Critical",
}

# Mood is the one scale where a higher score is better; say so on its axis.
_SCORE_DIRECTION: dict[int, str] = {common_pb2.INSTRUMENT_MOOD: " (higher is better)"}

_MULTIVARIATE_ROW = "All metrics (multivariate)"


@dataclass(frozen=True)
class RenderedPlot:
    """A figure as PNG bytes and the sentence that describes it to a screen reader."""

    png: bytes
    alt: str
    width_px: int
    height_px: int


def instrument_label(instrument: int) -> str:
    return INSTRUMENT_LABELS.get(instrument, "Unknown instrument")


def metric_label(metric: int) -> str:
    return METRIC_LABELS.get(metric, "Unknown metric")


def to_datetime(timestamp: Timestamp) -> datetime:
    return timestamp.ToDatetime(tzinfo=UTC)


def _new_figure(
    width_in: float,
    height_in: float,
    *,
    left: float = 0.75,
    right: float = 0.25,
    top: float = 0.35,
    bottom: float = 0.5,
    wspace: float = 0.2,
) -> Figure:
    """A figure with fixed margins in inches. Fixed margins instead of a layout
    engine: constrained/tight layout draw every figure twice or more, which
    tripled the report's rendering time."""
    figure = Figure(figsize=(width_in, height_in), dpi=_DPI)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(
        left=left / width_in,
        right=1 - right / width_in,
        top=1 - top / height_in,
        bottom=bottom / height_in,
        wspace=wspace,
    )
    return figure


def _render(figure: Figure, alt: str) -> RenderedPlot:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI, facecolor="white", metadata={"Software": None})
    width, height = figure.canvas.get_width_height()
    return RenderedPlot(png=buffer.getvalue(), alt=alt, width_px=width, height_px=height)


def _style_axes(axes: Axes) -> None:
    axes.grid(True, color=_GRID, linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        axes.spines[side].set_color(_MUTED)
    axes.tick_params(colors=_INK, labelsize=8.5)


def _date_axis(axes: Axes) -> None:
    axes.xaxis_date()
    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    axes.xaxis.set_major_locator(locator)
    # The offset shows only the year: "2026-Nov" under a month axis reads as a tick.
    axes.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(locator, offset_formats=["", "%Y", "%Y", "%Y", "%Y", "%Y"])
    )


def _x(moment: datetime) -> float:
    """Matplotlib's date number for a moment (typed float, unlike passing datetimes)."""
    return float(mdates.date2num(moment))


def _fmt_day(moment: datetime) -> str:
    return f"{moment.day} {moment:%b %Y}"


def forecast_fan_chart(
    forecast: forecasting_pb2.InstrumentForecast,
    history: Sequence[common_pb2.SymptomObservation],
    *,
    history_days: int = 90,
    validation_coverage: float = 0.0,
) -> RenderedPlot:
    """Observed scores, point forecast, quantile bands, calibrated interval,
    clinical thresholds and shaded risk periods for one instrument."""
    label = instrument_label(forecast.instrument)
    low, high = INSTRUMENT_RANGES.get(forecast.instrument, (0.0, 10.0))
    points = sorted(forecast.points, key=lambda p: (p.date.seconds, p.date.nanos))
    days = [to_datetime(p.date) for p in points]
    xs = [_x(d) for d in days]
    start = days[0] if days else None

    observed = sorted(
        (to_datetime(o.observed_at), o.score)
        for o in history
        if o.instrument == forecast.instrument
    )
    if start is not None:
        window_start = start - timedelta(days=history_days)
        observed = [pair for pair in observed if window_start <= pair[0] < start]

    # The right margin holds the threshold labels ("15 moderately severe").
    figure = _new_figure(9.6, 3.7, left=0.65, right=1.25, bottom=0.55)
    axes = figure.add_subplot()
    _style_axes(axes)

    for threshold, text in CLINICAL_THRESHOLDS.get(forecast.instrument, ()):
        axes.axhline(threshold, color=_MUTED, linestyle=":", linewidth=1.0, zorder=1)
        axes.annotate(
            text,
            xy=(1.0, threshold),
            xycoords=("axes fraction", "data"),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=7.5,
            color=_MUTED,
        )

    for period in forecast.risk_periods:
        first = to_datetime(period.start_date)
        last = to_datetime(period.end_date) + timedelta(days=1)
        axes.axvspan(_x(first), _x(last), color=_RISK_SHADE, alpha=0.12, linewidth=0, zorder=0)

    if observed:
        axes.plot(
            [_x(d) for d, _ in observed],
            [s for _, s in observed],
            color=_OBSERVED,
            linewidth=1.1,
            marker="o",
            markersize=2.6,
            label="Observed",
            zorder=4,
        )

    levels = sorted({q.level for p in points for q in p.quantiles})
    band_pairs = [
        (levels[i], levels[-1 - i]) for i in range(len(levels) // 2) if levels[i] < levels[-1 - i]
    ]
    for index, (lower_level, upper_level) in enumerate(band_pairs):
        lower_values = [_quantile(p, lower_level) for p in points]
        upper_values = [_quantile(p, upper_level) for p in points]
        axes.fill_between(
            xs,
            lower_values,
            upper_values,
            color=_FORECAST,
            alpha=0.16 + 0.12 * index,
            linewidth=0,
            label=f"{lower_level:.0%}–{upper_level:.0%} quantile band",
            zorder=2,
        )
    if points:
        interval_label = "Calibrated interval"
        if validation_coverage > 0:
            interval_label += f" (validation coverage {validation_coverage:.0%})"
        axes.plot(xs, [p.lower for p in points], color=_FORECAST, linestyle="--", linewidth=1)
        axes.plot(
            xs,
            [p.upper for p in points],
            color=_FORECAST,
            linestyle="--",
            linewidth=1,
            label=interval_label,
        )
        axes.plot(
            xs,
            [p.point for p in points],
            color=_FORECAST,
            linewidth=2.0,
            label="Point forecast",
            zorder=5,
        )
        axes.axvline(xs[0], color=_MUTED, linewidth=0.8, zorder=1)

    span = high - low
    axes.set_ylim(low - 0.02 * span, high + 0.02 * span)
    direction = _SCORE_DIRECTION.get(forecast.instrument, "")
    axes.set_ylabel(f"{label} score{direction}", color=_INK, fontsize=9)
    axes.set_title(f"{label}: observed and forecast", loc="left", fontsize=10.5, color=_INK)
    _date_axis(axes)
    handles, _labels = axes.get_legend_handles_labels()
    if forecast.risk_periods:
        handles.append(Patch(color=_RISK_SHADE, alpha=0.12, label="Risk period"))
    axes.legend(
        handles=handles,
        loc="upper left",
        fontsize=7.5,
        ncols=3,
        facecolor="white",
        edgecolor="none",
        framealpha=0.9,
    )
    return _render(figure, _forecast_alt(label, forecast, points, observed))


def _quantile(point: forecasting_pb2.ForecastPoint, level: float) -> float:
    for quantile in point.quantiles:
        if math.isclose(quantile.level, level):
            return quantile.value
    return math.nan


def _forecast_alt(
    label: str,
    forecast: forecasting_pb2.InstrumentForecast,
    points: Sequence[forecasting_pb2.ForecastPoint],
    observed: Sequence[tuple[datetime, float]],
) -> str:
    parts = [f"Fan chart of {label}."]
    if observed:
        parts.append(
            f"{len(observed)} observed scores from {_fmt_day(observed[0][0])} to "
            f"{_fmt_day(observed[-1][0])}, last {observed[-1][1]:g}."
        )
    if points:
        last = points[-1]
        parts.append(
            f"{len(points)}-day forecast: point forecast {points[0].point:.1f} on day 1 and "
            f"{last.point:.1f} on day {last.horizon_day}, calibrated interval "
            f"{last.lower:.1f} to {last.upper:.1f} on the last day."
        )
    thresholds = CLINICAL_THRESHOLDS.get(forecast.instrument, ())
    if thresholds:
        parts.append("Threshold lines at " + ", ".join(t for _, t in thresholds) + ".")
    for period in forecast.risk_periods:
        parts.append(
            f"Risk period shaded from {_fmt_day(to_datetime(period.start_date))} to "
            f"{_fmt_day(to_datetime(period.end_date))} ({period.threshold_label}, "
            f"peak probability {period.peak_probability:.0%})."
        )
    return " ".join(parts)


def correlation_chart(
    correlations: Sequence[biometric_pb2.LaggedCorrelation],
    key_indicators: Sequence[biometric_pb2.KeyIndicator],
) -> RenderedPlot:
    """Heatmap of the best lagged r per metric x indicator (significant pairs
    starred) beside the r-by-lag profiles of the key indicators."""
    metrics = sorted({c.metric for c in correlations})
    indicators = sorted({c.indicator for c in correlations})
    best = {(c.metric, c.indicator): c for c in correlations}

    width, height = 10.5, max(3.2, 0.55 * len(metrics) + 1.8)
    figure = _new_figure(width, height)
    # Two grids so the colour bar's tick labels never run into the profile axes.
    vertical = {"top": 1 - 0.35 / height, "bottom": 0.55 / height}
    left_grid = figure.add_gridspec(
        1, 2, left=1.15 / width, right=0.46, width_ratios=[1.0, 0.05], wspace=0.05, **vertical
    )
    heat_axes = figure.add_subplot(left_grid[0, 0])
    colourbar_axes = figure.add_subplot(left_grid[0, 1])
    profile_axes = figure.add_subplot(
        figure.add_gridspec(1, 1, left=0.585, right=1 - 0.2 / width, **vertical)[0, 0]
    )
    grid = [
        [best[(m, i)].pearson_r if (m, i) in best else math.nan for i in indicators]
        for m in metrics
    ]
    image = heat_axes.imshow(grid, cmap="RdBu_r", vmin=-1.0, vmax=1.0, aspect="auto")
    heat_axes.set_xticks(range(len(indicators)), [instrument_label(i) for i in indicators])
    heat_axes.set_yticks(range(len(metrics)), [metric_label(m) for m in metrics])
    heat_axes.tick_params(labelsize=8.5, colors=_INK, length=0)
    for row, metric in enumerate(metrics):
        for column, indicator in enumerate(indicators):
            pair = best.get((metric, indicator))
            if pair is None:
                heat_axes.text(column, row, "no data", ha="center", va="center", fontsize=7)
                continue
            star = "*" if pair.significant else ""
            colour = "white" if abs(pair.pearson_r) > 0.55 else _INK
            heat_axes.text(
                column,
                row,
                f"r = {pair.pearson_r:+.2f}{star}\nlead {pair.lag_days} d",
                ha="center",
                va="center",
                fontsize=7.5,
                color=colour,
            )
    for side in heat_axes.spines.values():
        side.set_visible(False)
    heat_axes.set_title("Strongest lagged r (* significant)", loc="left", fontsize=10, color=_INK)
    colourbar = figure.colorbar(image, cax=colourbar_axes)
    colourbar.ax.tick_params(labelsize=7.5)

    _style_axes(profile_axes)
    profiled = _profiled_pairs(correlations, key_indicators)
    for pair in profiled:
        lags = [p.lag_days for p in pair.profile]
        values = [p.pearson_r for p in pair.profile]
        (line,) = profile_axes.plot(
            lags,
            values,
            linewidth=1.6,
            marker="o",
            markersize=3,
            label=f"{metric_label(pair.metric)} → {instrument_label(pair.indicator)}",
        )
        profile_axes.plot(
            [pair.lag_days],
            [pair.pearson_r],
            marker="*" if pair.significant else "o",
            markersize=13 if pair.significant else 7,
            color=line.get_color(),
            markeredgecolor=_INK,
            linestyle="none",
        )
    profile_axes.axhline(0.0, color=_MUTED, linewidth=0.8)
    profile_axes.set_ylim(-1.0, 1.0)
    profile_axes.set_xlabel("Days the biometric leads the indicator", fontsize=8.5, color=_INK)
    profile_axes.set_ylabel("Pearson r", fontsize=8.5, color=_INK)
    profile_axes.set_title(
        "Lag profiles of key indicators (★ best lag, significant)",
        loc="left",
        fontsize=10,
        color=_INK,
    )
    if profiled:
        profile_axes.legend(fontsize=7.5, frameon=False, loc="lower left")
    return _render(figure, _correlation_alt(correlations, profiled))


def _profiled_pairs(
    correlations: Sequence[biometric_pb2.LaggedCorrelation],
    key_indicators: Sequence[biometric_pb2.KeyIndicator],
) -> list[biometric_pb2.LaggedCorrelation]:
    """Key indicators first; without any, the strongest significant pairs, so
    the right panel is never empty when there is something to show."""
    by_pair = {(c.metric, c.indicator): c for c in correlations if c.profile}
    chosen = [
        by_pair[(k.metric, k.indicator)]
        for k in sorted(key_indicators, key=lambda k: k.rank)
        if (k.metric, k.indicator) in by_pair
    ]
    if not chosen:
        ranked = sorted(by_pair.values(), key=lambda c: (not c.significant, -abs(c.pearson_r)))
        chosen = ranked[:2]
    return chosen[:4]


def _correlation_alt(
    correlations: Sequence[biometric_pb2.LaggedCorrelation],
    profiled: Sequence[biometric_pb2.LaggedCorrelation],
) -> str:
    significant = [c for c in correlations if c.significant]
    parts = [
        f"Heatmap of the strongest lagged correlation for {len(correlations)} "
        f"biometric and indicator pairs; {len(significant)} significant after FDR correction."
    ]
    for pair in profiled:
        parts.append(
            f"Lag profile of {metric_label(pair.metric)} against "
            f"{instrument_label(pair.indicator)}: r {pair.pearson_r:+.2f} with a "
            f"{pair.lag_days}-day lead"
            + (" (significant)." if pair.significant else " (not significant).")
        )
    return " ".join(parts)


def anomaly_timeline(
    anomalies: biometric_pb2.DetectAnomaliesResponse,
    biometrics: Sequence[common_pb2.BiometricSample],
) -> RenderedPlot:
    """Anomalous days per metric coloured by severity; days with data as a thin
    bar, missing-data spans hatched."""
    data_days: dict[int, set[datetime]] = {}
    for sample in biometrics:
        day = _day(to_datetime(sample.measured_at))
        data_days.setdefault(sample.metric, set()).add(day)

    metrics: set[int] = set(data_days)
    metrics.update(span.metric for span in anomalies.missing)
    metrics.update(d.metric for a in anomalies.anomalies for d in a.deviations)
    rows = [metric_label(m) for m in sorted(metrics)]
    row_of = {m: index for index, m in enumerate(sorted(metrics))}
    if any(not a.deviations for a in anomalies.anomalies):
        row_of[-1] = len(rows)
        rows.append(_MULTIVARIATE_ROW)

    # Room on the left for the metric names, below for the legend.
    figure = _new_figure(9.6, max(2.8, 0.48 * len(rows) + 1.6), left=1.9, bottom=0.95)
    axes = figure.add_subplot()
    _style_axes(axes)
    axes.grid(False, axis="y")

    for metric, days in data_days.items():
        axes.broken_barh(
            [(mdates.date2num(d), 1.0) for d in sorted(days)],
            (row_of[metric] - 0.07, 0.14),
            facecolors="#bcccdc",
            linewidth=0,
        )
    for span in anomalies.missing:
        start = mdates.date2num(_day(to_datetime(span.start_date)))
        length = max(span.days, 1)
        axes.broken_barh(
            [(start, float(length))],
            (row_of[span.metric] - 0.3, 0.6),
            facecolors="none",
            edgecolors=_MUTED,
            hatch="////",
            linewidth=0.8,
        )

    severities_seen: set[int] = set()
    for anomaly in anomalies.anomalies:
        day = mdates.date2num(_day(to_datetime(anomaly.date)) + timedelta(hours=12))
        colour, marker = _SEVERITY_STYLE.get(anomaly.severity, _SEVERITY_STYLE[0])
        severities_seen.add(anomaly.severity)
        targets = [row_of[d.metric] for d in anomaly.deviations] or [row_of[-1]]
        axes.scatter(
            [day] * len(targets),
            targets,
            s=70,
            c=colour,
            marker=marker,
            edgecolors=_INK,
            linewidths=0.6,
            zorder=5,
        )

    axes.set_yticks(range(len(rows)), rows)
    axes.set_ylim(len(rows) - 0.5, -0.5)
    _date_axis(axes)
    axes.set_title("Biometric anomalies and data gaps", loc="left", fontsize=10.5, color=_INK)
    handles: list[Artist] = [
        axes.scatter(
            [], [], s=60, c=colour, marker=marker, edgecolors=_INK, label=SEVERITY_LABELS[level]
        )
        for level, (colour, marker) in sorted(_SEVERITY_STYLE.items())
        if level in severities_seen
    ]
    handles.append(Patch(facecolor="#bcccdc", label="Days with data"))
    handles.append(Patch(facecolor="white", edgecolor=_MUTED, hatch="////", label="Missing data"))
    axes.legend(
        handles=handles,
        fontsize=7.5,
        frameon=False,
        ncols=len(handles),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
    )
    return _render(figure, _anomaly_alt(anomalies))


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _anomaly_alt(anomalies: biometric_pb2.DetectAnomaliesResponse) -> str:
    counts: dict[str, int] = {}
    for anomaly in anomalies.anomalies:
        name = SEVERITY_LABELS.get(anomaly.severity, "Unrated").lower()
        counts[name] = counts.get(name, 0) + 1
    summary = ", ".join(f"{count} {name}" for name, count in counts.items()) or "none"
    parts = [f"Timeline of {len(anomalies.anomalies)} anomalous days by metric ({summary})."]
    for anomaly in anomalies.anomalies:
        involved = ", ".join(metric_label(d.metric) for d in anomaly.deviations) or (
            "several metrics together"
        )
        parts.append(
            f"{_fmt_day(to_datetime(anomaly.date))}: "
            f"{SEVERITY_LABELS.get(anomaly.severity, 'Unrated').lower()}, {involved}."
        )
    for span in anomalies.missing:
        parts.append(
            f"No {metric_label(span.metric)} data for {span.days} days from "
            f"{_fmt_day(to_datetime(span.start_date))}, shown hatched."
        )
    return " ".join(parts)


def risk_timeline(timeline: Sequence[twin_pb2.ProgressPoint]) -> RenderedPlot:
    """Overall risk level at each stored snapshot, as a step line."""
    points = sorted(timeline, key=lambda p: (p.generated_at.seconds, p.generated_at.nanos))
    moments = [to_datetime(p.generated_at) for p in points]
    levels = [int(p.overall_risk) for p in points]

    figure = _new_figure(9.6, 2.6, left=1.0)
    axes = figure.add_subplot()
    _style_axes(axes)
    xs = [_x(m) for m in moments]
    axes.step(xs, levels, where="post", color=_FORECAST, linewidth=1.8)
    axes.scatter(xs, levels, color=_FORECAST, edgecolors=_INK, zorder=5, s=30)
    ticks = sorted(RISK_LABELS)
    axes.set_yticks(ticks, [RISK_LABELS[t] for t in ticks])
    axes.set_ylim(-0.3, max(ticks) + 0.3)
    _date_axis(axes)
    axes.set_title("Overall risk at each snapshot", loc="left", fontsize=10.5, color=_INK)

    described = ", ".join(
        f"{_fmt_day(m)} {RISK_LABELS.get(level, 'Not assessed').lower()}"
        for m, level in zip(moments, levels, strict=True)
    )
    alt = f"Step chart of overall risk over {len(points)} snapshots: {described}."
    return _render(figure, alt)
