// pydl._C bindings of the convolution and pooling kernels (csrc/conv). pydl.ops validates user
// input with friendly messages; the checks here guard the kernels: every array's dtype, shape
// (derived from the geometry), contiguity, writeability and aliasing, errors naming the argument.
// Each binding: check -> take pointers -> release the GIL -> call the kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <string>
#include <vector>

#include "bindings/common.h"
#include "conv/conv.h"
#include "conv/pool.h"

namespace py = pybind11;
using namespace pydl::bind;
using pydl::ops::Act;
using Pair = std::array<int64_t, 2>;
using Quad = std::array<int64_t, 4>;

namespace {

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s = "(";
  for (size_t i = 0; i < d.size(); ++i) s += std::to_string(d[i]) + (d.size() == 1 || i + 1 < d.size() ? "," : "");
  return s + ")";
}

// `a` is an ndarray of dtype `dt`, C-contiguous, of exactly `shape` (and writeable for outputs).
py::array check(const py::handle& o, const char* name, DType dt, const std::vector<int64_t>& shape, bool out = false) {
  py::array a = array_arg(o, name);
  if (dtype_of(a) != dt)
    throw py::type_error(std::string(name) + ": expected " + (dt == DType::f32 ? "float32" : "float64") + ", got " + dtype_str(a));
  bool ok = a.ndim() == py::ssize_t(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) throw py::value_error(std::string(name) + ": expected shape " + dims_str(shape) + ", got " + shape_str(a));
  require_c_contiguous(a, name);
  if (out) require_writeable(a, name);
  return a;
}

void positive(const Pair& p, const char* name) {
  if (p[0] < 1 || p[1] < 1) throw py::value_error(std::string(name) + ": must be positive, got " + dims_str({p[0], p[1]}));
}

// Geometry of a convolution from x (N, C, H, W), weight (OC, C/G, KH, KW) and the options.
pydl::conv::Conv2dShape conv_shape(const py::array& x, const py::array& w, const Pair& stride, const Quad& pad,
                                   const Pair& dil, int64_t groups) {
  require_ndim(x, "input", 4);
  require_ndim(w, "weight", 4);
  positive(stride, "stride");
  positive(dil, "dilation");
  for (int64_t p : pad)
    if (p < 0) throw py::value_error("padding: must be non-negative, got " + dims_str({pad[0], pad[1], pad[2], pad[3]}));
  if (groups < 1) throw py::value_error("groups: must be positive, got " + std::to_string(groups));
  pydl::conv::Conv2dShape s{x.shape(0), x.shape(1), x.shape(2), x.shape(3), w.shape(0), w.shape(2), w.shape(3),
                            0, 0, stride[0], stride[1], pad[0], pad[2], dil[0], dil[1], groups};
  if (s.C % groups || s.OC % groups || w.shape(1) * groups != s.C)
    throw py::value_error("weight: shape " + shape_str(w) + " does not fit input " + shape_str(x) + " with groups=" +
                          std::to_string(groups));
  const int64_t eh = s.H + pad[0] + pad[1] - s.dh * (s.KH - 1) - 1, ew = s.W + pad[2] + pad[3] - s.dw * (s.KW - 1) - 1;
  if (s.KH < 1 || s.KW < 1 || eh < 0 || ew < 0)
    throw py::value_error("weight: kernel " + shape_str(w) + " (dilated) is larger than the padded input " + shape_str(x));
  s.OH = eh / s.sh + 1;
  s.OW = ew / s.sw + 1;
  return s;
}

Act conv_act(const std::string& a) {
  if (a == "none") return Act::none;
  if (a == "relu") return Act::relu;
  throw py::value_error("activation: expected 'none' or 'relu', got '" + a + "'");
}

void disjoint(const py::array& out, const char* on, std::initializer_list<std::pair<const char*, py::handle>> ins) {
  for (auto& [n, h] : ins)
    if (!h.is_none()) require_disjoint(out, on, py::reinterpret_borrow<py::array>(h), n);
}

