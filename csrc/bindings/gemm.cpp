// pydl._C.gemm / gemm_reference: C = act(alpha * op(a) op(b) + beta * c + bias), in place in c.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <string>

#include "bindings/common.h"
#include "gemm/gemm.h"

namespace py = pybind11;
using namespace pydl::bind;
using pydl::ops::Act;

namespace {

// Leading dimension (in elements) of a 2-D matrix whose inner stride must be the item size.
int64_t leading_dim(const py::array& x, const char* name) {
  const py::ssize_t item = x.itemsize(), rows = x.shape(0), cols = x.shape(1);
  if (rows == 0 || cols == 0) return cols > 1 ? cols : 1;  // empty: strides are meaningless
  if (cols > 1 && x.strides(1) != item)
    throw py::value_error(std::string(name) + ": expected unit inner stride (rows may be strided), got strides (" +
                          std::to_string(x.strides(0)) + ", " + std::to_string(x.strides(1)) + ")");
  if (rows <= 1) return cols > 1 ? cols : 1;
  const py::ssize_t rs = x.strides(0);
  if (rs % item != 0 || rs / item < (cols > 1 ? cols : 1))
    throw py::value_error(std::string(name) + ": row stride " + std::to_string(rs) +
                          " bytes is not a positive multiple of the item size covering the row of " +
                          std::to_string(cols) + " elements");
  return rs / item;
}

// Byte range [lo, hi) touched by a 2-D matrix with non-negative strides.
void byte_range(const py::array& x, const char** lo, const char** hi) {
  *lo = static_cast<const char*>(x.data());
  *hi = *lo;
  if (x.shape(0) == 0 || x.shape(1) == 0) return;
  *hi = *lo + (x.shape(0) - 1) * x.strides(0) + (x.shape(1) - 1) * x.strides(1) + x.itemsize();
}

bool overlaps(const py::array& x, const py::array& y) {
  const char *a0, *a1, *b0, *b1;
  byte_range(x, &a0, &a1);
  byte_range(y, &b0, &b1);
  return a0 < a1 && b0 < b1 && a0 < b1 && b0 < a1;
}

template <class T>
void run(bool reference, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const py::array& a,
         int64_t lda, const py::array& b, int64_t ldb, double beta, py::array& c, int64_t ldc, const py::object& bias,
         Act act, double slope) {
  const T* bp = bias.is_none() ? nullptr : cptr<T>(bias.cast<py::array>());
  const T* ap = cptr<T>(a);
  const T* bb = cptr<T>(b);
  T* cp = ptr<T>(c);
  py::gil_scoped_release release;
  if (reference)
    pydl::gemm::gemm_ref<T>(ta, tb, M, N, K, T(alpha), ap, lda, bb, ldb, T(beta), cp, ldc, bp, act, T(slope));
  else
    pydl::gemm::gemm<T>(ta, tb, M, N, K, T(alpha), ap, lda, bb, ldb, T(beta), cp, ldc, bp, act, T(slope));
}

py::array as_array(const py::object& x, const char* name) {
  if (!py::isinstance<py::array>(x))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray, got " +
                         py::str(py::type::of(x).attr("__name__")).cast<std::string>());
  return x.cast<py::array>();
}

