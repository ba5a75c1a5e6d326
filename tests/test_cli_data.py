"""`python -m pydl train / predict` on a user's CSV: string labels, regression, header and delimiter
handling, error lines, and the self-describing model file that predict uses alone."""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest

import pydl
from pydl.cli import AUTO_MAX_CLASSES, AUTO_SAMPLES_PER_CLASS, CLIError, choose_task, main
from pydl.model_selection import train_test_split
from pydl.train import build_mlp, load_checkpoint

sklearn_datasets = pytest.importorskip("sklearn.datasets")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
WINE_NAMES = np.array(["zinfandel", "barbera", "merlot"])      # class ids 0, 1, 2; sorted: 1, 2, 0


def write_csv(path, x, labels=None, header=None, delimiter=","):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        if header is not None:
            w.writerow(header)
        for i, row in enumerate(x):
            w.writerow([repr(float(v)) for v in row] + ([] if labels is None else [labels[i]]))
    return str(path)


def wine():
    d = sklearn_datasets.load_wine()
    return d.data, WINE_NAMES[d.target], list(d.feature_names) + ["cultivar"]


def diabetes():
    d = sklearn_datasets.load_diabetes()
    return d.data, d.target, list(d.feature_names) + ["progression"]


def run(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def value(text, key):
    return float(text.split(key)[1].split()[0])


def read_column(path, col=0):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [r[col] for r in rows[1:]]


def cli_split(x, y, seed, stratify):
    """The CLI's train / validation / test split, redone here: (x_train, x_test, y_train, y_test)."""
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, random_state=seed,
                                                      stratify=y if stratify else None)
    x_train, _, y_train, _ = train_test_split(x_rest, y_rest, test_size=0.125, random_state=seed,
                                              stratify=y_rest if stratify else None)
    return x_train, x_test, y_train, y_test


def eval_logits(model, x):
    with pydl.no_grad():
        model.eval()
        return np.asarray(model(x), dtype=np.float64)


def test_wine_string_labels_train_and_predict_with_the_model_file_alone(tmp_path, capsys):
    x, names, header = wine()
    data = write_csv(tmp_path / "wine.csv", x, names, header)
    rc, out, err = run(capsys, "train", "--data", data, "--out", tmp_path / "run", "--quiet")      # the defaults
    assert rc == 0, err
    assert value(out, "test accuracy") >= 0.9
    model_file = tmp_path / "run" / "model.npz"
    record = pydl.load(model_file)["pydl_model"]
    from sklearn.preprocessing import LabelEncoder
    assert record["classes"].tolist() == LabelEncoder().fit(names).classes_.tolist()
    assert record["task"] == "classification" and record["target_name"] == "cultivar"

    # new data: the features only, with the header; predict reads nothing but the model file
    new = write_csv(tmp_path / "new.csv", x, header=header[:-1])
    rc, out, err = run(capsys, "predict", "--model", model_file, "--data", new, "--out", tmp_path / "p.csv", "--proba")
    assert rc == 0, err
    head, written = read_column(tmp_path / "p.csv")
    assert head == ["cultivar", "proba_barbera", "proba_merlot", "proba_zinfandel"]

    # the reference, computed here: the training split's standardization, the network rebuilt with
    # build_mlp, the weights, argmax, the sorted class names
    classes = np.unique(names)
    y_idx = np.searchsorted(classes, names)
    x_train = cli_split(x.astype(np.float32), y_idx, 0, stratify=True)[0]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    np.testing.assert_array_equal(record["preprocessing"]["x_mean"], mean)
    np.testing.assert_array_equal(record["preprocessing"]["x_std"], std)
    model = build_mlp(13, [128, 64], 3, init="he")
    load_checkpoint(model_file, model)
    logits = eval_logits(model, (x.astype(np.float32) - mean) / std)
    assert written == classes[logits.argmax(axis=1)].tolist()
    assert np.mean(np.array(written) == names) >= 0.9
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    proba = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1, usecols=(1, 2, 3))
    np.testing.assert_allclose(proba, p, atol=2e-6)