template <class T, bool Ref>
void conv_forward_t(const py::array& x, const py::array& w, const py::object& b, const py::object& y_,
                    const pydl::conv::Conv2dShape& s, Act act, DType dt) {
  check(w, "weight", dt, {s.OC, s.C / s.groups, s.KH, s.KW});
  py::array y = check(y_, "out", dt, {s.N, s.OC, s.OH, s.OW}, true);
  const T* bp = b.is_none() ? nullptr : cptr<T>(check(b, "bias", dt, {s.OC}));
  disjoint(y, "out", {{"input", x}, {"weight", w}, {"bias", b}});
  const T *xp = cptr<T>(x), *wp = cptr<T>(w);
  T* yp = ptr<T>(y);
  py::gil_scoped_release nogil;
  (Ref ? pydl::conv::conv2d_forward_ref<T> : pydl::conv::conv2d_forward<T>)(yp, xp, wp, bp, s, act);
}

template <bool Ref>
void conv_forward(const py::handle& x_, const py::handle& w_, const py::object& b, const py::object& y,
                  const Pair& stride, const Quad& pad, const Pair& dil, int64_t groups, const std::string& act) {
  py::array x = array_arg(x_, "input"), w = array_arg(w_, "weight");
  DType dt = require_float(x, "input");
  auto s = conv_shape(x, w, stride, pad, dil, groups);
  check(x, "input", dt, {s.N, s.C, s.H, s.W});
  if (dt == DType::f32) conv_forward_t<float, Ref>(x, w, b, y, s, conv_act(act), dt);
  else conv_forward_t<double, Ref>(x, w, b, y, s, conv_act(act), dt);
}

template <class T, bool Ref>
void conv_backward_t(const py::array& dy_, const py::array& x, const py::array& w, const py::object& y,
                     const py::object& dx_, const py::object& dw_, const py::object& db_, const pydl::conv::Conv2dShape& s,
                     Act act, bool acc_w, bool acc_b, DType dt) {
  check(w, "weight", dt, {s.OC, s.C / s.groups, s.KH, s.KW});
  py::array dy = check(dy_, "grad_out", dt, {s.N, s.OC, s.OH, s.OW});
  const T* yp = nullptr;
  if (act == Act::relu) {
    if (y.is_none()) throw py::value_error("out: the forward output is needed for activation='relu'");
    yp = cptr<T>(check(y, "out", dt, {s.N, s.OC, s.OH, s.OW}));
  }
  py::array dw = check(dw_, "grad_weight", dt, {s.OC, s.C / s.groups, s.KH, s.KW}, true);
  T *dxp = nullptr, *dbp = nullptr;
  if (!dx_.is_none()) {
    py::array dx = check(dx_, "grad_in", dt, {s.N, s.C, s.H, s.W}, true);
    dxp = ptr<T>(dx);
  }
  if (!db_.is_none()) {
    py::array db = check(db_, "grad_bias", dt, {s.OC}, true);
    dbp = ptr<T>(db);
  }
  std::initializer_list<std::pair<const char*, py::handle>> ins = {
      {"grad_out", dy}, {"input", x}, {"weight", w}, {"out", act == Act::relu ? y : py::none()}};
  disjoint(dw, "grad_weight", ins);
  if (dxp) {
    disjoint(py::reinterpret_borrow<py::array>(dx_), "grad_in", ins);
    disjoint(py::reinterpret_borrow<py::array>(dx_), "grad_in", {{"grad_weight", dw}, {"grad_bias", db_}});
  }
  if (dbp) {
    disjoint(py::reinterpret_borrow<py::array>(db_), "grad_bias", ins);
    disjoint(py::reinterpret_borrow<py::array>(db_), "grad_bias", {{"grad_weight", dw}});
  }
  const T *dyp = cptr<T>(dy), *xp = cptr<T>(x), *wp = cptr<T>(w);
  T* dwp = ptr<T>(dw);
  py::gil_scoped_release nogil;
  (Ref ? pydl::conv::conv2d_backward_ref<T> : pydl::conv::conv2d_backward<T>)(dxp, dwp, dbp, dyp, xp, wp, yp, s, act,
                                                                              acc_w, acc_b);
}

