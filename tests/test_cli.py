"""`python -m pydl train`: end to end on tiny runs (subprocess and in-process), and bad input."""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest

import pydl
from pydl.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))


def run_cli(args, cwd):
    """Run `python -m pydl ...` with the pydl this test imports; returns CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "pydl", *args], env=env, capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def blobs(n=90, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n // k)
    x = rng.normal(0, 1, (len(y), d)) + 4.0 * np.eye(k, d)[y]
    return x.astype(np.float32), y


def test_npz_end_to_end_subprocess(tmp_path):
    x, y = blobs()
    np.savez(tmp_path / "tiny.npz", x=x, y=y)
    out = tmp_path / "run"
    res = run_cli(["train", "--data", "tiny.npz", "--epochs", "3", "--hidden", "16", "--out", str(out),
                   "--seed", "1"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "test accuracy" in res.stdout and "Traceback" not in res.stderr
    acc = float(res.stdout.split("test accuracy")[1].split()[0])
    assert 0.0 <= acc <= 1.0
    sd = pydl.load(str(out / "model.npz"))["model"]
    assert set(sd) == {"0.weight", "0.bias", "2.weight", "2.bias"} and sd["0.weight"].shape == (16, 5)
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and {"loss", "val_loss", "accuracy", "val_accuracy", "gap"} <= set(rows[0])


def test_bad_flag_subprocess(tmp_path):
    res = run_cli(["train", "--optimizer", "lbfgs"], tmp_path)
    assert res.returncode == 2 and "invalid choice: 'lbfgs'" in res.stderr and "Traceback" not in res.stderr
    res = run_cli(["train", "--data", "missing.npz"], tmp_path)
    assert res.returncode == 1 and "no such file: missing.npz" in res.stderr and "Traceback" not in res.stderr


def test_csv_with_header_and_label_mapping(tmp_path, capsys):
    x, y = blobs(seed=2)
    path = tmp_path / "tiny.csv"
    table = np.column_stack([x, (y + 1) * 10])            # labels 10, 20, 30
    np.savetxt(path, table, delimiter=",", header="a,b,c,d,e,label", comments="")
    rc = main(["train", "--data", str(path), "--epochs", "2", "--hidden", "8", "8", "--optimizer", "nesterov",
               "--batch-size", "full", "--out", str(tmp_path / "o"), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "test accuracy" in out
    assert pydl.load(str(tmp_path / "o" / "model.npz"))["model"]["4.weight"].shape == (3, 8)


def test_digits_default_tiny_run_with_regularizers(tmp_path, capsys):
    rc = main(["train", "--epochs", "2", "--hidden", "16", "--batchnorm", "--dropout", "0.1", "--l2", "1e-4",
               "--l1", "1e-6", "--label-smoothing", "0.1", "--augment", "rotation", "noise", "--mixup", "0.2",
               "--weight-noise", "0.01", "--input-noise", "0.05", "--early-stopping", "1", "--optimizer", "adamw",
               "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "train accuracy" in out and "validation accuracy" in out and "test accuracy" in out
    assert os.path.exists(tmp_path / "model.npz")


def test_kfold(tmp_path, capsys):
    x, y = blobs(seed=3)
    np.savez(tmp_path / "t.npz", x=x, y=y)
    rc = main(["train", "--data", str(tmp_path / "t.npz"), "--epochs", "2", "--hidden", "8", "--kfold", "3",
               "--cutmix", "0", "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "cv accuracy (3-fold):" in out and "±" in out and "test accuracy" in out


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adagrad", "adadelta", "rmsprop", "adam"])
@pytest.mark.parametrize("activation", ["tanh"])
def test_each_optimizer(tmp_path, capsys, optimizer, activation):
    x, y = blobs(seed=4)
    np.savez(tmp_path / "t.npz", x=x, y=y)
    rc = main(["train", "--data", str(tmp_path / "t.npz"), "--epochs", "1", "--hidden", "4", "--optimizer", optimizer,
               "--activation", activation, "--out", str(tmp_path), "--quiet"])
    assert rc == 0 and "test accuracy" in capsys.readouterr().out


def _bad(tmp_path, capsys, args, message):
    rc = main(["train", *args, "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and message in err, err


def test_bad_files(tmp_path, capsys):
    x, y = blobs()
    np.savez(tmp_path / "noy.npz", x=x)
    _bad(tmp_path, capsys, ["--data", str(tmp_path / "noy.npz")], "lacks array(s) y")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    _bad(tmp_path, capsys, ["--data", str(tmp_path / "junk.npz")], "cannot read")
    (tmp_path / "text.csv").write_text("a,b\nx,y\n1,2\n")
    _bad(tmp_path, capsys, ["--data", str(tmp_path / "text.csv")], "cannot parse")
    (tmp_path / "data.txt").write_text("1,2\n")
    _bad(tmp_path, capsys, ["--data", str(tmp_path / "data.txt")], "expected a .npz or .csv")
    np.savetxt(tmp_path / "flat.csv", np.column_stack([x, y]), delimiter=",")
    _bad(tmp_path, capsys, ["--data", str(tmp_path / "flat.csv"), "--augment"], "needs image data")
    bad = x.copy()
    bad[0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", x=bad, y=y)
    _bad(tmp_path, capsys, ["--data", str(tmp_path / "nan.npz")], "NaN")
    np.savez(tmp_path / "short.npz", x=x, y=y[:-1])
    _bad(tmp_path, capsys, ["--data", str(tmp_path / "short.npz")], "y must have shape (90,)")


@pytest.mark.parametrize("args", [["--batch-size", "-3"], ["--epochs", "0"], ["--dropout", "1.5"],
                                  ["--lr", "abc"], ["--activation", "swish"], []])
def test_bad_flags_exit_2(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", *args] if args else args)
    assert e.value.code == 2


def test_batchnorm_batch_size_8_tail_of_one(tmp_path, capsys):
    """Defect 3: the digits training split has 1257 samples, 1257 % 8 == 1: the one-sample tail
    used to crash BatchNorm at the end of epoch 1, leaving an empty history.csv."""
    out = tmp_path / "run"
    assert main(["train", "--batchnorm", "--batch-size", "8", "--epochs", "2", "--hidden", "16",
                 "--out", str(out), "--quiet"]) == 0
    assert "trained 2 epochs" in capsys.readouterr().out
    with open(out / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert all(np.isfinite(float(r["loss"])) for r in rows)


KILL_AFTER_SECOND_BACKUP = """
import os, signal, sys
from pydl import _io
from pydl.cli import main
real, count = _io.save, [0]
def save(obj, path):
    real(obj, path)
    if os.path.basename(str(path)) == "backup.npz":
        count[0] += 1
        if count[0] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
