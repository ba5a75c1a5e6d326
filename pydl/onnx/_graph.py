"""The graph builder of pydl.onnx: nodes, initializers and the walk over a model's modules.

``Graph.convert(module, x, xv, path)`` finds the export rule of ``module`` (``_rules.RULES``),
runs it on the ONNX value named ``x`` whose example value is the ndarray ``xv``, and returns
``(y, yv)``: the name of the output value and its example value. Leaf rules see the example
input and output (the layer's own forward computes the output, and with it checks the input),
so every static shape is known without a shape-inference pass.
"""
import numpy as np

# the methods whose override would make a module compute something its base's rule does not
_PASSES = ("__call__", "forward", "forward_fused")


class Graph:
    """Nodes and initializers of one export, in the model's dtype ``dtype``.

    ``opset`` is the ai.onnx opset the nodes follow; ``dynamic_batch`` whether axis 0 of the
    input is symbolic (rules must not bake the example's batch size into a constant).
    ``batch_axis`` stays True while axis 0 of the values is the input's batch axis.
    """

    def __init__(self, onnx, dtype, opset, dynamic_batch):
        self.onnx, self.dtype, self.opset, self.dynamic_batch = onnx, np.dtype(dtype), opset, dynamic_batch
        self.batch_axis = True
        self.nodes, self.initializers = [], []
        self._used = set()
        self._prefix = {}  # id(module) -> the path it was first reached by: shared modules share weights

    # ----------------------------------------------------------------- values
    def _unique(self, base):
        name, i = base, 0
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._used.add(name)
        return name

    def const(self, name, array):
        """The initializer ``name`` holding ``array`` (made once: a later call with the same name
        returns it, which is how a module reached twice shares its weights)."""
        if name not in self._used:
            self._used.add(name)
            self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def scalar(self, value):
        """A 0-d constant of the model's dtype."""
        return self.const(f"const_{value!r}", np.asarray(value, self.dtype))

    # ----------------------------------------------------------------- nodes
    def node(self, op, inputs, path, **attrs):
        """Append one ``op`` node reading ``inputs``; returns the name of its (single) output."""
        base = f"{path}/{op}" if path else op
        out = self._unique(f"{base}_output")
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], name=self._unique(base), **attrs))
        return out

    def node_f32(self, op, inputs, path, **attrs):
        """``node``, but for a float64 model the op runs on float32 between two Casts.

        onnxruntime's CPU provider has no float64 kernel for Conv, AveragePool and Erf
        (onnxruntime 1.32); the ONNX standard allows double, so the initializers keep the model's
        dtype and the Casts make the file run there (constant Casts of weights fold at load).
        """
        if self.dtype == np.float32:
            return self.node(op, inputs, path, **attrs)
        f32, f64 = self.onnx.TensorProto.FLOAT, self.onnx.TensorProto.DOUBLE
        cast = [self.node("Cast", [name], path, to=f32) for name in inputs]
        return self.node("Cast", [self.node(op, cast, path, **attrs)], path, to=f64)

    def reduce_mean(self, x, axes, path):
        """ReduceMean over ``axes``, keeping them: an attribute before opset 18, an input from 18 on."""
        if self.opset >= 18:
            return self.node("ReduceMean", [x, self.const(f"axes_{axes}", np.array(axes, np.int64))], path,
                             keepdims=1)
        return self.node("ReduceMean", [x], path, axes=list(axes), keepdims=1)

    # ----------------------------------------------------------------- the walk
    def convert(self, module, x, xv, path):
        """Export ``module`` applied to the value ``x`` (example ``xv``); returns (name, example)."""
        rule, container = rule_for(module, path)
        prefix = self._prefix.setdefault(id(module), path)
        if container:
            return rule(self, module, x, xv, prefix)
        yv = module(xv)
        return rule(self, module, x, xv, yv, prefix), yv


def rule_for(module, path):
    """(rule, is_container) of ``module`` (reached by ``path``), or a TypeError naming it."""
    from ._rules import RULES

    cls = type(module)
    where = f"'{path}' ({cls.__name__})" if path else cls.__name__
    base = next((c for c in cls.__mro__ if c in RULES), None)
    if base is None:
        supported = ", ".join(sorted(c.__name__ for c in RULES))
        raise TypeError(f"pydl.onnx.export: no export rule for module {where}; supported modules: {supported}")
    for name in _PASSES:
        if getattr(cls, name, None) is not getattr(base, name, None):
            raise TypeError(f"pydl.onnx.export: module {where} overrides {base.__name__}.{name}; only the "
                            f"computation of {base.__name__} itself can be exported")
    if module._forward_hooks:
        raise TypeError(f"pydl.onnx.export: module {where} has forward hooks (which may replace its output); "
                        "remove them before exporting")
    return RULES[base]