template <bool Ref>
void conv_backward(const py::handle& dy, const py::handle& x_, const py::handle& w_, const py::object& y,
                   const py::object& dx, const py::object& dw, const py::object& db, const Pair& stride,
                   const Quad& pad, const Pair& dil, int64_t groups, const std::string& act, bool acc_w, bool acc_b) {
  py::array x = array_arg(x_, "input"), w = array_arg(w_, "weight");
  array_arg(dy, "grad_out");
  DType dt = require_float(x, "input");
  auto s = conv_shape(x, w, stride, pad, dil, groups);
  check(x, "input", dt, {s.N, s.C, s.H, s.W});
  if (dt == DType::f32)
    conv_backward_t<float, Ref>(py::reinterpret_borrow<py::array>(dy), x, w, y, dx, dw, db, s, conv_act(act), acc_w, acc_b, dt);
  else
    conv_backward_t<double, Ref>(py::reinterpret_borrow<py::array>(dy), x, w, y, dx, dw, db, s, conv_act(act), acc_w, acc_b, dt);
}

// ---- pooling -------------------------------------------------------------------------------

// Geometry of a windowed pooling of x (N, C, H, W).
pydl::conv::Pool2dShape pool_shape(const py::array& x, const Pair& k, const Pair& stride, const Pair& pad) {
  require_ndim(x, "input", 4);
  positive(k, "kernel_size");
  positive(stride, "stride");
  if (pad[0] < 0 || pad[1] < 0 || 2 * pad[0] > k[0] || 2 * pad[1] > k[1])
    throw py::value_error("padding: must be between 0 and half the kernel size " + dims_str({k[0], k[1]}) + ", got " +
                          dims_str({pad[0], pad[1]}));
  pydl::conv::Pool2dShape s{x.shape(0) * x.shape(1), x.shape(2), x.shape(3), 0, 0, k[0], k[1],
                            stride[0], stride[1], pad[0], pad[1]};
  const int64_t eh = s.H + 2 * pad[0] - k[0], ew = s.W + 2 * pad[1] - k[1];
  if (eh < 0 || ew < 0)
    throw py::value_error("kernel_size: " + dims_str({k[0], k[1]}) + " is larger than the padded input " + shape_str(x));
  s.OH = eh / s.sh + 1;
  s.OW = ew / s.sw + 1;
  return s;
}

template <class F>
void by_dtype(DType dt, const F& f) {
  if (dt == DType::f32) f(float(0));
  else f(double(0));
}

void max_pool_forward(const py::handle& x_, const py::object& y_, const py::object& idx_, const Pair& k,
                      const Pair& stride, const Pair& pad) {
  py::array x = array_arg(x_, "input");
  DType dt = require_float(x, "input");
  auto s = pool_shape(x, k, stride, pad);
  check(x, "input", dt, {x.shape(0), x.shape(1), s.H, s.W});
  py::array y = check(y_, "out", dt, {x.shape(0), x.shape(1), s.OH, s.OW}, true);
  py::array idx = array_arg(idx_, "indices");
  if (!is_int64(idx)) throw py::type_error("indices: expected int64, got " + dtype_str(idx));
  require_ndim(idx, "indices", 4);
  if (idx.shape(0) != y.shape(0) || idx.shape(1) != y.shape(1) || idx.shape(2) != s.OH || idx.shape(3) != s.OW)
    throw py::value_error("indices: expected the shape of out " + shape_str(y) + ", got " + shape_str(idx));
  require_c_contiguous(idx, "indices");
  require_writeable(idx, "indices");
  disjoint(y, "out", {{"input", x}});
  disjoint(idx, "indices", {{"input", x}, {"out", y}});
  int64_t* ip = ptr<int64_t>(idx);
  by_dtype(dt, [&](auto z) {
    using T = decltype(z);
    const T* xp = cptr<T>(x);
    T* yp = ptr<T>(y);
    py::gil_scoped_release nogil;
    pydl::conv::max_pool2d_forward<T>(yp, ip, xp, s);
  });
}

