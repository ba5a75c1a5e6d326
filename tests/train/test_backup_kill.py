"""BackupAndRestore against real kills: a training script (shuffling, dropout, input and weight
noise, BatchNorm with a merged one-sample tail, augmentation with its own seed, Mixup, L2, three
learning-rate schedules, EarlyStopping with restore_best_weights, ModelCheckpoint with the
optimizer, CSVLogger, TerminateOnNaN) is SIGKILLed mid-epoch, half-way through a backup write,
at an epoch end before and right after its backup, and at a random moment from outside; the same
command run again resumes from the last backup and must end with bitwise the files of a run that
was never interrupted (and had no BackupAndRestore at all): final weights, optimizer state,
ModelCheckpoint file, history.csv, ``history.history`` (as float.hex) and the RNG state."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import pydl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
OUTPUTS = ("final.npz", "optimizer.npz", "best.npz", "history.csv", "history.json")

SCRIPT = r'''"""Training run for the kill tests: every source of randomness and state in play.

usage: python train_script.py OUT_DIR BACKUP_DIR SAVE_FREQ   (SAVE_FREQ "none": no BackupAndRestore)
env KILL_AT: "batch:E:B"     SIGKILL itself at the end of batch B of epoch E (mid-epoch)
             "epoch_end:E"   SIGKILL itself at the end of epoch E, before that epoch's backup
             "write:K"       SIGKILL itself half-way through writing the K-th backup
             "after_write:K" SIGKILL itself right after the K-th backup was written
    SLOW=seconds: sleep that long after every batch (for kills from outside).