_io.save = save
sys.exit(main(sys.argv[1:]))
"""


def test_backup_flag_resumes_a_killed_run_bitwise(tmp_path):
    args = ["train", "--batchnorm", "--batch-size", "8", "--epochs", "4", "--hidden", "16", "--dropout", "0.2",
            "--weight-noise", "0.01", "--augment", "rotation", "--mixup", "0.2", "--early-stopping", "3"]
    ref = run_cli(args + ["--out", "ref"], tmp_path)
    assert ref.returncode == 0, ref.stderr
    run = args + ["--out", "run", "--backup", "bk"]
    env = dict(os.environ, PYTHONPATH=ROOT)
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_SECOND_BACKUP, *run], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    assert (tmp_path / "bk" / "backup.npz").exists()
    res = run_cli(run, tmp_path)                       # the same command again
    assert res.returncode == 0, res.stderr
    assert "resumed from the backup in bk at epoch 3" in res.stdout
    for name in ("model.npz", "history.csv"):
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    assert not (tmp_path / "bk").exists()


# ---------------------------------------------------------------- --model cnn
def test_cnn_on_digits_images(tmp_path, capsys):
    rc = main(["train", "--model", "cnn", "--epochs", "3", "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "test accuracy" in out
    acc = float(out.split("test accuracy")[1].split()[0])
    assert acc > 0.5                     # 3 epochs; the default 50 reach ~0.98
    sd = pydl.load(str(tmp_path / "model.npz"))["model"]
    assert sd["0.weight"].shape == (16, 1, 3, 3) and sd["3.weight"].shape == (32, 16, 3, 3)
    assert sd["7.weight"].shape == (10, 32 * 4 * 4)


def test_cnn_batches_are_images_and_every_augmentation_applies(tmp_path, capsys, monkeypatch):
    """--model cnn hands (N, 1, 8, 8) batches to the model and to the augmentations."""
    from pydl import data
    seen = []
    original = data.Compose.__call__

    def spy(self, x, y=None):
        seen.append(x.shape)
        return original(self, x, y)

    monkeypatch.setattr(data.Compose, "__call__", spy)
    rc = main(["train", "--model", "cnn", "--batchnorm", "--channels", "8", "8", "--epochs", "1", "--augment",
               "rotation", "crop", "cutout", "hflip", "vflip", "noise", "--mixup", "0.2", "--cutmix", "1.0",
               "--dropout", "0.1", "--out", str(tmp_path), "--quiet"])
    assert rc == 0 and "test accuracy" in capsys.readouterr().out
    assert seen and all(len(s) == 4 and s[1:] == (1, 8, 8) for s in seen)
    sd = pydl.load(str(tmp_path / "model.npz"))["model"]
    assert "1.running_mean" in sd and "0.bias" not in sd  # Conv2d(bias=False) - BatchNorm2d


def test_cnn_kfold(tmp_path, capsys):
    rc = main(["train", "--model", "cnn", "--channels", "4", "--epochs", "1", "--kfold", "2",
               "--out", str(tmp_path), "--quiet"])
    assert rc == 0 and "cv accuracy (2-fold):" in capsys.readouterr().out


def test_cnn_on_npz_images(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(2), 20)
    x = rng.normal(0, 0.1, (40, 6, 6)).astype(np.float32)
    x[y == 1, :3] += 1.0                                     # class 1: bright top half
    np.savez(tmp_path / "img.npz", x=x, y=y)
    rc = main(["train", "--model", "cnn", "--data", str(tmp_path / "img.npz"), "--channels", "4", "4",
               "--epochs", "2", "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 0 and "test accuracy" in capsys.readouterr().out


def test_cnn_needs_images(tmp_path, capsys):
    x, y = blobs()
    np.savez(tmp_path / "flat.npz", x=x, y=y)
    _bad(tmp_path, capsys, ["--model", "cnn", "--data", str(tmp_path / "flat.npz")],
         "--model cnn needs image data (x of shape (N, H, W)), got x of shape (90, 5)")


def test_cnn_bad_flags_exit_2(capsys):
    for args in (["--model", "resnet"], ["--model", "cnn", "--channels"], ["--channels", "0"]):
        with pytest.raises(SystemExit) as e:
            main(["train", *args])
        assert e.value.code == 2
    assert "invalid choice: 'resnet'" in capsys.readouterr().err
