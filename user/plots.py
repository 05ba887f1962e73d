"""The plots of a training run: ``training_curves.png`` from the run's CSVs, and strategy-latent scatters.

Plots use matplotlib's object API (``Figure`` rendered by Agg, never pyplot), so nothing here
changes the global backend or leaks open figures; PNGs are written atomically (temp file in the
same folder, then ``os.replace``). Missing or unreadable CSVs (a run may be writing them) give a
"no data yet" panel instead of an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from environment.agents import agent_names


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig: Figure, path: Path) -> Path:
    """Write atomically: a temp file in the same folder, then os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _colors(names: list[str]) -> dict[str, Any]:
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def plot_latent_scatter(points2d: np.ndarray, labels: list[str], path: Path | str, title: str) -> Path:
    """Scatter of 2-D points coloured by opponent label, with legend and axis labels; writes a PNG."""
    pts = np.asarray(points2d, dtype=np.float64)
    lab = np.asarray(labels)
    fig = _new_figure((7.5, 6))
    ax = fig.add_subplot()
    classes = list(dict.fromkeys(labels))
    colors = _colors(classes)
    for c in classes:
        sel = pts[lab == c]
        ax.scatter(sel[:, 0], sel[:, 1], s=14, alpha=0.7, color=colors[c], label=f"{c} ({len(sel)})")
    ax.set(title=title, xlabel="component 1", ylabel="component 2")
    ax.grid(alpha=0.3)
    ax.legend(title="opponent", fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return _save_png(fig, Path(path))


# ==================================================================================
# Training curves
# ==================================================================================
def _read_csv(path: Path, **kwargs):
    """A CSV as a DataFrame, or None if missing, empty or unreadable (a run may be writing it)."""
    if not path.is_file():
        return None
    try:
        df = pd.read_csv(path, on_bad_lines="skip", **kwargs)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError):
        return None
    return df if len(df) else None


def _column(df, *candidates: str) -> str | None:
    return next((c for c in candidates if df is not None and c in df.columns), None)


def _numeric_frame(df, cols: list[str]):
    df = df.copy()
    for c in cols:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df.dropna(subset=cols)


def _no_data(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes, fontsize=13, color="grey")


def _load_monitor(run_dir: Path):
    frames = [_read_csv(p, skiprows=1) for p in [run_dir / "monitor.csv", *sorted(run_dir.glob("*.monitor.csv"))]]
    frames = [f for f in frames if f is not None and {"r", "l"} <= set(f.columns)]
    if not frames:
        return None
    df = pd.concat(frames, ignore_index=True)
    cols = ["r", "l"] + [c for c in ("t", "step") if c in df.columns]
    df = _numeric_frame(df, cols)
    return df.sort_values("t", kind="stable") if "t" in df.columns else df


