"""pydl.onnx.export: onnxruntime on the exported file reproduces model.eval() (1e-4 relative) at
two batch sizes other than the example's, for every pydl.nn layer; onnx.checker accepts the file;
unsupported modules and bad arguments raise clear errors; the model's train/eval mode is kept."""
import sys

import numpy as np
import pytest

import pydl
from pydl import nn
from pydl.onnx import export

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

BATCHES = (1, 7)  # the example input has batch 3: the dynamic batch axis must really be dynamic
RTOL = 1e-4


def _randomize_batchnorm(model, rng):
    """Non-trivial affine parameters and running statistics for every batch norm of ``model``."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            C, dt = m.num_features, m.dtype
            if m.affine:
                m.weight.data[:] = rng.uniform(0.5, 1.5, C).astype(dt)
                m.bias.data[:] = rng.standard_normal(C).astype(dt)
            if m.track_running_stats:
                m.running_mean[:] = rng.standard_normal(C).astype(dt)
                m.running_var[:] = rng.uniform(0.5, 2.0, C).astype(dt)


def check_export(model, sample_shape, tmp_path, dtype=np.float32, batches=BATCHES, **kwargs):
    """Export ``model`` with a batch-3 example of ``sample_shape``, run the file in onnxruntime at
    each batch size and compare with ``model.eval()``; returns the ModelProto."""
    rng = np.random.default_rng(0)
    _randomize_batchnorm(model, rng)
    model.train()  # export must not leave it in eval mode
    path = tmp_path / "model.onnx"
    proto = export(model, rng.standard_normal((3,) + sample_shape).astype(dtype), path, **kwargs)
    assert all(m.training for m in model.modules())
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded.ir_version == onnx.helper.find_min_ir_version_for(list(loaded.opset_import))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model.eval()
    for n in batches:
        x = rng.standard_normal((n,) + sample_shape).astype(dtype)
        with pydl.no_grad():
            ref = model(x)
        (out,) = session.run(None, {"input": x})
        assert out.dtype == ref.dtype and out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=RTOL, atol=1e-6 * np.abs(ref).max(), err_msg=f"batch {n}")
    model.train()
    return proto


# ----------------------------------------------------------------- the bar's models
def mlp(dtype=np.float32):
    pydl.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 32, activation="relu", dtype=dtype), nn.BatchNorm1d(32, dtype=dtype),
                         nn.GELU(), nn.Dropout(0.3), nn.Linear(32, 16, dtype=dtype), nn.Tanh(),
                         nn.Linear(16, 5, dtype=dtype), nn.Softmax())


def cnn(dtype=np.float32):
    pydl.manual_seed(1)
    d = dict(dtype=dtype)
    body = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False, **d), nn.BatchNorm2d(16, **d),
                         nn.ReLU(), nn.Conv2d(16, 16, 3, padding="same", **d), nn.BatchNorm2d(16, **d))
    projection = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False, **d), nn.BatchNorm2d(16, **d))
    identity_block = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, **d), nn.ReLU())
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, **d), nn.BatchNorm2d(8, **d), nn.ReLU(), nn.MaxPool2d(2),  # 16 -> 8
        nn.Residual(body, projection), nn.ReLU(),  # 8 -> 4
        nn.Residual(identity_block), nn.AvgPool2d(3, stride=1, padding=1),
        nn.AdaptiveAvgPool2d(3),  # 4 -> 3: overlapping bins
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(16 * 9, 10, **d))


def conv1d_net(dtype=np.float32):
    pydl.manual_seed(2)
    d = dict(dtype=dtype)
    return nn.Sequential(
        nn.Conv1d(2, 6, 5, padding=2, **d), nn.ReLU(), nn.MaxPool1d(2),  # 40 -> 20
        nn.Conv1d(6, 6, 3, dilation=2, groups=3, padding="same", **d), nn.BatchNorm1d(6, **d), nn.Tanh(),
        nn.AvgPool1d(2),  # 20 -> 10
        nn.AdaptiveAvgPool1d(4),  # 10 -> 4: uneven bins
        nn.Flatten(), nn.Linear(24, 3, **d))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("build, shape", [(mlp, (10,)), (cnn, (3, 16, 16)), (conv1d_net, (2, 40))],
                         ids=["mlp", "cnn", "conv1d"])
def test_models_match_onnxruntime(build, shape, dtype, tmp_path):
    proto = check_export(build(dtype), shape, tmp_path, dtype)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.type.tensor_type.shape.dim[0].dim_param == "N"
    assert out.type.tensor_type.shape.dim[0].dim_param == "N"
    assert inp.type.tensor_type.elem_type == onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    weights = {i.name: i for i in proto.graph.initializer}
    first = "0.weight.T" if build is mlp else "0.weight"
    assert onnx.numpy_helper.to_array(weights[first]).dtype == dtype  # weights in the model's dtype


def test_gelu_is_the_exact_erf_form(tmp_path):
    proto = check_export(nn.Sequential(nn.Linear(4, 6), nn.GELU()), (4,), tmp_path)
    ops = [n.op_type for n in proto.graph.node]
    assert "Erf" in ops and "Tanh" not in ops


def test_train_helpers_export(tmp_path):
    check_export(pydl.train.build_mlp(6, (16, 8), 3, activation="gelu", dropout=0.2, batchnorm=True), (6,), tmp_path)
    check_export(pydl.train.build_cnn(1, 4, channels=(4, 8), pool_size=2, batchnorm=True), (1, 8, 8), tmp_path)


# ----------------------------------------------------------------- each layer and option
@pytest.mark.parametrize("layer", [
    nn.ReLU(), nn.LeakyReLU(), nn.LeakyReLU(0.2), nn.LeakyReLU(-0.5), nn.LeakyReLU(1.5), nn.Sigmoid(), nn.Tanh(),
    nn.GELU(), nn.GELU("tanh"), nn.Softmax(), nn.Identity(), nn.Dropout(0.9), nn.GaussianNoise(1.0),
], ids=repr)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_activation(layer, dtype, tmp_path):
    check_export(nn.Sequential(nn.Linear(5, 7, dtype=dtype), layer), (5,), tmp_path, dtype)


@pytest.mark.parametrize("kwargs", [dict(activation="relu"), dict(activation="sigmoid"), dict(activation="tanh"),
                                    dict(activation="leaky_relu", negative_slope=0.3), dict(bias=False)], ids=repr)
def test_linear_fused_activation(kwargs, tmp_path):
    check_export(nn.Linear(6, 4, **kwargs), (6,), tmp_path)


def test_linear_on_3d_input(tmp_path):
    check_export(nn.Sequential(nn.Linear(5, 4), nn.Softmax()), (3, 5), tmp_path)


CONV_OPTIONS = [dict(stride=2), dict(stride=(2, 1)), dict(padding=1), dict(padding=(2, 0)), dict(padding="valid"),
                dict(padding="same"), dict(dilation=2, padding="same"), dict(dilation=(1, 2), stride=2),
                dict(groups=2), dict(groups=4, padding=1), dict(bias=False, padding=(1, 2))]


@pytest.mark.parametrize("kernel", [3, 4, (2, 3)])
@pytest.mark.parametrize("kwargs", CONV_OPTIONS, ids=repr)
def test_conv2d_options(kwargs, kernel, tmp_path):
    """Even kernels with "same" pad asymmetrically (the extra row/column at the end, PyTorch);
    groups=4 on 4 channels is depthwise."""
    pydl.manual_seed(3)
    check_export(nn.Conv2d(4, 8, kernel, **kwargs), (4, 9, 11), tmp_path)


@pytest.mark.parametrize("kernel", [3, 4])
@pytest.mark.parametrize("kwargs", [{k: v[0] if isinstance(v, tuple) else v for k, v in o.items()}
                                    for o in CONV_OPTIONS], ids=repr)
def test_conv1d_options(kwargs, kernel, tmp_path):
    pydl.manual_seed(4)
    check_export(nn.Conv1d(4, 8, kernel, **kwargs), (4, 13), tmp_path)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer, shape", [
    (nn.MaxPool2d(3, stride=2, padding=1), (2, 9, 10)), (nn.MaxPool2d((2, 3)), (2, 7, 9)),
    (nn.AvgPool2d(3, stride=2, padding=1), (2, 9, 10)), (nn.AvgPool2d((2, 3), stride=(1, 2), padding=(1, 1)), (2, 7, 9)),
    (nn.MaxPool1d(3, stride=1, padding=1), (2, 10)), (nn.AvgPool1d(4, padding=2), (2, 11)),
    (nn.AdaptiveAvgPool2d(1), (2, 5, 6)), (nn.AdaptiveAvgPool2d((None, 4)), (2, 5, 7)),
    (nn.AdaptiveAvgPool2d((3, 2)), (2, 7, 5)), (nn.AdaptiveAvgPool2d(6), (2, 3, 4)),
    (nn.AdaptiveAvgPool1d(4), (2, 9)), (nn.AdaptiveAvgPool1d(3), (2, 12)),
], ids=repr)
def test_pools(layer, shape, dtype, tmp_path):
    """Average pools count the zero padding (count_include_pad=True, as pydl); adaptive pools use
    PyTorch's overlapping bins (and upsample when the output is larger)."""
    check_export(layer, shape, tmp_path, dtype)


