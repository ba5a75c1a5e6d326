"""Helpers shared by the example scripts: arguments, the digits split, tables, plots.

The MLPs come from ``pydl.train.build_mlp``, the builder the command line uses too.
"""
import argparse
import os
import time

import numpy as np

from pydl.datasets import load_digits
from pydl.model_selection import train_test_split


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", default=os.path.join("runs", "examples"), help="directory for the PNG")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="fewer epochs / repeats (a smoke run)")
    return p


def parse_seeded(p):
    """Add ``--seeds`` (default 3, 1 with --quick) to parser ``p``, parse, and return (args, seeds):
    the seeds are ``args.seed``, ``args.seed + 1``, ..."""
    p.add_argument("--seeds", type=int, default=None, help="seeds per row (default 3; 1 with --quick)")
    args = p.parse_args()
    return args, [args.seed + i for i in range(args.seeds or (1 if args.quick else 3))]


# ---------------------------------------------------------------- honest reporting
#: a spread is shown (table "±", error bars) only over at least this many seeds
MIN_SEEDS_FOR_STD = 3


def mean_std(values):
    """(mean, std) of per-seed values; std is None below MIN_SEEDS_FOR_STD seeds."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), (float(v.std(ddof=1)) if v.size >= MIN_SEEDS_FOR_STD else None)


def fmt_mean_std(values, fmt="{:.4f}"):
    """"m ± s (n seeds)" over >= 3 seeds, else "m (1 seed)": no spread from too few runs."""
    m, s = mean_std(values)
    n = len(values)
    if s is None:
        return f"{fmt.format(m)} ({n} seed{'s' if n > 1 else ''}, no std)"
    return f"{fmt.format(m)} ± {fmt.format(s)}"


def verdict(ok):
    """The table cell of a run against its stated target."""
    return "yes" if ok else "MISSED"


def report_targets(rows):
    """Print how many runs met their stated target; ``rows`` are (name, met or None)."""
    judged = [(name, ok) for name, ok in rows if ok is not None]
    missed = [name for name, ok in judged if not ok]
    print(f"targets: {len(judged) - len(missed)} of {len(judged)} met"
          + (f"; MISSED: {', '.join(missed)}" if missed else ""))


def zoomed(ax, axis="y"):
    """Mark a value axis that does not start at 0, in its label."""
    label = ax.get_ylabel() if axis == "y" else ax.get_xlabel()
    text = f"{label}\n(zoomed: axis does not start at 0)"
    ax.set_ylabel(text) if axis == "y" else ax.set_xlabel(text)


def legend_outside(ax, **kw):
    """The legend to the right of the axes, where it cannot cover a curve."""
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), **kw)


def digits_split(seed=0, test_size=0.25, n_train=None, images=False):
    """Digits scaled to [0, 1]; stratified train / test split; optionally only n_train training samples."""
    d = load_digits()
    x = (np.asarray(d.images if images else d.data, dtype=np.float32) / 16.0)
    y = np.asarray(d.target, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)
    if n_train is not None:
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    return x_tr, x_te, y_tr, y_te


def table(headers, rows, floatfmt="{:.4f}"):
    """Print a plain-text table; rows are sequences of str / int / float."""
    cells = [[c if isinstance(c, str) else (floatfmt.format(c) if isinstance(c, float) else str(c)) for c in r]
             for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def figure(ncols=1, nrows=1, size=(5.0, 4.0)):
    """A matplotlib Figure (no pyplot state); None when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        print("matplotlib is not installed: no plot written (pip install matplotlib)")
        return None
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows))
    FigureCanvasAgg(fig)
    return fig


def save(fig, out, name):
    if fig is None:
        return None
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")      # (keeps legends placed outside the axes)
    print(f"plot: {path}")
    return path


class Timer:
    """The wall time (``seconds``) and the process's CPU time (``cpu_seconds``) of a with-block."""

    def __enter__(self):
        self.t0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.cpu_seconds = time.process_time() - self.cpu0
