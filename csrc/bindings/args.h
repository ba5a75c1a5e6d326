// The argument layer of every binding file: take an argument, check it, get a typed pointer.
//
// A binding reads like this (softmax_forward):
//
//   Arg x = Arg(x_obj, "x").floating().contiguous();
//   Arg out = Arg(out_obj, "out").like(x).writeable().same_or_disjoint(x);
//   dispatch_float(x.dtype(), [&](auto t) {
//     using T = decltype(t);
//     const T* xp = x.cptr<T>();
//     T* yp = out.ptr<T>();
//     py::gil_scoped_release nogil;
//     pydl::ops::softmax_forward<T>(yp, xp, rows, cols, log);
//   });
//
// Every failed check raises TypeError (wrong type or dtype) or ValueError (anything else) whose
// message starts with the argument's name, then says what was expected and what came:
// "out: expected shape (4,3) (as x), got (3,4)". Messages are built only on failure (the
// optimizer bindings check every array of every step). Optional arguments (None allowed) pass
// every check while absent and give null pointers.
//
// Aliasing, two rules:
//   disjoint_from / require_disjoint   the arrays share no byte (kernels with restrict pointers,
//                                      or that read an input after writing an output)
//   same_or_disjoint                   exactly the same memory or no byte in common (elementwise
//                                      kernels may run in place, not on a shifted view)
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "ops/activation.h"

namespace pydl::bind {
namespace py = pybind11;

enum class DType { f32, f64, other };

// Calls f(float{}) or f(double{}) for a float32 / float64 argument (checked before: never other).
template <class F>
decltype(auto) dispatch_float(DType dt, F&& f) {
  if (dt == DType::f32) return f(float{});
  return f(double{});
}

// Dtype of an array, read from its descriptor (type number, byte order; not the dtype object's
// identity: unpickled arrays carry their own equal dtype objects). Byte-swapped arrays are "other".
DType dtype_of(const py::array& a);
bool same_dtype(const py::array& a, const py::array& b);
bool is_int64(const py::array& a);  // native-order 64-bit signed integer
std::string dtype_str(const py::array& a);
std::string shape_str(const py::array& a);  // "(4,3)", "(4,)", "()"

// The activation argument: one of none, relu, leaky_relu, sigmoid, tanh, gelu, gelu_tanh.
pydl::ops::Act activation_arg(const std::string& name);

// A probability in [0, 1] (argument `name`).
double probability_arg(double p, const char* name);

// The optimizer step counts t >= 1 of n tensors (argument "steps", one per parameter).
void check_steps(const std::vector<int64_t>& steps, size_t n);

// Byte range [lo, hi) an array touches (any strides; empty arrays touch nothing: lo == hi).
struct Extent {
  uintptr_t lo = 0, hi = 0;
};
Extent extent_of(const py::array& a);

// One ndarray argument (or None, for optional ones) under check.
class Arg {
 public:
  // A required ndarray; `index` >= 0 names it as an element of a list argument: "grads[3]".
  Arg(const py::handle& obj, const char* name, int64_t index = -1);
  // An ndarray or None.
  static Arg optional(const py::handle& obj, const char* name, int64_t index = -1);

  bool present() const { return present_; }
  const py::array& array() const { return array_; }
  DType dtype() const { return dtype_of(array_); }
  int64_t ndim() const { return array_.ndim(); }
  int64_t dim(int64_t i) const { return array_.shape(i); }
  int64_t size() const { return array_.size(); }
  std::string label() const;  // the name in messages

  Arg& floating();                                      // float32 or float64
  Arg& dtype_as(const Arg& ref);                        // ref's dtype
  Arg& rank(int64_t ndim);                              // exactly ndim dimensions
  Arg& shape(std::initializer_list<int64_t> shape);     // exactly this shape
  Arg& shape_as(const Arg& ref);                        // ref's shape
  Arg& contiguous();                                    // C-contiguous
  Arg& writeable();
  Arg& like(const Arg& ref) { return dtype_as(ref).shape_as(ref).contiguous(); }  // dtype, shape, layout of ref
  Arg& disjoint_from(const Arg& other);
  Arg& same_or_disjoint(const Arg& other);

  // Data pointers (null when absent); take them before releasing the GIL.
  template <class T>
  const T* cptr() const {
    return present_ ? static_cast<const T*>(array_.data()) : nullptr;
  }
  template <class T>
  T* ptr() const {  // after writeable()
    return present_ ? static_cast<T*>(const_cast<void*>(array_.data())) : nullptr;
  }

 private:
  // (array_ is initialised here, never default-constructed: that would allocate an empty ndarray.)
  Arg(py::array array, const char* name, int64_t index, bool present)
      : array_(std::move(array)), name_(name), index_(index), present_(present) {}
  [[noreturn]] void fail_value(const std::string& what) const;
  [[noreturn]] void fail_type(const std::string& what) const;

  py::array array_;
  const char* name_ = "";
  int64_t index_ = -1;
  bool present_ = false;
};

// The arrays of list argument `name` (a list or tuple of ndarrays, and None where allow_none);
// expected_len < 0 accepts any length. Elements are named "name[i]".
std::vector<Arg> array_list(const py::handle& obj, const char* name, py::ssize_t expected_len,
                            bool allow_none = false);

// No array of `written` shares a byte with any other array of `written` or `read` (absent ones
// are skipped; arrays of `read` may share memory with each other). Sorts the byte ranges once:
// fine for the long lists of the optimizer steps.
void require_disjoint(const std::vector<const Arg*>& written, const std::vector<const Arg*>& read);

// The byte ranges of a fixed set of arrays (pairwise disjoint: require_disjoint(arrays, {}) when
// made), kept sorted so that each later call checks in O(log n) that an argument shares no byte
// with any of them (a plan's parameters and state against each call's batch).
class DisjointSet {
 public:
  explicit DisjointSet(const std::vector<const Arg*>& arrays);
  // ValueError "<a>: must not share memory with <the array it overlaps>" unless a is disjoint from all.
  void require_disjoint_from(const Arg& a) const;

 private:
  struct Range {
    Extent e;
    std::string label;
  };
  std::vector<Range> ranges_;  // by address; disjoint, so ordered by both ends
};

}  // namespace pydl::bind
