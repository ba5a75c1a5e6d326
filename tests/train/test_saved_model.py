"""SavedModel / load_model: the self-describing model file of `python -m pydl train` (architecture,
standardization, class names, task and version as arrays and JSON, no pickle)."""
import json
import zipfile

import numpy as np
import pytest

import pydl
from pydl.train import build_cnn, build_mlp, load_checkpoint
from pydl.train._mlp import build_from_architecture
from pydl.train.checkpoint import SavedModel, load_model


def mlp_record(n_in=4, hidden=(6,), n_out=3, **kw):
    args = dict(in_features=n_in, hidden=list(hidden), out_features=n_out, activation="tanh", init="he", **kw)
    return {"builder": "build_mlp", "arguments": args}


def numpy_mlp(sd, x):
    """float64 reference forward of Linear - Tanh - Linear from a state dict."""
    h = np.tanh(x @ sd["0.weight"].T.astype(np.float64) + sd["0.bias"])
    return h @ sd["2.weight"].T.astype(np.float64) + sd["2.bias"]


def fitted_classifier(seed=0):
    pydl.manual_seed(seed)
    arch = mlp_record()
    model = build_from_architecture(arch)
    rng = np.random.default_rng(seed)
    mean, std = rng.normal(size=4).astype(np.float32), rng.uniform(0.5, 2, 4).astype(np.float32)
    return SavedModel(model, arch, "classification", mean, std, (4,), classes=["ant", "bee", "cat"],
                      feature_names=["a", "b", "c", "d"], target_name="insect")


def test_classifier_round_trip_matches_a_numpy_forward(tmp_path):
    saved = fitted_classifier()
    path = tmp_path / "m.npz"
    saved.save(path)
    loaded = load_model(path)
    x = np.random.default_rng(1).normal(3, 2, (20, 4))
    z = numpy_mlp(saved.model.state_dict(), (x.astype(np.float32) - saved.x_mean) / saved.x_std)
    np.testing.assert_allclose(loaded.outputs(x), z, rtol=1e-5, atol=1e-5)
    assert loaded.predict(x).tolist() == np.array(["ant", "bee", "cat"])[z.argmax(axis=1)].tolist()
    p = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(loaded.predict_proba(x), p / p.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
    assert loaded.architecture == saved.architecture and loaded.task == "classification"
    assert loaded.feature_names == ["a", "b", "c", "d"] and loaded.target_name == "insect"
    assert loaded.pydl_version == pydl.__version__
    with pytest.raises(ValueError, match=r"x: expected 4 features per sample .*got shape \(20, 5\)"):
        loaded.predict(np.zeros((20, 5)))
    with pytest.raises(TypeError, match="x: expected numbers, got dtype <U1"):
        loaded.predict(np.array([["a"] * 4]))


def test_file_is_plain_npz_without_pickle(tmp_path):
    fitted_classifier().save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files if k != "__pydl__.json"}      # that member is the JSON text
    assert arrays and not any(a.dtype.hasobject for a in arrays.values())
    assert any(a.dtype.kind == "U" and a.tolist() == ["ant", "bee", "cat"] for a in arrays.values())
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        manifest = json.loads(z.read("__pydl__.json"))
    text = json.dumps(manifest)
    for needle in ('"build_mlp"', '"classification"', '"pydl-model"', '"insect"', f'"{pydl.__version__}"'):
        assert needle in text


def test_regression_and_cnn_round_trip(tmp_path):
    pydl.manual_seed(0)
    arch = {"builder": "build_cnn", "arguments": {"in_channels": 1, "out_features": 1, "channels": [3],
                                                  "pool_size": 2}}
    model = build_from_architecture(arch)
    saved = SavedModel(model, arch, "regression", np.full((6, 6), 2, np.float32), np.full((6, 6), 4, np.float32),
                       (1, 6, 6), y_mean=100.0, y_std=15.0)
    saved.save(tmp_path / "r.npz")
    loaded = SavedModel.load(tmp_path / "r.npz")
    x = np.random.default_rng(0).uniform(0, 8, (5, 36))            # flat rows of 6x6 images
    with pydl.no_grad():
        model.eval()
        ref = model(((x.reshape(5, 1, 6, 6) - 2) / 4).astype(np.float32)).astype(np.float64)[:, 0] * 15 + 100
    np.testing.assert_allclose(loaded.predict(x), ref, rtol=1e-6)
    np.testing.assert_allclose(loaded.predict(x.reshape(5, 6, 6)), ref, rtol=1e-6)
    assert loaded.classes is None and (loaded.y_mean, loaded.y_std) == (100.0, 15.0)
    with pytest.raises(ValueError, match="predict_proba: the model is a regressor"):
        loaded.predict_proba(x)


