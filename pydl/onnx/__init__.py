"""pydl.onnx: export a model built from pydl.nn layers to an ONNX file.

Needs the optional ``onnx`` package (``pip install ".[onnx]"``); it is imported when
:func:`export` runs, so ``import pydl`` never needs it. Every pydl.nn layer has one export rule
(``pydl/onnx/_rules.py``); docs/API.md lists them with the ONNX ops they become.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from .. import __version__
from .._grad_mode import no_grad
from .._validate import check_bool, check_input, check_int, shape_str
from ..nn.module import Module
from ._graph import Graph, rule_for

if TYPE_CHECKING:
    import onnx

__all__ = ["export"]

MIN_OPSET = 13  # Softmax over one axis, ReduceMean/Reshape as used by the rules


def _import_onnx():
    try:
        import onnx
    except ImportError as e:
        raise ImportError('pydl.onnx.export needs the onnx package: pip install "pydl[onnx]" '
                          '(or pip install "onnx>=1.15")') from e
    return onnx


def export(model: Module, example_input: np.ndarray, path: str | os.PathLike, opset_version: int = 17,
           dynamic_batch: bool = True) -> onnx.ModelProto:
    """Write the eval-mode graph of ``model`` to the ONNX file ``path``.

    Parameters
    ----------
    model : pydl.nn.Module
        Built from pydl.nn layers: Linear (with its fused ``activation``), ReLU, LeakyReLU,
        Sigmoid, Tanh, GELU (both forms), Softmax, Dropout and GaussianNoise (identity in eval),
        Identity, BatchNorm1d/2d (running statistics), Conv1d/2d, MaxPool1d/2d, AvgPool1d/2d,
        AdaptiveAvgPool1d/2d, Flatten, composed with Sequential and Residual (and subclasses of
        these that keep their ``forward``). Anything else raises a TypeError naming the module.
    example_input : ndarray, float32 or float64
        An input the model accepts, batch axis first; the model runs on it once (in eval mode,
        under ``no_grad``) to fix the static shapes and the dtype of the graph.
    path : str or os.PathLike
        The file to write.
    opset_version : int, default 17
        The ai.onnx opset, from 13 to the newest the installed onnx knows. The file's IR version
        is pinned to the lowest that carries this opset (8 for opset 17), so any onnxruntime
        that runs the opset loads it.
    dynamic_batch : bool, default True
        Axis 0 of the input and output is the symbolic dimension "N" (any batch size); False
        keeps the example's batch size.

    Returns
    -------
    onnx.ModelProto
        The model written (it passed ``onnx.checker.check_model(full_check=True)``).

    The graph computes ``model.eval()``'s outputs; the model's train/eval mode is left as it
    was. Weights keep the model's dtype. For a float64 model, Conv, AveragePool and the erf of
    GELU run in float32 between Cast nodes, because onnxruntime's CPU provider has no float64
    kernel for them; every other op runs in float64.
    """
    onnx = _import_onnx()
    if not isinstance(model, Module):
        raise TypeError(f"model: expected a pydl.nn.Module, got {type(model).__name__}")
    check_input(example_input, name="example_input")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}")
    newest = onnx.defs.onnx_opset_version()
    opset_version = check_int(opset_version, "opset_version")
    if not MIN_OPSET <= opset_version <= newest:
        raise ValueError(f"opset_version: expected an int in [{MIN_OPSET}, {newest}] (the installed onnx "
                         f"{onnx.__version__} knows up to {newest}), got {opset_version}")
    dynamic_batch = check_bool(dynamic_batch, "dynamic_batch")
    if dynamic_batch and example_input.ndim < 2:
        raise ValueError("example_input: dynamic_batch=True needs a batch axis first (at least 2-D, e.g. "
                         f"(N, features)), got shape {shape_str(example_input.shape)}")
    x = np.ascontiguousarray(example_input)
    for name, m in model.named_modules():  # every module has a rule, before anything runs
        rule_for(m, name)

    modes = [(m, m.training) for m in model.modules()]
    graph = Graph(onnx, x.dtype, opset_version, dynamic_batch)
    try:
        model.eval()
        with no_grad():
            try:
                model(x)
            except (TypeError, ValueError) as e:
                kind = TypeError if isinstance(e, TypeError) else ValueError
                raise kind(f"example_input: the model rejects it: {e}") from e
            y, yv = graph.convert(model, "input", x, "")
    finally:
        for m, mode in modes:
            m.training = mode
    proto = _model_proto(onnx, graph, x, y, yv, opset_version)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, os.fspath(path))
    return proto


def _model_proto(onnx, graph, x, y, yv, opset):
    """The ModelProto: input "input", output "output", axis 0 symbolic "N" when the batch is dynamic."""
    helper = onnx.helper
    if not graph.nodes or graph.nodes[-1].output[0] != y:
        graph.node("Identity", [y], "")  # a pass-through model (no node reads the last node's output)
    graph.nodes[-1].output[0] = "output"
    elem = helper.np_dtype_to_tensor_dtype(x.dtype)
    batch = "N" if graph.dynamic_batch else x.shape[0]
    out_shape = list(yv.shape)
    if graph.dynamic_batch and out_shape:
        out_shape[0] = "N" if graph.batch_axis else None  # None: unknown (batch flattened with other axes)
    g = helper.make_graph(graph.nodes, "pydl", [helper.make_tensor_value_info("input", elem, [batch] + list(x.shape[1:]))],
                          [helper.make_tensor_value_info("output", elem, out_shape)], graph.initializers)
    opsets = [helper.make_opsetid("", opset)]
    return helper.make_model(g, opset_imports=opsets, ir_version=helper.find_min_ir_version_for(opsets),
                             producer_name="pydl", producer_version=__version__)