void max_pool_backward(const py::handle& dy_, const py::handle& idx_, const py::object& dx_) {
  py::array dy = array_arg(dy_, "grad_out"), dx = array_arg(dx_, "grad_in"), idx = array_arg(idx_, "indices");
  DType dt = require_float(dy, "grad_out");
  require_ndim(dy, "grad_out", 4);
  require_ndim(dx, "grad_in", 4);
  check(dy, "grad_out", dt, {dy.shape(0), dy.shape(1), dy.shape(2), dy.shape(3)});
  check(dx, "grad_in", dt, {dy.shape(0), dy.shape(1), dx.shape(2), dx.shape(3)}, true);
  if (!is_int64(idx)) throw py::type_error("indices: expected int64, got " + dtype_str(idx));
  if (idx.ndim() != 4 || idx.shape(0) != dy.shape(0) || idx.shape(1) != dy.shape(1) || idx.shape(2) != dy.shape(2) ||
      idx.shape(3) != dy.shape(3))
    throw py::value_error("indices: expected the shape of grad_out " + shape_str(dy) + ", got " + shape_str(idx));
  require_c_contiguous(idx, "indices");
  disjoint(dx, "grad_in", {{"grad_out", dy}, {"indices", idx}});
  pydl::conv::Pool2dShape s{dx.shape(0) * dx.shape(1), dx.shape(2), dx.shape(3), dy.shape(2), dy.shape(3), 1, 1, 1, 1, 0, 0};
  const int64_t* ip = cptr<int64_t>(idx);
  bool ok = true;
  by_dtype(dt, [&](auto z) {
    using T = decltype(z);
    const T* dyp = cptr<T>(dy);
    T* dxp = ptr<T>(dx);
    py::gil_scoped_release nogil;
    ok = pydl::conv::max_pool2d_backward<T>(dxp, dyp, ip, s);
  });
  if (!ok) throw py::value_error("indices: an index lies outside the input plane of " + std::to_string(s.H * s.W));
}

// avg (adaptive=false, with k/stride/pad) or adaptive average pooling, forward or backward.
template <bool Adaptive, bool Backward>
void avg_pool(const py::handle& in_, const py::object& out_, const Pair& k, const Pair& stride, const Pair& pad) {
  const char* in_name = Backward ? "grad_out" : "input";
  const char* out_name = Backward ? "grad_in" : "out";
  py::array in = array_arg(in_, in_name), out = array_arg(out_, out_name);
  DType dt = require_float(in, in_name);
  require_ndim(in, in_name, 4);
  require_ndim(out, out_name, 4);
  const py::array& big = Backward ? out : in;    // (N, C, H, W)
  const py::array& small = Backward ? in : out;  // (N, C, OH, OW)
  pydl::conv::Pool2dShape s{};
  if (Adaptive) {
    s = {big.shape(0) * big.shape(1), big.shape(2), big.shape(3), small.shape(2), small.shape(3), 1, 1, 1, 1, 0, 0};
    if ((s.H < 1 || s.W < 1 || s.OH < 1 || s.OW < 1) && s.P > 0)
      throw py::value_error(std::string(in_name) + ": adaptive pooling needs non-empty input and output planes, got " +
                            shape_str(big) + " -> " + shape_str(small));
  } else {
    s = pool_shape(big, k, stride, pad);
  }
  check(in, in_name, dt, Backward ? std::vector<int64_t>{big.shape(0), big.shape(1), s.OH, s.OW}
                                  : std::vector<int64_t>{in.shape(0), in.shape(1), s.H, s.W});
  check(out, out_name, dt, Backward ? std::vector<int64_t>{small.shape(0), small.shape(1), s.H, s.W}
                                    : std::vector<int64_t>{in.shape(0), in.shape(1), s.OH, s.OW}, true);
  disjoint(out, out_name, {{in_name, in}});
  by_dtype(dt, [&](auto z) {
    using T = decltype(z);
    const T* ip = cptr<T>(in);
    T* op = ptr<T>(out);
    py::gil_scoped_release nogil;
    if (Adaptive && Backward) pydl::conv::adaptive_avg_pool2d_backward<T>(op, ip, s);
    else if (Adaptive) pydl::conv::adaptive_avg_pool2d_forward<T>(op, ip, s);
    else if (Backward) pydl::conv::avg_pool2d_backward<T>(op, ip, s);
    else pydl::conv::avg_pool2d_forward<T>(op, ip, s);
  });
}

}  // namespace