@pytest.mark.parametrize("layer, shape", [
    (nn.BatchNorm1d(4), (4,)), (nn.BatchNorm1d(4), (4, 6)), (nn.BatchNorm2d(3), (3, 4, 5)),
    (nn.BatchNorm1d(4, affine=False), (4,)), (nn.BatchNorm2d(3, affine=False), (3, 4, 5)),
], ids=repr)
def test_batchnorm_running_stats(layer, shape, tmp_path):
    check_export(layer, shape, tmp_path)


@pytest.mark.parametrize("opset", [13, 17, 18])
@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm1d(4, track_running_stats=False), (4, 5)),
                                          (nn.BatchNorm2d(3, track_running_stats=False, affine=False), (3, 4, 5))],
                         ids=repr)
def test_batchnorm_batch_statistics_in_eval(layer, shape, opset, tmp_path):
    """Without running statistics eval mode normalizes with the batch's own: ReduceMean, whose
    axes move from an attribute to an input at opset 18. (Batch 1 has zero variance.)"""
    proto = check_export(layer, shape, tmp_path, opset_version=opset, batches=(2, 7))
    assert proto.opset_import[0].version == opset


@pytest.mark.parametrize("layer, shape", [(nn.Flatten(), (2, 3, 4)), (nn.Flatten(start_dim=2), (2, 3, 4)),
                                          (nn.Flatten(1, 2), (2, 3, 4)), (nn.Flatten(0), (2, 3))], ids=repr)
