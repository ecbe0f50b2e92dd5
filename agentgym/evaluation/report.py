"""The PNG of an evaluation: success rate by task type with 95% intervals."""

from __future__ import annotations

import textwrap
from pathlib import Path

from agentgym.evaluation.metrics import task_types

__all__ = ["plot_success_by_type"]


def plot_success_by_type(
    metrics: dict[str, float], path: str | Path, title: str = "", prefix: str = ""
) -> Path:
    """Bar chart of success per task type (and "all") with interval error bars.

    ``metrics`` is a :func:`~agentgym.evaluation.metrics.summarize` result with ``prefix``.
    Without task types there is one bar, "all". Uses matplotlib's Agg backend (no display).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = [*task_types(metrics, prefix), "all"]
    keys = [f"{prefix}type/{name}/" for name in names[:-1]] + [prefix]
    values = [metrics[k + "success"] for k in keys]
    lows = [max(0.0, v - metrics[k + "success_ci_low"]) for k, v in zip(keys, values, strict=True)]
    highs = [
        max(0.0, metrics[k + "success_ci_high"] - v) for k, v in zip(keys, values, strict=True)
    ]
    counts = [int(metrics.get(f"{k}episodes", 0)) for k in keys]
    fig = Figure(figsize=(max(4.0, 1.1 * len(names) + 2.0), 4.0), layout="constrained")
    FigureCanvasAgg(fig)  # render with Agg; no display, no global backend switch
    ax = fig.add_subplot()
    colors = ["#4C72B0"] * (len(names) - 1) + ["#55A868"]
    ax.bar(names, values, width=0.6, yerr=[lows, highs], capsize=6, color=colors, edgecolor="black")
    for i, (value, up, count) in enumerate(zip(values, highs, counts, strict=True)):
        ax.text(
            i, value + up + 0.02, f"{value:.0%}\nn={count}", ha="center", va="bottom", fontsize=8
        )
    ax.set_xlim(-0.7, len(names) - 0.3)
    ax.set_ylim(0.0, 1.15)
    ax.set_ylabel("success rate (95% CI)")
    # wrapped to the figure's width (about 14 characters per inch at this size)
    ax.set_title(textwrap.fill(title, width=int(fig.get_figwidth() * 14)), fontsize=9)
    ax.tick_params(axis="x", rotation=30 if len(names) > 4 else 0)
    ax.grid(axis="y", alpha=0.3)
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path
