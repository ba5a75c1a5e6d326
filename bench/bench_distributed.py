"""Data-parallel scaling over MPI: 1 and 2 ranks, one thread each (pydl.distributed).

Networks (float32, Adam, the global batch split evenly over the ranks), built by the other
bench files' builders:
    mlp/b128     784-512-256-10 MLP (bench_train_step.py) at global batch 128
    lenet5/b64   LeNet-5 on 1x28x28 (bench_cnn.py) at global batch 64

Each case runs as an MPI job, ``mpiexec -n K python bench/bench_distributed.py --worker NAME``
with ``PYDL_NUM_THREADS=1``, for K = 1 and 2. Every rank runs rounds of training steps
(forward, loss, backward, DistributedOptimizer.step: one Allreduce of the flat gradient buffer,
then Adam); the best round gives the seconds per step, of which the Allreduce's share is
measured inside the optimizer (it includes waiting for the slower rank). Also timed: the
Allreduce of a buffer of the gradient's size alone, after a barrier (the transport's cost on
this machine: shared memory). Throughput is global samples per second (wall clock); the ratio
is to 1 rank, measured in the same run. On the shared 2-core machine, 2 ranks take both cores;
the numbers move with the load of the other users (best of rounds).

    bench/run bench/bench_distributed.py
    python bench/bench_distributed.py                    # the same table without pytest
docs/SCALING.md turns the figures into a cost model for K = 2..64 ranks.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import pydl
from pydl import nn, optim

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_cnn  # noqa: E402
import bench_train_step  # noqa: E402

CASES = {"mlp/b128": 128, "lenet5/b64": 64}
ROUNDS, STEPS = 20, 10


def build(name):
    """(model, x, y) of a case: the model with seed 0, one global batch."""
    if name.startswith("mlp"):
        sizes = (784, 512, 256, 10)
        model = bench_train_step._init_weights(sizes)
        x, y = bench_train_step._data(sizes, CASES[name])
    else:
        pydl.manual_seed(0)
        model = bench_cnn.lenet5()
        x, y = bench_cnn._batch((1, 28, 28), CASES[name])
    return model, x, y


def train_flops_per_sample(model, x):
    """FLOPs of one training step per sample in the Linear and Conv layers: 2 x the forward
    multiply-adds for the forward, for dW and for dX, except the first layer's dX (the steps
    here pass ``input_grad=False``)."""
    layers = []

    def count(m, args, out):
        fan_in = m.weight.data.size // m.weight.data.shape[0]
        layers.append(2 * fan_in * out.size // out.shape[0])

    handles = [m.register_forward_hook(count) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    with pydl.no_grad():
        model(x[:1])
    for h in handles:
        h.remove()
    return 3 * sum(layers) - layers[0]


def worker(name):
    """Inside the MPI job: time the data-parallel steps; rank 0 prints one JSON line."""
    from pydl import distributed as dist
    dist.init()
    comm = dist._comm.comm()
    rank, k = dist.rank(), dist.world_size()
    model, x, y = build(name)
    dist.broadcast_parameters(model)
    opt = dist.DistributedOptimizer(optim.Adam(model.parameters(), lr=1e-3))
    part = dist.shard(x.shape[0])
    xb, yb = x[part], y[part]
    loss_fn = nn.CrossEntropyLoss()
    update = [0.0]

    def step():
        opt.zero_grad()
        loss_fn(model(xb), yb)
        model.backward(loss_fn.backward(), input_grad=False)
        t0 = time.perf_counter()
        opt.step()
        update[0] += time.perf_counter() - t0

    for _ in range(3):
        step()
    rounds = []
    for _ in range(ROUNDS):
        comm.Barrier()
        t0, a0, u0 = time.perf_counter(), opt.allreduce_seconds, update[0]
        for _ in range(STEPS):
            step()
        rounds.append(((time.perf_counter() - t0) / STEPS, (opt.allreduce_seconds - a0) / STEPS,
                       (update[0] - u0) / STEPS))
    step_s, allreduce_s, update_s = min(rounds)
    n_grad = sum(p.data.size for p in model.parameters())
    buf = np.zeros(n_grad, np.float32)
    alone = []
    for _ in range(30):
        comm.Barrier()
        alone.append(dist._comm.allreduce_sum_(buf) if k > 1 else 0.0)
    steps = comm.gather((step_s, allreduce_s, update_s), root=0)
    if rank == 0:
        print("RESULT " + json.dumps({
            "case": name, "ranks": k, "threads": pydl.get_num_threads(), "global_batch": int(x.shape[0]),
            "step_s": max(s[0] for s in steps), "allreduce_s": max(s[1] for s in steps),
            "update_s": max(s[2] - s[1] for s in steps),
            "allreduce_alone_s": float(np.median(alone)), "grad_bytes": int(buf.nbytes),
            "train_flops_per_sample": train_flops_per_sample(model, x)}), flush=True)


def run(name, ranks):
    """One MPI job of ``ranks`` ranks for ``name``; its RESULT dict, with samples/s."""
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    mpiexec = mpiexec if os.path.exists(mpiexec) else shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not found (pip install '.[mpi]')")
    env = dict(os.environ, PYDL_NUM_THREADS="1",
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__))))
    res = subprocess.run([mpiexec, "-n", str(ranks), "-host", "localhost", sys.executable, os.path.abspath(__file__),
                          "--worker", name], env=env, capture_output=True, text=True, timeout=600, check=False)
    lines = [line for line in res.stdout.splitlines() if line.startswith("RESULT ")]
    if res.returncode != 0 or len(lines) != 1:
        raise RuntimeError(f"mpiexec -n {ranks} {name} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    r = json.loads(lines[0][len("RESULT "):])
    r["samples_per_s"] = r["global_batch"] / r["step_s"]
    return r


def report(rows):
    """The table: per case and rank count, throughput and where a step's time goes: forward and
    backward, the update (DistributedOptimizer.step without its Allreduce: packing the gradients,
    Adam), the Allreduce inside the step (with any wait for the slower rank), and alone."""
    lines = [f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; threads per rank "
             f"{sorted({r['threads'] for r in rows})}",
             f"{'case':<12} {'ranks':>5} {'samples/s':>10} {'ms/step':>8} {'fwd+bwd':>8} {'update':>7} "
             f"{'allreduce':>9} {'alone':>6} {'grad KB':>8} {'GFLOP/s/rank':>13} {'speedup':>8}"]
    for r in rows:
        base = next(b for b in rows if b["case"] == r["case"] and b["ranks"] == 1)
        gflops = r["samples_per_s"] * r["train_flops_per_sample"] / r["ranks"] * 1e-9
        compute = r["step_s"] - r["update_s"] - r["allreduce_s"]
        lines.append(f"{r['case']:<12} {r['ranks']:>5} {r['samples_per_s']:>10.0f} {1e3 * r['step_s']:>8.2f} "
                     f"{1e3 * compute:>8.2f} {1e3 * r['update_s']:>7.2f} {1e3 * r['allreduce_s']:>9.3f} "
                     f"{1e3 * r['allreduce_alone_s']:>6.3f} {r['grad_bytes'] / 1024:>8.0f} {gflops:>13.1f} "
                     f"{r['samples_per_s'] / base['samples_per_s']:>7.2f}x")
    return "\n".join(lines)


# the networks of the cost model (docs/SCALING.md): line rate in Gb/s, per-message latency in s
NETWORKS = {"10 Gb/s Ethernet": (10, 20e-6), "25 Gb/s Ethernet": (25, 20e-6), "100 Gb/s InfiniBand": (100, 2e-6)}
RANKS = (2, 4, 8, 16, 32, 64)


def ring_allreduce_s(nbytes, k, gbit_s, latency_s):
    """Ring Allreduce (reduce-scatter then allgather, Patarasuk and Yuan 2009): 2(K-1) steps, each
    sending nbytes / K: 2(K-1)/K * nbytes / bandwidth + 2(K-1) * latency."""
    return 2 * (k - 1) / k * nbytes / (gbit_s * 1e9 / 8) + 2 * (k - 1) * latency_s


def cost_model(r):
    """Markdown table for one case from its 1-rank figures (docs/SCALING.md): per network and K,
    the ring Allreduce time, the efficiency at the bench's global batch B, and the smallest
    global batch with efficiency >= 80%.

    One rank: T_1(B) = c B + T_u (c: forward + backward seconds per sample, T_u: the update, which
    every rank repeats whole); K ranks: T_K(B) = c B / K + T_u + T_ar(K). Efficiency
    E = T_1(B) / (K T_K(B)); E >= 0.8 for B >= (0.8 K (T_u + T_ar) - T_u) / (0.2 c).
    """
    B = r["global_batch"]
    t_u = r["update_s"]
    c = (r["step_s"] - t_u) / B
    out = [f"{r['case']}: F = {r['train_flops_per_sample'] / 1e6:.2f} MFLOP/sample, gradient "
           f"{r['grad_bytes'] / 1e6:.2f} MB, forward+backward c = {1e6 * c:.1f} us/sample "
           f"({r['train_flops_per_sample'] / c / 1e9:.0f} GFLOP/s), update T_u = {1e3 * t_u:.2f} ms/step", "",
           "| network | " + " | ".join(f"K={k}" for k in RANKS) + " |",
           "|---|" + "---|" * len(RANKS)]
    for net, (gbit, lat) in NETWORKS.items():
        cells = []
        for k in RANKS:
            t_ar = ring_allreduce_s(r["grad_bytes"], k, gbit, lat)
            eff = (c * B + t_u) / (k * (c * B / k + t_u + t_ar))
            b_min = max(k, (0.8 * k * (t_u + t_ar) - t_u) / (0.2 * c))
            cells.append(f"{1e3 * t_ar:.2f} ms, E={eff:.0%}, B>={b_min:,.0f}")
        out.append(f"| {net} | " + " | ".join(cells) + " |")
    return "\n".join(out)


@pytest.mark.parametrize("name", list(CASES))
def test_distributed_scaling(throughput, name):
    pytest.importorskip("mpi4py")
    rows = [run(name, k) for k in (1, 2)]
    print("\n" + report(rows))
    for r in rows:
        throughput.record(bench_cnn._HandTimed([r["global_batch"] / r["samples_per_s"]]), f"distributed {name}",
                          f"{r['ranks']} rank{'s' if r['ranks'] > 1 else ''}", r["global_batch"],
                          unit="samples/s", scale=1.0, baseline="1 rank")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    else:
        rows = [run(name, k) for name in CASES for k in (1, 2)]
        print(report(rows))
        for r in rows:
            if r["ranks"] == 1:
                print("\n" + cost_model(r))
