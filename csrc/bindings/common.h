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

// Reads the descriptor's fields only (no Python API call, so it is safe with the GIL released).
// Compares type numbers rather than dtype object identity: unpickled arrays carry their own
// (equal) dtype objects. Byte-swapped arrays count as "other".
inline const py::detail::PyArrayDescr_Proxy* descr_of(const py::array& a) {
  return py::detail::array_descriptor_proxy(py::detail::array_proxy(a.ptr())->descr);
}

inline bool byte_swapped(const py::detail::PyArrayDescr_Proxy* d) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return d->byteorder == '<';
#else
  return d->byteorder == '>';
#endif
}

inline DType dtype_of(const py::array& a) {
  const auto* d = descr_of(a);
  if (byte_swapped(d)) return DType::other;
  if (d->type_num == py::detail::npy_api::NPY_FLOAT_) return DType::f32;
  if (d->type_num == py::detail::npy_api::NPY_DOUBLE_) return DType::f64;
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

// Equal dtypes (type number and byte order), whatever the dtype objects' identity.
inline bool same_dtype(const py::array& a, const py::array& b) {
  const auto *da = descr_of(a), *db = descr_of(b);
  return da->type_num == db->type_num && byte_swapped(da) == byte_swapped(db);
}

// Native-order int64 (numpy's long or long long, whichever is 64-bit here).
inline bool is_int64(const py::array& a) {
  using api = py::detail::npy_api;
  const auto* d = descr_of(a);
  if (byte_swapped(d)) return false;
  return (d->type_num == api::NPY_LONG_ && sizeof(long) == 8) ||
         (d->type_num == api::NPY_LONGLONG_ && sizeof(long long) == 8);
}

inline void require_same_dtype(const py::array& a, const char* an, const py::array& b, const char* bn) {
  if (!same_dtype(a, b))
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

// An ndarray argument (no conversion of lists or scalars), else TypeError naming it.
inline py::array array_arg(const py::handle& o, const char* name) {
  if (!py::isinstance<py::array>(o))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray, got " + std::string(Py_TYPE(o.ptr())->tp_name));
  return py::reinterpret_borrow<py::array>(o);
}

// Byte ranges of two C-contiguous arrays intersect (empty arrays share nothing).
inline bool shares_bytes(const py::array& a, const py::array& b) {
  if (a.nbytes() == 0 || b.nbytes() == 0) return false;
  const char* a0 = static_cast<const char*>(a.data());
  const char* b0 = static_cast<const char*>(b.data());
  return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

// An output of a kernel that reads `in` while writing `out` (C-contiguous both) must not share memory with it.
inline void require_disjoint(const py::array& out, const char* out_name, const py::array& in, const char* in_name) {
  if (shares_bytes(out, in))
    throw py::value_error(std::string(out_name) + ": must not share memory with " + in_name);
}

template <class T>
T* ptr(py::array& a) { return static_cast<T*>(a.mutable_data()); }
template <class T>
const T* cptr(const py::array& a) { return static_cast<const T*>(a.data()); }

}  // namespace pydl::bind
