// pydl._C.gemm / gemm_reference: C = act(alpha * op(a) op(b) + beta * c + bias), in place in c.
#include <string>

#include "bindings/args.h"
#include "gemm/gemm.h"

namespace py = pybind11;
using namespace pydl::bind;

namespace {

// Leading dimension (in elements) of a 2-D matrix whose inner stride must be the item size.
int64_t leading_dim(const Arg& x) {
  const py::array& a = x.array();
  const py::ssize_t item = a.itemsize(), rows = a.shape(0), cols = a.shape(1);
  if (rows == 0 || cols == 0) return cols > 1 ? cols : 1;  // empty: strides are meaningless
  if (cols > 1 && a.strides(1) != item)
    throw py::value_error(x.label() + ": expected unit inner stride (rows may be strided), got strides (" +
                          std::to_string(a.strides(0)) + ", " + std::to_string(a.strides(1)) + ")");
  if (rows <= 1) return cols > 1 ? cols : 1;
  const py::ssize_t rs = a.strides(0);
  if (rs % item != 0 || rs / item < (cols > 1 ? cols : 1))
    throw py::value_error(x.label() + ": row stride " + std::to_string(rs) +
                          " bytes is not a positive multiple of the item size covering the row of " +
                          std::to_string(cols) + " elements");
  return rs / item;
}

void gemm_entry(bool reference, const py::object& a_obj, const py::object& b_obj, const py::object& c_obj,
                bool trans_a, bool trans_b, double alpha, double beta, const py::object& bias_obj,
                const std::string& activation, double negative_slope) {
  Arg a = Arg(a_obj, "a"), b = Arg(b_obj, "b"), c = Arg(c_obj, "c");
  a.floating();
  b.dtype_as(a);
  c.dtype_as(a);
  a.rank(2);
  b.rank(2);
  c.rank(2).writeable();
  const int64_t M = trans_a ? a.dim(1) : a.dim(0), K = trans_a ? a.dim(0) : a.dim(1);
  const int64_t Kb = trans_b ? b.dim(1) : b.dim(0), N = trans_b ? b.dim(0) : b.dim(1);
  if (Kb != K)
    throw py::value_error("b: inner sizes differ: op(a) is " + std::to_string(M) + "x" + std::to_string(K) +
                          " but op(b) is " + std::to_string(Kb) + "x" + std::to_string(N));
  if (c.dim(0) != M || c.dim(1) != N)
    throw py::value_error("c: expected shape (" + std::to_string(M) + ", " + std::to_string(N) + "), got " +
                          shape_str(c.array()));
  const int64_t lda = leading_dim(a), ldb = leading_dim(b), ldc = leading_dim(c);
  c.disjoint_from(a).disjoint_from(b);
  Arg bias = Arg::optional(bias_obj, "bias").dtype_as(a).rank(1).shape({N});
  if (bias.present() && N > 1 && bias.array().strides(0) != bias.array().itemsize())
    throw py::value_error("bias: expected a contiguous array");
  c.disjoint_from(bias);  // the epilogue reads bias while writing c
  const pydl::ops::Act act = activation_arg(activation);
  dispatch_float(a.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *ap = a.cptr<T>(), *bp = b.cptr<T>(), *biasp = bias.cptr<T>();
    T* cp = c.ptr<T>();
    py::gil_scoped_release nogil;
    auto run = reference ? pydl::gemm::gemm_ref<T> : pydl::gemm::gemm<T>;
    run(trans_a, trans_b, M, N, K, T(alpha), ap, lda, bp, ldb, T(beta), cp, ldc, biasp, act, T(negative_slope));
  });
}

constexpr const char* kDoc = R"(c = act(alpha * op(a) @ op(b) + beta * c + bias), written into c in place.

op(x) is x, or x.T when trans_x. a, b, c: 2-D, same float dtype (float32/float64), unit inner
stride (row stride may exceed the row: leading dimension). bias: 1-D, length N, or None.
beta == 0 ignores the old contents of c (NaNs there do not propagate). activation: 'none',
'relu', 'leaky_relu' (negative_slope), 'sigmoid', 'tanh', 'gelu' (erf), 'gelu_tanh'.
c must not share memory with a or b. Returns None.)";

template <bool Reference>
void gemm_binding(const py::object& a, const py::object& b, const py::object& c, bool trans_a, bool trans_b,
                  double alpha, double beta, const py::object& bias, const std::string& activation,
                  double negative_slope) {
  gemm_entry(Reference, a, b, c, trans_a, trans_b, alpha, beta, bias, activation, negative_slope);
}

template <bool Reference>
void def_gemm(py::module_& m, const char* name, const char* doc) {
  m.def(name, &gemm_binding<Reference>, py::arg("a"), py::arg("b"), py::arg("c"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("alpha") = 1.0, py::arg("beta") = 0.0, py::arg("bias") = py::none(),
        py::arg("activation") = "none", py::arg("negative_slope") = 0.01, doc);
}

}  // namespace

void register_gemm(py::module_& m) {
  def_gemm<false>(m, "gemm", kDoc);
  def_gemm<true>(m, "gemm_reference", "The naive reference of gemm (same arguments): the test oracle.");
}
