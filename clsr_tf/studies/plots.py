"""Figures of the study tables, drawn on matplotlib's Agg canvas (no pyplot state).

Each ``plot_<study>(table)`` returns a ``matplotlib.figure.Figure``; ``PLOTS`` maps the study
names of ``python -m clsr_tf.study`` to them.
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

METRICS = ("auc", "gauc")


def _figure(n_panels=1, width=5.0, height=3.6):
    fig = Figure(figsize=(width * n_panels, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, n_panels, squeeze=False)[0]


def _bars(ax, labels, series, ylabel, horizontal=False):
    """Grouped bars: one group per label, one bar per series (name -> values)."""
    positions = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        offset = positions + (i - (len(series) - 1) / 2) * width
        values = np.asarray(values, dtype=float)
        if horizontal:
            ax.barh(offset, values, height=width, label=name)
        else:
            ax.bar(offset, values, width=width, label=name)
    if horizontal:
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
    else:
        ax.set_xticks(positions, labels, rotation=20 if len(labels) > 4 else 0)
        ax.set_ylabel(ylabel)
        ax.margins(y=0.25)  # headroom for the legend
    ax.legend(fontsize="small")


def _zoom(ax, values, horizontal=False):
    """Limit the value axis to the data range (metrics differ in the second decimal)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size:
        low, high = values.min(), values.max()
        pad = max(0.1 * (high - low), 0.01)
        (ax.set_xlim if horizontal else ax.set_ylim)(max(low - pad, 0), high + 3 * pad)


def _metric_bars(table, label_column, title, horizontal=False):
    fig, (ax,) = _figure(width=7 if horizontal else 5,
                         height=max(3.6, 0.3 * len(table)) if horizontal else 3.6)
    series = {m: table[m] for m in METRICS if m in table}
    _bars(ax, table[label_column].astype(str).tolist(), series, "test metric", horizontal)
    _zoom(ax, np.concatenate([np.asarray(v, float) for v in series.values()]), horizontal)
    ax.set_title(title)
    return fig


def plot_shuffle(table):
    """AUC / GAUC on the original and shuffled histories (paper Table 4)."""
    return _metric_bars(table, "protocol", "shuffled histories")


def plot_truncate(table):
    """AUC / GAUC against the number of kept recent items (paper Figure 5a)."""
    fig, (ax,) = _figure()
    original = table[table["protocol"] == "original"]
    curve = table[table["protocol"] == "truncate"].sort_values("k")
    for i, metric in enumerate(m for m in METRICS if m in table):
        color = f"C{i}"
        ax.plot(curve["k"].astype(float), curve[metric], "o-", color=color,
                label=f"{metric}, last k items")
        if len(original):
            ax.axhline(original[metric].iloc[0], color=color, linestyle="--",
                       label=f"{metric}, whole history")
    ax.set_xlabel("k (kept recent history items)")
    ax.set_ylabel("test metric")
    ax.set_title("truncated histories")
    ax.legend(fontsize="small")
    return fig


def plot_one_side(table):
    """AUC / GAUC of the adaptive fusion, long-only and short-only (Figures 3, 5b)."""
    return _metric_bars(table, "interest", "one-side interests")


def plot_fusion_weight(table):
    """Mean alpha and AUC / GAUC per behaviour type (paper Table 3)."""
    fig, (left, right) = _figure(2)
    labels = table.iloc[:, 0].astype(str).tolist()
    _bars(left, labels, {"mean alpha (positives)": table["mean_alpha"]}, "alpha")
    left.set_title(f"fusion weight by {table.columns[0]}")
    series = {m: table[m] for m in METRICS if m in table}
    _bars(right, labels, series, "test metric")
    _zoom(right, np.concatenate([np.asarray(v, float) for v in series.values()]))
    right.set_title(f"accuracy by {table.columns[0]}")
    return fig


def plot_ablations(table):
    """AUC / GAUC of every finished ablation row (Figures 6-7, Tables 6-10).

    Failed rows have no metrics (the table gives their errors) and are left out; with none
    finished, the figure says so.
    """
    finished = table[table["status"] == "ok"]
    if not len(finished) or not any(m in finished for m in METRICS):
        fig, (ax,) = _figure()
        ax.text(0.5, 0.5, "no ablation row finished:\nthe table gives each row's error",
                ha="center", va="center")
        ax.set_axis_off()
        return fig
    return _metric_bars(finished, "name", "ablations", horizontal=True)


def plot_ground_truth(table):
    """Mean alpha per source and the probe correlations of each model."""
    fig, (left, right) = _figure(2)
    labels = table["model"].astype(str).tolist()
    _bars(left, labels, {"long-term positives": table["mean_alpha_long"],
                         "short-term positives": table["mean_alpha_short"]}, "mean alpha")
    left.set_title("fusion weight by true source")
    probes = ("long_from_u_l", "long_from_u_s", "short_from_u_l", "short_from_u_s")
    _bars(right, labels, {p: table[p] for p in probes}, "probe correlation")
    right.set_title("true interests recovered from u_l / u_s")
    return fig


PLOTS = {"shuffle": plot_shuffle, "truncate": plot_truncate, "one_side": plot_one_side,
         "fusion_weight": plot_fusion_weight, "ablations": plot_ablations,
         "ground_truth": plot_ground_truth}


def plot_valid_curves(histories, metric="gauc"):
    """Validation metric per epoch of each model (mean over seeds, each seed faint).

    Args:
        histories (dict): model -> list (one per seed) of training histories, each a list
            of ``{"epoch": int, "valid": {metric: value}, ...}``.
        metric (str): The validation metric.

    Returns:
        matplotlib.figure.Figure: The figure.
    """
    fig, (ax,) = _figure(width=6.5, height=4.0)
    for i, (name, runs) in enumerate(histories.items()):
        color = f"C{i % 10}"
        curves = [{h["epoch"]: h["valid"][metric] for h in run} for run in runs if run]
        if not curves:
            continue
        for curve in curves:
            ax.plot(list(curve), list(curve.values()), color=color, alpha=0.25, lw=1)
        epochs = sorted(set().union(*curves))
        mean = [np.mean([c[e] for c in curves if e in c]) for e in epochs]
        ax.plot(epochs, mean, color=color, lw=2, marker="o", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"valid {metric}")
    ax.legend(fontsize="small", ncol=2)
    ax.set_title(f"valid {metric} per epoch (mean over seeds; seeds faint)")
    return fig