def test_diabetes_regression_reports_mse_and_r2_and_predicts_values(tmp_path, capsys):
    x, y, header = diabetes()
    data = write_csv(tmp_path / "diabetes.csv", x, [repr(float(v)) for v in y], header)
    rc, out, err = run(capsys, "train", "--data", data, "--out", tmp_path / "run", "--quiet")
    assert rc == 0, err
    assert "accuracy" not in out and "test r2" in out and "test mse" in out
    r2 = value(out, "test r2")
    assert r2 >= 0.3
    record = pydl.load(tmp_path / "run" / "model.npz")["pydl_model"]
    assert record["task"] == "regression" and record["architecture"]["arguments"]["dropout"] == 0.2

    # predict on the test split (with its targets): values, and the r2 recomputed by scikit-learn
    from sklearn.metrics import mean_squared_error, r2_score
    x_train, x_test, y_train, y_test = cli_split(x.astype(np.float32), y, 0, stratify=False)
    test = write_csv(tmp_path / "test.csv", x_test, [repr(float(v)) for v in y_test], header)
    rc, out, err = run(capsys, "predict", "--model", tmp_path / "run" / "model.npz", "--data", test,
                       "--out", tmp_path / "p.csv")
    assert rc == 0, err
    head, written = read_column(tmp_path / "p.csv")
    pred = np.array([float(v) for v in written])
    assert head == ["progression"] and len(pred) == len(y_test)
    assert abs(r2_score(y_test, pred) - r2) < 1e-4 and abs(value(out, "r2") - r2) < 1e-4
    assert abs(value(out, "mse") / mean_squared_error(y_test, pred) - 1) < 1e-5

    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    model = build_mlp(10, [128, 64], 1, init="he", dropout=0.2)
    load_checkpoint(tmp_path / "run" / "model.npz", model)
    ref = eval_logits(model, (x_test - mean) / std)[:, 0] * y_train.std() + y_train.mean()
    np.testing.assert_allclose(pred, ref, rtol=1e-6)