def test_flatten(layer, shape, tmp_path):
    proto = check_export(layer, shape, tmp_path)
    out_dim0 = proto.graph.output[0].type.tensor_type.shape.dim[0]
    assert out_dim0.dim_param == ("" if layer.start_dim == 0 else "N")  # batch flattened away: unknown size


class Block(nn.Sequential):
    """A subclass that keeps Sequential's passes exports with Sequential's rule."""

    def __init__(self, n):
        super().__init__(nn.Linear(n, n), nn.ReLU())


def test_subclass_shared_module_and_nesting(tmp_path):
    shared = nn.Linear(6, 6)
    model = nn.Sequential(Block(6), shared, nn.Tanh(), shared, nn.Residual(nn.Sequential(Block(6), nn.Identity())),
                          nn.Sequential(), nn.Linear(6, 2))
    proto = check_export(model, (6,), tmp_path)
    names = [i.name for i in proto.graph.initializer]
    assert names.count("1.weight.T") == 1 and "3.weight.T" not in names  # the shared layer's weights once


@pytest.mark.parametrize("model", [nn.Identity(), nn.Sequential(), nn.Dropout(0.5)], ids=repr)
def test_pass_through_model(model, tmp_path):
    check_export(model, (3,), tmp_path)


def test_static_batch(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    proto = check_export(model, (1, 6, 6), tmp_path, dynamic_batch=False, batches=(3,))
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [3, 1, 6, 6]
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == [3, 3]


def test_max_opset_and_mode_kept(tmp_path):
    model = mlp()
    model.train()
    model[1].eval()  # mixed modes are restored module by module
    export(model, np.zeros((2, 10), np.float32), tmp_path / "m.onnx", opset_version=onnx.defs.onnx_opset_version())
    assert [m.training for m in model.modules()] == [m is not model[1] for m in model.modules()]


def test_every_layer_has_a_rule():
    """A layer added to pydl.nn without an export rule fails here (losses are not layers;
    Module, ModuleList and ModuleDict have no forward)."""
    from pydl.onnx._rules import RULES

    classes = [getattr(nn, name) for name in nn.__all__]
    layers = [c for c in classes if isinstance(c, type) and issubclass(c, nn.Module)
              and c.__module__ != "pydl.nn.loss" and c not in (nn.Module, nn.ModuleList, nn.ModuleDict)]
    assert len(layers) >= 23
    assert [c.__name__ for c in layers if not any(b in RULES for b in c.__mro__)] == []


# ----------------------------------------------------------------- errors
class Custom(nn.Module):
    def forward(self, x):
        return 2 * x


class CustomLinear(nn.Linear):
    def forward(self, x):
        return super().forward(x) * 2


def test_unsupported_module_raises_type_error_naming_it(tmp_path):
    x = np.zeros((2, 4), np.float32)
    model = nn.Sequential(nn.Linear(4, 4), nn.Residual(Custom()))
    model.train()
    with pytest.raises(TypeError, match=r"no export rule for module '1\.module' \(Custom\)"):
        export(model, x, tmp_path / "m.onnx")
    assert model.training and not (tmp_path / "m.onnx").exists()
    with pytest.raises(TypeError, match=r"CustomLinear.*overrides Linear\.forward"):
        export(nn.Sequential(CustomLinear(4, 4)), x, tmp_path / "m.onnx")
    with pytest.raises(TypeError, match="ModuleList"):
        export(nn.ModuleList([nn.ReLU()]), x, tmp_path / "m.onnx")
    hooked = nn.ReLU()
    hooked.register_forward_hook(lambda m, args, out: out + 1)
    with pytest.raises(TypeError, match="forward hooks"):
        export(nn.Sequential(hooked), x, tmp_path / "m.onnx")


def test_bad_arguments(tmp_path):
    model = nn.Linear(4, 2)
    x = np.zeros((3, 4), np.float32)
    path = tmp_path / "m.onnx"
    with pytest.raises(TypeError, match="model: expected a pydl.nn.Module, got str"):
        export("model", x, path)
    with pytest.raises(TypeError, match="path: expected a str or os.PathLike, got int"):
        export(model, x, 3)
    with pytest.raises(TypeError, match="example_input: expected a numpy.ndarray, got list"):
        export(model, [[0.0] * 4], path)
    with pytest.raises(TypeError, match="example_input: expected dtype float32 or float64, got int64"):
        export(model, np.zeros((3, 4), np.int64), path)
    with pytest.raises(ValueError, match=r"example_input: the model rejects it: .*\(\*, 4\).*\(3, 5\)"):
        export(model, np.zeros((3, 5), np.float32), path)
    with pytest.raises(TypeError, match="example_input: the model rejects it: .*float32.*float64"):
        export(model, np.zeros((3, 4)), path)
    with pytest.raises(ValueError, match=r"example_input: dynamic_batch=True needs a batch axis .*\(4,\)"):
        export(model, np.zeros(4, np.float32), path)
    with pytest.raises(ValueError, match=r"example_input: ONNX Conv needs a batch axis.*\(1, 2, 5, 5\)"):
        export(nn.Conv2d(2, 2, 3), np.zeros((2, 5, 5), np.float32), path, dynamic_batch=False)
    with pytest.raises(ValueError, match="opset_version: expected an int in \\[13, "):
        export(model, x, path, opset_version=12)
    with pytest.raises(TypeError, match="opset_version: expected an int, got str"):
        export(model, x, path, opset_version="17")
    with pytest.raises(TypeError, match="dynamic_batch: expected a bool, got str"):
        export(model, x, path, dynamic_batch="yes")
    assert not path.exists() and model.training


def test_missing_onnx_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ImportError, match=r'pip install "pydl\[onnx\]"'):
        export(nn.Linear(2, 2), np.zeros((1, 2), np.float32), tmp_path / "m.onnx")