void gemm_entry(bool reference, const py::object& a_obj, const py::object& b_obj, const py::object& c_obj,
                bool trans_a, bool trans_b, double alpha, double beta, const py::object& bias,
                const std::string& activation, double negative_slope) {
  const py::array a = as_array(a_obj, "a"), b = as_array(b_obj, "b");
  py::array c = as_array(c_obj, "c");
  const DType dt = require_float(a, "a");
  require_same_dtype(a, "a", b, "b");
  require_same_dtype(a, "a", c, "c");
  require_ndim(a, "a", 2);
  require_ndim(b, "b", 2);
  require_ndim(c, "c", 2);
  require_writeable(c, "c");
  const int64_t M = trans_a ? a.shape(1) : a.shape(0), K = trans_a ? a.shape(0) : a.shape(1);
  const int64_t Kb = trans_b ? b.shape(1) : b.shape(0), N = trans_b ? b.shape(0) : b.shape(1);
  if (Kb != K)
    throw py::value_error("b: inner sizes differ: op(a) is " + std::to_string(M) + "x" + std::to_string(K) +
                          " but op(b) is " + std::to_string(Kb) + "x" + std::to_string(N));
  if (c.shape(0) != M || c.shape(1) != N)
    throw py::value_error("c: expected shape (" + std::to_string(M) + ", " + std::to_string(N) + "), got " +
                          shape_str(c));
  const int64_t lda = leading_dim(a, "a"), ldb = leading_dim(b, "b"), ldc = leading_dim(c, "c");
  if (overlaps(c, a)) throw py::value_error("c: must not share memory with a");
  if (overlaps(c, b)) throw py::value_error("c: must not share memory with b");
  if (!bias.is_none()) {
    py::array bv = as_array(bias, "bias");
    require_same_dtype(a, "a", bv, "bias");
    require_ndim(bv, "bias", 1);
    if (bv.shape(0) != N)
      throw py::value_error("bias: expected shape (" + std::to_string(N) + ",), got " + shape_str(bv));
    if (N > 1 && bv.strides(0) != bv.itemsize()) throw py::value_error("bias: expected a contiguous array");
    const char *c0, *c1;  // the epilogue reads bias while writing c
    byte_range(c, &c0, &c1);
    const char* b0 = static_cast<const char*>(bv.data());
    if (N > 0 && c0 < c1 && c0 < b0 + N * bv.itemsize() && b0 < c1)
      throw py::value_error("c: must not share memory with bias");
  }
  Act act;
  if (!pydl::ops::parse_act(activation.c_str(), &act))
    throw py::value_error("activation: expected 'none', 'relu', 'leaky_relu', 'sigmoid', 'tanh', 'gelu' or "
                          "'gelu_tanh', got '" + activation + "'");
  if (dt == DType::f32)
    run<float>(reference, trans_a, trans_b, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc, bias, act, negative_slope);
  else
    run<double>(reference, trans_a, trans_b, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc, bias, act, negative_slope);
}

constexpr const char* kDoc = R"(c = act(alpha * op(a) @ op(b) + beta * c + bias), written into c in place.

op(x) is x, or x.T when trans_x. a, b, c: 2-D, same float dtype (float32/float64), unit inner
stride (row stride may exceed the row: leading dimension). bias: 1-D, length N, or None.
beta == 0 ignores the old contents of c (NaNs there do not propagate). activation: 'none',
'relu', 'leaky_relu' (negative_slope), 'sigmoid', 'tanh', 'gelu' (erf), 'gelu_tanh'.
c must not share memory with a or b. Returns None.)";

}  // namespace

void register_gemm(py::module_& m) {
  m.def("gemm",
        [](const py::object& a, const py::object& b, const py::object& c, bool trans_a, bool trans_b, double alpha,
           double beta, const py::object& bias, const std::string& activation, double negative_slope) {
          gemm_entry(false, a, b, c, trans_a, trans_b, alpha, beta, bias, activation, negative_slope);
        },
        py::arg("a"), py::arg("b"), py::arg("c"), py::arg("trans_a") = false, py::arg("trans_b") = false,
        py::arg("alpha") = 1.0, py::arg("beta") = 0.0, py::arg("bias") = py::none(), py::arg("activation") = "none",
        py::arg("negative_slope") = 0.01, kDoc);
  m.def("gemm_reference",
        [](const py::object& a, const py::object& b, const py::object& c, bool trans_a, bool trans_b, double alpha,
           double beta, const py::object& bias, const std::string& activation, double negative_slope) {
          gemm_entry(true, a, b, c, trans_a, trans_b, alpha, beta, bias, activation, negative_slope);
        },
        py::arg("a"), py::arg("b"), py::arg("c"), py::arg("trans_a") = false, py::arg("trans_b") = false,
        py::arg("alpha") = 1.0, py::arg("beta") = 0.0, py::arg("bias") = py::none(), py::arg("activation") = "none",
        py::arg("negative_slope") = 0.01, "The naive reference of gemm (same arguments): the test oracle.");
}