def test_end_to_end_subprocess_semicolons_no_header(tmp_path):
    """`python -m pydl train` then `predict` as a user runs them: a header-less ';' file."""
    x, names, _ = wine()
    write_csv(tmp_path / "wine.csv", x, names, delimiter=";")
    write_csv(tmp_path / "new.csv", x[:5], delimiter=";")
    env = dict(os.environ, PYTHONPATH=ROOT)

    def cli(*args):
        res = subprocess.run([sys.executable, "-m", "pydl", *args], env=env, capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
        assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr
        return res.stdout

    out = cli("train", "--data", "wine.csv", "--delimiter", ";", "--epochs", "20", "--quiet")
    assert "test accuracy" in out and os.path.exists(tmp_path / "runs" / "train" / "model.npz")
    out = cli("predict", "--model", "runs/train/model.npz", "--data", "new.csv", "--delimiter", ";",
              "--out", "preds.csv")
    assert "predictions: 5 rows (classification) written to preds.csv" in out
    assert read_column(tmp_path / "preds.csv") == (["prediction"], ["zinfandel"] * 5)   # wine's first rows


def test_header_detection_and_forcing(tmp_path, capsys):
    x, names, header = wine()
    plain = write_csv(tmp_path / "plain.csv", x, names)            # no header: the first sample is kept
    rc, out, err = run(capsys, "train", "--data", plain, "--epochs", 1, "--out", tmp_path / "o")
    assert rc == 0 and "178 samples" in out, err
    named = write_csv(tmp_path / "named.csv", x, names, header)
    rc, _, err = run(capsys, "train", "--data", named, "--no-header", "--epochs", 1, "--out", tmp_path / "o")
    assert rc == 1 and "line 1, column 1: cannot parse 'alcohol' as a number" in err
    numeric = write_csv(tmp_path / "numeric.csv", x, names, [str(i) for i in range(13)] + ["label"])
    rc, out, err = run(capsys, "train", "--data", numeric, "--header", "--epochs", 1, "--out", tmp_path / "o")
    assert rc == 0 and "178 samples" in out, err
    rc, _, err = run(capsys, "train", "--data", numeric, "--epochs", 1, "--out", tmp_path / "o")
    assert rc == 1 and "class 'label' has 1 (first at line 1" in err      # a clear error, not a silent class


def test_tab_delimiter_and_error_lines(tmp_path, capsys):
    x, names, header = wine()
    tab = write_csv(tmp_path / "tab.csv", x, names, header, delimiter="\t")
    rc, out, err = run(capsys, "train", "--data", tab, "--delimiter", "tab", "--epochs", 1, "--out", tmp_path / "o")
    assert rc == 0 and "13 features, 3 classes" in out, err
    rc, _, err = run(capsys, "train", "--data", tab, "--epochs", 1, "--out", tmp_path / "o")
    assert rc == 1 and "split at ','" in err

    lines = ["# wine, hand edited", ",".join(header)] + [",".join(map(repr, r.tolist())) + "," + n
                                                         for r, n in zip(x[:30], names[:30])]
    lines.insert(4, "")                           # a blank line: file lines keep counting
    bad = list(lines)
    bad[8] = bad[8].replace(bad[8].split(",")[2], "2,4", 1)     # line 9: one field too many
    (tmp_path / "bad.csv").write_text("\n".join(bad) + "\n")
    rc, _, err = run(capsys, "train", "--data", tmp_path / "bad.csv", "--out", tmp_path / "o")
    assert rc == 1 and "bad.csv: line 9: expected 14 fields (as line 2), got 15" in err
    typo = list(lines)
    typo[11] = typo[11].replace(typo[11].split(",")[4], "1O2.0", 1)  # line 12, column 5 (magnesium)
    (tmp_path / "typo.csv").write_text("\n".join(typo) + "\n")
    rc, _, err = run(capsys, "train", "--data", tmp_path / "typo.csv", "--out", tmp_path / "o")
    assert rc == 1 and "typo.csv: line 12, column 5 (magnesium): cannot parse '1O2.0' as a number" in err


@pytest.mark.parametrize("y, task, why", [
    (np.array(["a", "b"] * 10), "classification", "names"),
    (np.repeat([0.0, 1.5], 10), "regression", "non-integer"),
    (np.arange(AUTO_MAX_CLASSES).repeat(2), "classification", "distinct integer"),
    (np.arange(AUTO_MAX_CLASSES + 1).repeat(AUTO_SAMPLES_PER_CLASS - 1), "regression", "distinct values"),
    (np.arange(AUTO_MAX_CLASSES + 1).repeat(AUTO_SAMPLES_PER_CLASS), "classification", "distinct integer"),
    (np.arange(300.0), "regression", "300 distinct values"),
])
def test_auto_task_rule(y, task, why):
    got, reason = choose_task("auto", y, None)
    assert got == task and why in reason
    assert choose_task("classification", y, None)[0] == "classification"


def test_task_flag_and_its_errors(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    frac = write_csv(tmp_path / "frac.csv", x, [repr(float(v)) for v in x @ [1.0, -2.0, 0.5] + 0.25])
    rc, out, err = run(capsys, "train", "--data", frac, "--epochs", 5, "--kfold", 3, "--out", tmp_path / "o")
    assert rc == 0, err
    assert "task regression (auto: the target has non-integer values)" in out and "test r2" in out
    assert "cv r2 (3-fold):" in out and "accuracy" not in out
    classes = write_csv(tmp_path / "classes.csv", x, [str(v) for v in (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)])
    rc, out, err = run(capsys, "train", "--data", classes, "--epochs", 2, "--out", tmp_path / "o")
    assert rc == 0 and "task classification (auto: 3 distinct integer values)" in out and "test accuracy" in out, err
    counts = write_csv(tmp_path / "counts.csv", x, [str(int(v)) for v in np.abs(x[:, 0]) * 3])   # 11 values, rare ones
    rc, out, err = run(capsys, "train", "--data", counts, "--epochs", 2, "--out", tmp_path / "o")
    assert rc == 1 and "class '8' has 1 (first at line 91; task auto: 11 distinct integer values; if the target " \
        "is a quantity, pass --task regression)" in err
    rc, out, err = run(capsys, "train", "--data", counts, "--task", "regression", "--epochs", 2, "--out", tmp_path / "o")
    assert rc == 0 and "task regression (--task regression)" in out and "test r2" in out, err
    rc, _, err = run(capsys, "train", "--data", counts, "--task", "regression", "--mixup", 0.2, "--out", tmp_path / "o")
    assert rc == 1 and "--mixup: for classification only" in err
    names = write_csv(tmp_path / "names.csv", x, ["1.5"] * 119 + ["big"], ["a", "b", "c", "y"])
    rc, _, err = run(capsys, "train", "--data", names, "--task", "regression", "--out", tmp_path / "o")
    assert rc == 1 and "--task regression needs numeric targets; line 121 has 'big'" in err


def test_predict_numeric_classes_labels_and_errors(tmp_path, capsys):
    rng = np.random.default_rng(1)
    y = np.repeat([10, 20, 30], 30)
    x = rng.normal(size=(90, 4)) + 3.0 * np.eye(3, 4)[y // 10 - 1]
    data = write_csv(tmp_path / "t.csv", x, [str(v) for v in y])
    rc, out, err = run(capsys, "train", "--data", data, "--epochs", 30, "--lr", 0.01, "--hidden", 16,
                       "--out", tmp_path / "run", "--quiet")
    assert rc == 0 and value(out, "train accuracy") > 0.9, err
    assert rc == 0, err
    model = tmp_path / "run" / "model.npz"
    rc, out, err = run(capsys, "predict", "--model", model, "--data", data)        # to stdout, labels given
    assert rc == 0, err
    rows = out.splitlines()
    assert rows[0] == "prediction" and set(rows[1:]) <= {"10", "20", "30"} and len(rows) == 91
    assert round(np.mean(np.array(rows[1:]) == y.astype(str)), 4) == value(err, "accuracy") > 0.9
    np.savez(tmp_path / "new.npz", x=x[:7])
    rc, out, _ = run(capsys, "predict", "--model", model, "--data", tmp_path / "new.npz")
    assert rc == 0 and out.splitlines()[1:] == rows[1:8]

    write_csv(tmp_path / "wide.csv", np.zeros((3, 6)))
    rc, _, err = run(capsys, "predict", "--model", model, "--data", tmp_path / "wide.csv")
    assert rc == 1 and "wide.csv: 6 columns; the model takes 4 features (then, optionally," in err
    np.savez(tmp_path / "narrow.npz", x=np.zeros((3, 3)))
    rc, _, err = run(capsys, "predict", "--model", model, "--data", tmp_path / "narrow.npz")
    assert rc == 1 and "x: expected 4 features per sample" in err
    pydl.save(build_mlp(4, [16], 3), tmp_path / "old.npz")
    rc, _, err = run(capsys, "predict", "--model", tmp_path / "old.npz", "--data", data)
    assert rc == 1 and "holds weights only, not a pydl model file" in err
    rc, _, err = run(capsys, "predict", "--model", tmp_path / "none.npz", "--data", data)
    assert rc == 1 and "--model: path: no such checkpoint file" in err


def test_digits_model_predicts_raw_pixels(tmp_path, capsys):
    """The bundled digits train with x / 16: the model file keeps that scaling, so predict takes
    raw pixel rows (0..16, 64 columns)."""
    rc, _, err = run(capsys, "train", "--epochs", 2, "--hidden", 16, "--out", tmp_path / "run", "--quiet")
    assert rc == 0, err
    d = pydl.datasets.load_digits()
    pixels = write_csv(tmp_path / "px.csv", d.data[:50], [str(v) for v in d.target[:50]])
    rc, out, err = run(capsys, "predict", "--model", tmp_path / "run" / "model.npz", "--data", pixels)
    assert rc == 0, err
    model = build_mlp(64, [16], 10, init="he", flatten=True)
    load_checkpoint(tmp_path / "run" / "model.npz", model)
    ref = eval_logits(model, (d.data[:50] / 16.0).astype(np.float32).reshape(50, 8, 8)).argmax(axis=1)
    assert out.splitlines()[1:] == [str(v) for v in ref]


def test_choose_task_rejects_names_for_regression_in_npz():
    with pytest.raises(CLIError, match=r"sample 2 \(counting from 0\) has 'c'"):
        choose_task("regression", np.array(["1", "2", "c"]), None)