"""
import json
import os
import signal
import sys
import time

import numpy as np

import pydl
from pydl import data, nn, optim
from pydl.train import Trainer
from pydl.train import callbacks as C

out, backup_dir, save_freq = sys.argv[1], sys.argv[2], sys.argv[3]
save_freq = save_freq if save_freq in ("epoch", "none") else int(save_freq)
kill = os.environ.get("KILL_AT", "")
slow = float(os.environ.get("SLOW", "0"))
BACKUP = os.path.join(backup_dir, "backup.npz")


def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


if kill.startswith(("write:", "after_write:")):
    from pydl import _checkpoint_format, _io
    target, n_calls, writing_backup = int(kill.split(":")[1]), [0], [False]
    real_save, real_write = _io.save, _checkpoint_format.write

    def save(obj, path):
        writing_backup[0] = os.path.abspath(path) == os.path.abspath(BACKUP)
        try:
            real_save(obj, path)
        finally:
            is_backup, writing_backup[0] = writing_backup[0], False
        if is_backup and kill.startswith("after_write:"):
            n_calls[0] += 1
            if n_calls[0] == target:        # the backup is on disk: kill before anything else
                die()

    def write(f, members, tree):
        if writing_backup[0] and kill.startswith("write:"):
            n_calls[0] += 1
            if n_calls[0] == target:        # half the bytes reach the disk, then the kill
                import io
                buf = io.BytesIO()
                real_write(buf, members, tree)
                f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                f.flush()
                os.fsync(f.fileno())
                die()
        return real_write(f, members, tree)

    _io.save, _checkpoint_format.write = save, write


class Killer(C.Callback):
    epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if slow:
            time.sleep(slow)
        if kill == f"batch:{self.epoch}:{batch}":
            die()

    def on_epoch_end(self, epoch, logs=None):
        if kill == f"epoch_end:{epoch}":
            die()


def warmup(epoch, lr):                       # a Keras-style schedule
    return lr * (1.5 if epoch < 2 else 0.9)


pydl.set_num_threads(1)
pydl.manual_seed(0)
rng = np.random.default_rng(0)
x = rng.normal(size=(202, 8)).astype(np.float32)    # 161 training samples: 161 % 16 == 1
y = ((x[:, :3].sum(1) > 0).astype(np.int64) + (x[:, 3] > 0.5)).astype(np.int64)
model = nn.Sequential(nn.GaussianNoise(0.05), nn.Linear(8, 32), nn.BatchNorm1d(32), nn.ReLU(),
                      nn.Dropout(0.2), nn.Linear(32, 3))
opt = optim.Adam(model.parameters(), lr=1e-2)
sched = optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
plateau = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
transform = data.Compose([data.GaussianNoise(0.02, seed=7), data.Mixup(0.4, num_classes=3)])
backup = None if save_freq == "none" else C.BackupAndRestore(backup_dir, save_freq=save_freq)
callbacks = [C.LearningRateScheduler(warmup), C.LearningRateScheduler(sched),
             C.LearningRateScheduler(plateau, monitor="val_loss"),
             C.EarlyStopping(monitor="val_accuracy", patience=3, restore_best_weights=True),
             C.CSVLogger(os.path.join(out, "history.csv")),
             C.ModelCheckpoint(os.path.join(out, "best.npz"), save_best_only=True, save_optimizer=True),
             C.TerminateOnNaN(verbose=0), Killer()] + ([backup] if backup else [])
trainer = Trainer(model, nn.CrossEntropyLoss(label_smoothing=0.05), opt, callbacks=callbacks,
                  weight_noise=0.01, transform=transform, regularizers=[pydl.train.L2(1e-4)])
history = trainer.fit(x, y, epochs=12, batch_size=16, validation_split=0.2, verbose=0)
print("RESTORED", json.dumps(backup and backup.restored), flush=True)
pydl.save(model, os.path.join(out, "final.npz"))
pydl.save(opt.state_dict(), os.path.join(out, "optimizer.npz"))
with open(os.path.join(out, "history.json"), "w") as f:
    json.dump({"epoch": history.epoch, "steps": history.params["steps"],
               "history": {k: [float(v).hex() for v in vals] for k, vals in history.history.items()},
               "rng": repr(pydl._random.generator().bit_generator.state)}, f, indent=1)
'''


def run(script, out, backup, freq, kill=None, slow=None, wait=True):
    """Run the script (a Popen when not ``wait``); returns the CompletedProcess."""
    os.makedirs(out, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("KILL_AT", None)
    if kill:
        env["KILL_AT"] = kill
    if slow:
        env["SLOW"] = str(slow)
    cmd = [sys.executable, str(script), str(out), str(backup), str(freq)]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def restored(res):
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESTORED ")]
    assert len(line) == 1, res.stdout + res.stderr
    return json.loads(line[0].split(" ", 1)[1])


def files(out):
    return {name: (out / name).read_bytes() for name in OUTPUTS}


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("kill") / "train_script.py"
    path.write_text(SCRIPT)
    return path


@pytest.fixture(scope="module")
def reference(script, tmp_path_factory):
    """The uninterrupted run, without any BackupAndRestore."""
    out = tmp_path_factory.mktemp("reference")
    res = run(script, out, out / "unused", "none")
    assert res.returncode == 0, res.stderr
    hist = json.loads((out / "history.json").read_text())
    # the features under test are really in play: early stopping before epoch 12, a merged
    # one-sample tail (161 samples in batches of 16: 10 steps), changing learning rates
    assert len(hist["epoch"]) < 12 and hist["steps"] == 10
    assert len(set(hist["history"]["learning_rate"])) > 3
    return files(out)


def test_uninterrupted_runs_with_backups_match(script, reference, tmp_path):
    for freq in ("epoch", "7"):
        out = tmp_path / f"out-{freq}"
        res = run(script, out, tmp_path / f"backup-{freq}", freq)
        assert res.returncode == 0, res.stderr
        assert restored(res) is None
        assert files(out) == reference
        assert not (tmp_path / f"backup-{freq}").exists()     # delete_checkpoint


# (save_freq, self-inflicted SIGKILL, where the rerun must resume: {"epoch", "batch"})
KILLS = [
    ("epoch", "batch:2:3", {"epoch": 2, "batch": 0}),         # mid-epoch
    ("epoch", "write:3", {"epoch": 2, "batch": 0}),           # half-way through the 3rd backup
    ("epoch", "epoch_end:3", {"epoch": 3, "batch": 0}),       # epoch end, before its backup
    ("epoch", "after_write:4", {"epoch": 4, "batch": 0}),     # epoch end, right after its backup
    ("epoch", "after_write:6", {"epoch": 6, "batch": 0}),     # after the last backup (stopped early)
    ("7", "batch:2:3", {"epoch": 2, "batch": 1}),             # int save_freq: resumes mid-epoch
    ("7", "write:2", {"epoch": 0, "batch": 7}),
    ("7", "epoch_end:3", {"epoch": 3, "batch": 5}),
]


@pytest.mark.parametrize("freq, kill, resume", KILLS, ids=[f"{f}-{k}" for f, k, _ in KILLS])
def test_killed_run_resumes_bitwise(script, reference, tmp_path, freq, kill, resume):
    out, backup = tmp_path / "out", tmp_path / "backup"
    res = run(script, out, backup, freq, kill=kill)
    assert res.returncode == -signal.SIGKILL, res.stderr
    # the last complete backup is intact (a killed write leaves only its temporary)
    state = pydl.load(backup / "backup.npz")["training"]
    assert {"epoch": state["epoch"], "batch": state["batch"]} == resume
    temporaries = [p for p in os.listdir(backup) if p.endswith(".pydl-tmp")]
    assert len(temporaries) == (1 if kill.startswith("write:") else 0)

    res = run(script, out, backup, freq)                       # the same command again
    assert res.returncode == 0, res.stderr
    assert restored(res) == resume                             # it started from the backup
    got = files(out)
    for name in OUTPUTS:
        assert got[name] == reference[name], f"{name} differs from the uninterrupted run"
    assert not backup.exists()                                  # deleted, temporaries included


@pytest.mark.parametrize("delay", [0.0, 0.25])
def test_kill_from_outside_at_a_random_moment(script, reference, tmp_path, delay):
    """SIGKILL sent by another process while training runs (slowed down by a sleep per batch,
    which changes no number), ``delay`` seconds after the first backup appeared."""
    out, backup = tmp_path / "out", tmp_path / "backup"
    proc = run(script, out, backup, "3", slow=0.01, wait=False)
    try:
        deadline = time.monotonic() + 120
        while not (backup / "backup.npz").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.005)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    res = run(script, out, backup, "3")
    assert res.returncode == 0, res.stderr
    assert restored(res) is not None
    assert files(out) == reference
