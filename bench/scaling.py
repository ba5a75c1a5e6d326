"""How cost grows: throughput of pydl, numpy and torch against problem size, batch size and threads.

    bench/run --scaling [--out DIR] [--rounds R]

Measured in one run, the libraries interleaved round by round (each sees the same machine load),
the best round kept. With one thread the clock is the calling thread's CPU time (every library
then computes on that thread; other processes' turns on the core do not count), with two wall time.
Sections (the builders are bench/'s own: bench_gemm, bench_train_step, bench_cnn):

    gemm-size    float32 C = A B, n = 16 ... 4096, GFLOP/s (pydl, numpy's OpenBLAS, torch)
    mlp-width    one Adam training step of a 64-W-W-10 MLP at batch 128, W = 32 ... 2048, samples/s
                 (pydl, the hand-written numpy loop, torch)
    mlp-batch    the digits MLP 64-128-64-10, batch 1 ... 1024, samples/s (pydl, numpy, torch)
    lenet-batch  LeNet-5 training step, batch 1 ... 1024, samples/s (pydl, torch)
    threads      gemm n=1024, the digits MLP at batch 256 and LeNet-5 at batch 256 with 1 and 2 threads
                 (both timed by wall clock here, so the ratio is the speed-up)

Each case checks pydl against numpy (GEMM) or computes the same step as in bench/ before timing.
Writes DIR/scaling.csv (one row per measurement), DIR/scaling.md (tables with ratios) and
DIR/scaling.png (one panel per section); DIR defaults to runs/scaling.
"""
import argparse
import csv
import datetime
import os
import platform
import sys
import time

import numpy as np

import pydl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cnn  # noqa: E402
import bench_gemm  # noqa: E402
import bench_train_step  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

GEMM_N = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
WIDTHS = [32, 64, 128, 256, 512, 1024, 2048]
BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
DIGITS = (64, 128, 64, 10)


def set_threads(n):
    pydl.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


def measure(fns, threads, rounds, budget=0.25, wall=False):
    """Best seconds per call of each callable in ``fns`` (dict), interleaved round by round.

    Each round times ``number`` calls of every callable, ``number`` chosen so a round takes about
    budget / rounds; rounds shrink (to 2) for calls longer than that, so the largest cases stay short.
    The clock: the thread's CPU time with one thread, else (or with ``wall``) wall time.
    """
    clock = time.thread_time if threads == 1 and not wall else time.perf_counter
    number, n_rounds = {}, rounds
    for key, fn in fns.items():
        fn()  # warm-up: scratch buffers, oneDNN primitives
        t0 = time.perf_counter()
        fn()
        t = max(time.perf_counter() - t0, 1e-7)
        number[key] = max(1, int(budget / rounds / t))
        n_rounds = min(n_rounds, max(2, int(budget / t)))
    best = {key: float("inf") for key in fns}
    for _ in range(n_rounds):
        for key, fn in fns.items():
            if threads > 1:  # OpenBLAS's and torch's workers spin after a call: let them sleep first
                time.sleep(0.3)
            t0 = clock()
            for _ in range(number[key]):
                fn()
            best[key] = min(best[key], (clock() - t0) / number[key])
    return best


def gemm_fns(n):
    a, b, c = bench_gemm.operands(n, n, n, False, False)
    fns = bench_gemm.runners(a, b, c, False, False)
    fns["pydl"]()
    got = c.copy()
    fns["numpy"]()
    scale = n * np.abs(a).max() * np.abs(b).max()
    np.testing.assert_allclose(got, c, rtol=1e-4, atol=2e-6 * scale)
    return fns


def mlp_fns(sizes, batch):
    pstep, model = bench_train_step.pydl_step_fn(sizes, batch, input_grad=False)
    state = [(lin.weight.data.copy(), lin.bias.data.copy()) for lin in model if isinstance(lin, pydl.nn.Linear)]
    nstep, _ = bench_train_step.numpy_step_fn(sizes, batch, state)
    fns = {"pydl": pstep, "numpy": nstep}
    if torch is not None:
        fns["torch"] = bench_train_step.torch_step_fn(sizes, batch, state)
    lp, ln = pstep(), nstep()
    assert abs(lp - ln) <= 1e-4 * max(1.0, abs(ln)), (lp, ln)
    return fns


def lenet_fns(batch):
    pydl.manual_seed(0)
    model = bench_cnn.lenet5()
    x, y = bench_cnn._batch((1, 28, 28), batch)
    fns = {}
    if torch is not None:
        tmodel = bench_cnn.to_torch(model)
        bench_cnn.check_against_torch(model, tmodel, x, y)
        fns["torch"] = bench_cnn.torch_step_fn(tmodel, x, y)[0]
    fns["pydl"] = bench_cnn.pydl_step_fn(model, x, y)[0]
    return fns


def run(args):
    rows = []

    def record(section, x_name, x, threads, best, work, unit):
        for impl, t in best.items():
            rows.append({"section": section, "x_name": x_name, "x": x, "threads": threads, "impl": impl,
                         "throughput": work / t, "unit": unit})
        shown = "  ".join(f"{impl} {work / t:,.1f}" for impl, t in best.items())
        print(f"{section:<12} {x_name}={x:<6} {threads}t  {unit}: {shown}", flush=True)

    set_threads(1)
    with threadpool_limits(1):
        for n in GEMM_N:
            record("gemm-size", "n", n, 1, measure(gemm_fns(n), 1, args.rounds), 2.0 * n ** 3 * 1e-9, "GFLOP/s")
        for w in WIDTHS:
            fns = mlp_fns((64, w, w, 10), 128)
            record("mlp-width", "width", w, 1, measure(fns, 1, args.rounds), 128, "samples/s")
        for b in BATCHES:
            record("mlp-batch", "batch", b, 1, measure(mlp_fns(DIGITS, b), 1, args.rounds), b, "samples/s")
        for b in BATCHES:
            record("lenet-batch", "batch", b, 1, measure(lenet_fns(b), 1, args.rounds), b, "samples/s")
    for threads in (1, 2):
        with threadpool_limits(threads):
            cases = [("gemm n=1024", gemm_fns(1024), 2.0 * 1024 ** 3 * 1e-9, "GFLOP/s"),
                     ("mlp b256", mlp_fns(DIGITS, 256), 256, "samples/s"),
                     ("lenet b256", lenet_fns(256), 256, "samples/s")]
            set_threads(threads)  # after the builders: bench_train_step's torch step sets 1
            for name, fns, work, unit in cases:
                best = measure(fns, threads, max(args.rounds, 9), budget=1.0, wall=True)
                record("threads", "case", name, threads, best, work, unit)
    set_threads(1)
    return rows