def test_weights_only_checkpoints_still_load_for_what_they_did(tmp_path):
    """Files of pydl.save(model) (the CLI's checkpoint before model files) load into a model as
    before; load_model names what they lack; load_checkpoint takes the new files too."""
    pydl.manual_seed(0)
    model = build_mlp(4, [6], 3)
    pydl.save(model, tmp_path / "old.npz")
    again = build_mlp(4, [6], 3)
    load_checkpoint(tmp_path / "old.npz", again)
    again.load_state_dict(pydl.load(tmp_path / "old.npz"))
    np.testing.assert_array_equal(again.state_dict()["0.weight"], model.state_dict()["0.weight"])
    with pytest.raises(ValueError, match="holds weights only, not a pydl model file.*load_checkpoint"):
        load_model(tmp_path / "old.npz")
    saved = fitted_classifier()
    saved.save(tmp_path / "new.npz")
    fresh = build_from_architecture(saved.architecture)
    load_checkpoint(tmp_path / "new.npz", fresh)
    np.testing.assert_array_equal(fresh.state_dict()["2.weight"], saved.model.state_dict()["2.weight"])


def _rewrite(path, out, change):
    ckpt = pydl.load(path)
    change(ckpt["pydl_model"])
    pydl.save(ckpt, out)
    return out


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(version=2), "written by a newer pydl .*model format 2"),
    (lambda r: r.update(format="other"), "record is malformed"),
    (lambda r: r["architecture"].update(builder="build_resnet"), "unknown builder 'build_resnet'"),
    (lambda r: r["architecture"]["arguments"].update(depth=3), "unexpected keyword argument 'depth'"),
    (lambda r: r.update(task="ranking"), "task: expected one of"),
    (lambda r: r.update(input_shape=[5]), r"input_shape: \(5,\) does not hold the 4 features"),
    (lambda r: r["preprocessing"].update(x_std=np.zeros(4, np.float32)), "x_std: expected positive values"),
    (lambda r: r.pop("classes"), "KeyError"),
    (lambda r: r.update(classes=None), "classes: expected class names for classification"),
])
def test_malformed_model_files_are_named(tmp_path, change, message):
    fitted_classifier().save(tmp_path / "m.npz")
    bad = _rewrite(tmp_path / "m.npz", tmp_path / "bad.npz", change)
    with pytest.raises(ValueError, match=message):
        load_model(bad)


def test_build_from_architecture_matches_the_builders():
    rec = mlp_record(flatten=True, batchnorm=True, dropout=0.1)
    pydl.manual_seed(3)
    a = build_from_architecture(rec)
    pydl.manual_seed(3)
    b = build_mlp(4, [6], 3, activation="tanh", init="he", flatten=True, batchnorm=True, dropout=0.1)
    assert [type(m) for m in a] == [type(m) for m in b]
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(a.state_dict()[k], v)
    pydl.manual_seed(3)
    c = build_from_architecture({"builder": "build_cnn", "arguments": {"in_channels": 2, "out_features": 4}})
    pydl.manual_seed(3)
    np.testing.assert_array_equal(c.state_dict()["0.weight"], build_cnn(2, 4).state_dict()["0.weight"])
    for bad, exc in (({"builder": "build_mlp"}, ValueError), ({"builder": "build_mlp", "arguments": [1]}, TypeError),
                     ({"builder": "build_mlp", "arguments": {"dtype": "float64"}}, ValueError)):
        with pytest.raises(exc, match="architecture"):
            build_from_architecture(bad)