void register_conv(py::module_& m) {
  const char* fwd_doc =
      "out = act(conv2d(input, weight) + bias), NCHW; padding is (top, bottom, left, right); act 'none' or 'relu'.";
  const char* bwd_doc =
      "Gradients of conv2d_forward: grad_in (or None), grad_weight (+= with accumulate_weight), grad_bias (or None).";
  m.def("conv2d_forward", &conv_forward<false>, py::arg("input"), py::arg("weight"), py::arg("bias"), py::arg("out"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("activation") = "none",
        fwd_doc);
  m.def("conv2d_forward_reference", &conv_forward<true>, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("out"), py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        py::arg("activation") = "none", "The naive direct-loop conv2d_forward (the test oracle).");
  m.def("conv2d_backward", &conv_backward<false>, py::arg("grad_out"), py::arg("input"), py::arg("weight"),
        py::arg("out"), py::arg("grad_in"), py::arg("grad_weight"), py::arg("grad_bias"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("activation") = "none",
        py::arg("accumulate_weight") = false, py::arg("accumulate_bias") = false, bwd_doc);
  m.def("conv2d_backward_reference", &conv_backward<true>, py::arg("grad_out"), py::arg("input"), py::arg("weight"),
        py::arg("out"), py::arg("grad_in"), py::arg("grad_weight"), py::arg("grad_bias"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("activation") = "none",
        py::arg("accumulate_weight") = false, py::arg("accumulate_bias") = false,
        "The naive direct-loop conv2d_backward (the test oracle).");
  m.def("max_pool2d_forward", &max_pool_forward, py::arg("input"), py::arg("out"), py::arg("indices"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        "Max pooling (padding -inf); indices (int64) into each input plane, for max_pool2d_backward.");
  m.def("max_pool2d_backward", &max_pool_backward, py::arg("grad_out"), py::arg("indices"), py::arg("grad_in"),
        "grad_in = scatter-add of grad_out at indices (grad_in overwritten).");
  m.def("avg_pool2d_forward", &avg_pool<false, false>, py::arg("input"), py::arg("out"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), "Average pooling, count_include_pad=True.");
  m.def("avg_pool2d_backward", &avg_pool<false, true>, py::arg("grad_out"), py::arg("grad_in"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), "Gradient of avg_pool2d_forward.");
  m.def(
      "adaptive_avg_pool2d_forward",
      [](const py::handle& x, const py::object& y) { avg_pool<true, false>(x, y, {1, 1}, {1, 1}, {0, 0}); },
      py::arg("input"), py::arg("out"), "Adaptive average pooling to out's spatial size (PyTorch's bins).");
  m.def(
      "adaptive_avg_pool2d_backward",
      [](const py::handle& dy, const py::object& dx) { avg_pool<true, true>(dy, dx, {1, 1}, {1, 1}, {0, 0}); },
      py::arg("grad_out"), py::arg("grad_in"), "Gradient of adaptive_avg_pool2d_forward.");
}