def machine():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = pydl.cpu_info()
    blas = ", ".join(f"{i['internal_api']} {i.get('architecture', '?')}" for i in threadpool_info()
                     if i["user_api"] == "blas")
    return (f"{model}, {info['available_cpus']} CPUs, pydl isa {info['isa']}, numpy {np.__version__} ({blas}), "
            f"torch {torch.__version__ if torch is not None else '-'}, {datetime.date.today()}")


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def tables(rows, header):
    """Markdown: one table per section, a column per library and pydl's ratio to each other."""
    out = [f"# Scaling\n\n{header}\n"]
    for section in dict.fromkeys(r["section"] for r in rows):
        sec = [r for r in rows if r["section"] == section]
        impls = list(dict.fromkeys(r["impl"] for r in sec))
        others = [i for i in impls if i != "pydl"]
        keys = list(dict.fromkeys((r["x"], r["threads"]) for r in sec))
        x_name = sec[0]["x_name"]
        out.append(f"## {section}\n")
        out.append("| " + " | ".join([x_name, "threads", "unit"] + impls + [f"pydl/{o}" for o in others]) + " |")
        out.append("|" + "---|" * (3 + len(impls) + len(others)))
        for x, t in keys:
            here = [r for r in sec if (r["x"], r["threads"]) == (x, t)]
            val = {r["impl"]: r["throughput"] for r in here}
            cells = [str(x), str(t), here[0]["unit"]] + [f"{val[i]:,.1f}" if i in val else "-" for i in impls]
            cells += [f"{val['pydl'] / val[o]:.2f}x" if o in val else "-" for o in others]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def plot(rows, header, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"pydl": "tab:blue", "numpy": "tab:orange", "torch": "tab:green"}
    panels = [("gemm-size", "SGEMM, n x n x n", "n"), ("mlp-width", "MLP 64-W-W-10 step, batch 128", "width W"),
              ("mlp-batch", "digits MLP 64-128-64-10 step", "batch"), ("lenet-batch", "LeNet-5 step", "batch")]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    for ax, (section, title, xlabel) in zip(axes.flat, panels):
        sec = [r for r in rows if r["section"] == section]
        for impl in dict.fromkeys(r["impl"] for r in sec):
            pts = [(r["x"], r["throughput"]) for r in sec if r["impl"] == impl]
            ax.plot(*zip(*pts), "o-", label=impl, color=colors.get(impl), markersize=4)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log" if section != "gemm-size" else "linear")
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(sec[0]["unit"])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    # threads: one group of bars per case, throughput relative to the same library with 1 thread
    ax = axes.flat[4]
    sec = [r for r in rows if r["section"] == "threads"]
    cases = list(dict.fromkeys(r["x"] for r in sec))
    impls = list(dict.fromkeys(r["impl"] for r in sec))
    width = 0.8 / len(impls)
    for k, impl in enumerate(impls):
        ratio = []
        for case in cases:
            v = {r["threads"]: r["throughput"] for r in sec if r["x"] == case and r["impl"] == impl}
            ratio.append(v[2] / v[1] if 1 in v and 2 in v else 0.0)
        ax.bar(np.arange(len(cases)) + k * width, ratio, width, label=impl, color=colors.get(impl))
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xticks(np.arange(len(cases)) + 0.4 - width / 2, cases)
    ax.set_title("2 threads / 1 thread (same library)")
    ax.set_ylabel("speed-up")
    ax.legend()
    # pydl's ratio to the baseline (numpy where it runs, else torch) along each sweep
    ax = axes.flat[5]
    for section, title, xlabel in panels:
        sec = [r for r in rows if r["section"] == section]
        base = "numpy" if any(r["impl"] == "numpy" for r in sec) else "torch"
        val = {(r["x"], r["impl"]): r["throughput"] for r in sec}
        xs = [x for x in dict.fromkeys(r["x"] for r in sec) if (x, base) in val and (x, "pydl") in val]
        ax.plot(xs, [val[(x, "pydl")] / val[(x, base)] for x in xs], "o-", markersize=4,
                label=f"{section}: pydl / {base}")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_title("pydl's ratio to the baseline")
    ax.set_xlabel("n, width or batch")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(header, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/scaling", help="output directory (default runs/scaling)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case (default 5)")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    header = (f"Machine: {machine()}. Best of {args.rounds} interleaved rounds; sweeps: 1 thread, CPU time; "
              "threads: wall time.")
    print(header, flush=True)
    rows = run(args)
    write_csv(rows, os.path.join(args.out, "scaling.csv"))
    with open(os.path.join(args.out, "scaling.md"), "w") as f:
        f.write(tables(rows, header))
    plot(rows, header, os.path.join(args.out, "scaling.png"))
    print(f"wrote {args.out}/scaling.csv, scaling.md, scaling.png")


if __name__ == "__main__":
    main()
