"""PNG curves of a training run (``agentgym plot RUN_DIR``).

Each panel draws the logged values faintly and a moving average over
:data:`SMOOTH_WINDOW` iterations on top (success rates from 16 tasks x 8 rollouts are
noisy). The success panel also marks the held-out test results of ``summary.json``:
before RL at the first iteration, after RL at the last, with their 95% intervals. A
series whose values are all float noise (``|x| < 1e-6``, e.g. PPO's KL estimate when
one update per batch leaves the ratio at 1, or a KL loss that is off) is left out of
the panels in :data:`NOISY` (a success rate of 0 is a result, not noise), and a panel left
with nothing is not drawn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentgym.trainers.tracking import read_metrics

#: (file name, title, metric names) of each plot.
PANELS = (
    ("success", "Success rate", ("train/success", "val/success")),
    ("reward", "Episode reward", ("train/reward",)),
    ("tool_calls", "Tool calls per episode", ("train/tool_calls", "val/tool_calls")),
    ("invalid", "Invalid-action rate", ("train/invalid_action_rate",)),
    ("entropy", "Policy entropy", ("actor/entropy",)),
    ("kl", "KL (PPO approx. / KL loss)", ("actor/ppo_kl", "actor/kl_loss")),
    ("grad_norm", "Gradient norm", ("actor/grad_norm",)),
    ("advantages", "Advantage statistics", ("credit/adv_std", "credit/adv_abs_mean")),
)
#: Iterations in the moving average drawn over each curve.
SMOOTH_WINDOW = 10
#: Panels whose all-tiny series are float noise and left out.
NOISY = frozenset({"kl", "advantages", "grad_norm", "entropy"})
#: Values this small are float noise, not a signal.
NOISE = 1e-6
Points = list[tuple[int, float]]


def smooth(values: list[float], window: int = SMOOTH_WINDOW) -> list[float]:
    """Trailing moving average: point i is the mean of the last ``window`` values up to
    i (fewer at the start)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def panel_series(
    records: list[dict[str, Any]], keys: tuple[str, ...], drop_noise: bool = True
) -> dict[str, Points]:
    """The points of each metric in ``keys`` that has any; with ``drop_noise``, series whose
    values are all float noise are left out."""
    series = {
        key: [(int(r["iteration"]), float(r[key])) for r in records if r.get(key) is not None]
        for key in keys
    }
    return {
        key: points
        for key, points in series.items()
        if points and (not drop_noise or max(abs(y) for _, y in points) >= NOISE)
    }


def _test_marks(run_dir: Path, records: list[dict[str, Any]]) -> list[tuple[str, int, dict]]:
    """(label, iteration, metrics) of the held-out test before and after RL."""
    path = run_dir / "summary.json"
    if not path.exists():
        return []
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    last = max((int(r["iteration"]) for r in records), default=0)
    marks = []
    for key, label, at in (("test_before", "before RL", 0), ("test_after", "after RL", last)):
        metrics = summary.get(key)
        if isinstance(metrics, dict) and "test/success" in metrics:
            marks.append((label, int(summary.get("iterations", last)) if at else 0, metrics))
    return marks


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> list[Path]:
    """Write one PNG per panel that has data, plus ``overview.png``; return the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    if not (run_dir / "metrics.jsonl").exists():
        raise FileNotFoundError(f"{run_dir} has no metrics.jsonl; is it a training run directory?")
    records = [r for r in read_metrics(run_dir) if "iteration" in r]
    out_dir = Path(out) if out else run_dir / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    marks = _test_marks(run_dir, records)
    panels = []
    for name, title, keys in PANELS:
        series = panel_series(records, keys, drop_noise=name in NOISY)
        if series:
            panels.append((name, title, series))
    paths = []
    for name, title, series in panels:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        _draw(ax, title, series, marks if name == "success" else [])
        path = out_dir / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    if panels:
        cols = 3
        rows = -(-len(panels) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(15, 3.6 * rows), squeeze=False)
        for ax, (name, title, series) in zip(axes.flat, panels, strict=False):
            _draw(ax, title, series, marks if name == "success" else [])
        for ax in list(axes.flat)[len(panels) :]:
            ax.axis("off")
        fig.tight_layout()
        path = out_dir / "overview.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def _draw(ax: Any, title: str, series: dict[str, Points], marks: list) -> None:
    for key, points in series.items():
        xs, ys = zip(*points, strict=True)
        many = len(xs) > SMOOTH_WINDOW
        line = ax.plot(xs, ys, marker="." if len(xs) < 60 else None, alpha=0.3 if many else 1.0)
        if many:
            ax.plot(
                xs,
                smooth(list(ys)),
                color=line[0].get_color(),
                label=f"{key} ({SMOOTH_WINDOW}-it. mean)",
            )
        else:
            line[0].set_label(key)
    for (label, at, metrics), color in zip(marks, ("#C44E52", "#55A868"), strict=False):
        value = metrics["test/success"]
        low, high = metrics.get("test/success_ci_low", value), metrics.get("test/success_ci_high")
        high = value if high is None else high
        ax.errorbar(
            [at],
            [value],
            yerr=[[max(0.0, value - low)], [max(0.0, high - value)]],
            fmt="D",
            color=color,
            capsize=4,
            label=f"test {label}: {value:.0%}",
        )
    ax.set_title(title)
    ax.set_xlabel("iteration")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
