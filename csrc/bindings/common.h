// Helpers shared by the binding files: argument checks that raise Python TypeError/ValueError
// naming the argument, and typed data pointers. Kernels run with the GIL released
// (py::gil_scoped_release around the call).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

namespace pydl::bind {
namespace py = pybind11;

enum class DType { f32, f64, other };

inline DType dtype_of(const py::array& a) {
  if (a.dtype().equal(py::dtype::of<float>())) return DType::f32;  // equal, not is: unpickled arrays carry their own dtype objects
  if (a.dtype().equal(py::dtype::of<double>())) return DType::f64;
  return DType::other;
}

inline std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += std::to_string(a.shape(i)) + (a.ndim() == 1 || i + 1 < a.ndim() ? "," : "");
  return s + ")";
}

// Requires float32 or float64; returns it.
inline DType require_float(const py::array& a, const char* name) {
  DType d = dtype_of(a);
  if (d == DType::other) throw py::type_error(std::string(name) + ": expected float32 or float64, got " + dtype_str(a));
  return d;
}

inline void require_same_dtype(const py::array& a, const char* an, const py::array& b, const char* bn) {
  if (!a.dtype().equal(b.dtype()))
    throw py::type_error(std::string(bn) + ": expected dtype " + dtype_str(a) + " (as " + an + "), got " + dtype_str(b));
}

inline void require_ndim(const py::array& a, const char* name, py::ssize_t ndim) {
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + ": expected a " + std::to_string(ndim) + "-D array, got shape " + shape_str(a));
}

inline void require_c_contiguous(const py::array& a, const char* name) {
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array");
}

inline void require_writeable(const py::array& a, const char* name) {
  if (!a.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
}

template <class T>
T* ptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }
template <class T>
const T* cptr(const py::array& a) { return static_cast<const T*>(a.data()); }

}  // namespace pydl::bind