def _panel_reward(ax, run_dir: Path) -> None:
    title, xl, yl = "Episode reward", "environment steps", "episode return"
    df = _load_monitor(run_dir)
    if df is None or not len(df):
        return _no_data(ax, title, xl, yl)
    # x in agent steps like the other panels: monitor.csv's "step" (the run's step when the
    # match ended); "l" counts frames, action_repeat times more than steps.
    steps = df["step"].to_numpy() if "step" in df.columns else df["l"].cumsum().to_numpy()
    window = int(min(100, max(1, len(df) // 20)))
    ax.plot(steps, df["r"].to_numpy(), color="tab:blue", alpha=0.2, lw=0.8, label="episode")
    ax.plot(
        steps,
        df["r"].rolling(window, min_periods=1).mean().to_numpy(),
        color="tab:blue",
        lw=2,
        label=f"rolling mean ({window} episodes)",
    )
    ax.set(title=f"{title} ({len(df)} episodes)", xlabel=xl, ylabel=yl)
    ax.legend(fontsize=8, loc="best")


def _panel_per_opponent(ax, df, col: str, title: str, ylabel: str, target: float, clip: float | None) -> None:
    if df is None or col not in df.columns:
        return _no_data(ax, title, "environment steps", ylabel)
    df = _numeric_frame(df, ["step", col])
    if not len(df):
        return _no_data(ax, title, "environment steps", ylabel)
    opponents = sorted(df["opponent"].astype(str).unique())
    colors = _colors(opponents)
    for opp in opponents:
        sub = df[df["opponent"].astype(str) == opp].groupby("step")[col].mean()
        y = sub.to_numpy() if clip is None else np.minimum(sub.to_numpy(), clip)
        ax.plot(sub.index.to_numpy(), y, marker="o", ms=3, lw=1.5, color=colors[opp], label=opp)
    ax.axhline(target, color="black", ls="--", lw=1, label=f"target {target:g}")
    ax.set(title=title, xlabel="environment steps", ylabel=ylabel)
    ax.legend(fontsize=7, ncol=2, loc="best")


def _panel_entropy(ax, run_dir: Path) -> None:
    title, xl = "Policy entropy", "environment steps"
    df = _read_csv(run_dir / "metrics.csv")
    step = _column(df, "step", "time/total_timesteps", "timesteps")
    ent = _column(df, "entropy", "train/entropy")
    loss = _column(df, "entropy_loss", "train/entropy_loss")
    if step is None or (ent is None and loss is None):
        return _no_data(ax, title, xl, "entropy")
    col = ent or loss
    df = _numeric_frame(df, [step, col]).sort_values(step)
    if not len(df):
        return _no_data(ax, title, xl, "entropy")
    y = df[col].to_numpy() if ent else -df[col].to_numpy()
    ax.plot(df[step].to_numpy(), y, color="tab:purple", lw=1.5, label="entropy" if ent else "−entropy_loss")
    ax.ticklabel_format(axis="y", useOffset=False)  # plain values, not "1e-5 + 6.93"
    ax.set(title=title, xlabel=xl, ylabel="entropy (nats)")
    ax.legend(fontsize=8, loc="best")


def _panel_elo(ax, run_dir: Path) -> None:
    title, xl, yl = "Elo rating", "environment steps", "rating"
    df = _read_csv(run_dir / "ratings.csv")
    if df is None or not {"step", "name", "rating"} <= set(df.columns):
        return _no_data(ax, title, xl, yl)
    df = _numeric_frame(df, ["step", "rating"])
    if not len(df):
        return _no_data(ax, title, xl, yl)
    df["name"] = df["name"].astype(str)
    bots = set(agent_names())
    bot_names = sorted(set(df["name"]) & bots)
    learners = sorted(set(df["name"]) - bots, key=lambda n: df.loc[df["name"] == n, "step"].min())
    colors = _colors(bot_names)
    for name in bot_names:
        sub = df[df["name"] == name].sort_values("step")
        ax.plot(sub["step"].to_numpy(), sub["rating"].to_numpy(), lw=1.2, marker=".", color=colors[name], label=name)
    shades = colormaps["viridis"](np.linspace(0.1, 0.9, max(len(learners), 1)))
    for i, name in enumerate(learners):
        sub = df[df["name"] == name].sort_values("step")
        label = name if len(learners) <= 5 else None
        if len(learners) > 5 and i == len(learners) - 1:
            label = f"{len(learners)} learner snapshots (old→new)"
        ax.plot(
            sub["step"].to_numpy(), sub["rating"].to_numpy(), lw=2, ls="--", marker="o", color=shades[i], label=label
        )
    ax.set(title=title, xlabel=xl, ylabel=yl)
    ax.legend(fontsize=7, ncol=2, loc="best")


def training_curves_figure(run_dir: Path | str) -> Figure:
    """The 5-panel figure behind :func:`plot_training_curves` (not saved)."""
    run_dir = Path(run_dir)
    fig = _new_figure((15, 13))
    grid = fig.add_gridspec(3, 2)
    axes = [fig.add_subplot(grid[i // 2, i % 2]) for i in range(5)]
    _panel_reward(axes[0], run_dir)
    ev = _read_csv(run_dir / "evaluation_results.csv")
    if ev is not None and not {"step", "opponent"} <= set(ev.columns):
        ev = None
    _panel_per_opponent(axes[1], ev, "win_rate", "Win rate per opponent", "win rate", 0.70, None)
    axes[1].set_ylim(-0.03, 1.03)
    _panel_per_opponent(
        axes[2],
        ev,
        "damage_ratio",
        "Damage ratio per opponent (dealt / taken)",
        "damage ratio (clipped at 10)",
        2.0,
        10.0,
    )
    _panel_entropy(axes[3], run_dir)
    _panel_elo(axes[4], run_dir)
    for ax in axes:
        ax.grid(alpha=0.3)
        if not ax.texts:  # panels with data: steps as 250k, 1M, ...
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        if ax.get_legend() is not None:
            ax.get_legend().get_frame().set_alpha(0.75)
    fig.suptitle(f"Training curves: {run_dir.name}", fontsize=14)
    fig.tight_layout()
    return fig


def plot_training_curves(run_dir: Path | str, out_path: Path | str | None = None) -> Path:
    """Write ``training_curves.png`` (default ``run_dir/training_curves.png``) from the run's CSVs.

    Panels: smoothed episode reward (``monitor.csv``, SB3 Monitor format, x = the agent step
    at which each match ended), win rate and damage ratio per opponent (``evaluation_results.csv``), policy
    entropy (``metrics.csv``: ``entropy``, or ``entropy_loss`` negated) and Elo per name
    (``ratings.csv``). Missing or unreadable CSVs give a "no data yet" panel.
    """
    run_dir = Path(run_dir)
    out = Path(out_path) if out_path is not None else run_dir / "training_curves.png"
    return _save_png(training_curves_figure(run_dir), out)
