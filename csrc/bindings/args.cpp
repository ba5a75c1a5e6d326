// The argument checks of args.h.
#include "bindings/args.h"

#include <algorithm>

namespace pydl::bind {
namespace {

using Descr = py::detail::PyArrayDescr_Proxy;

// Reads the descriptor's fields only (no Python call).
const Descr* descr_of(const py::array& a) {
  return py::detail::array_descriptor_proxy(py::detail::array_proxy(a.ptr())->descr);
}

bool byte_swapped(const Descr* d) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return d->byteorder == '<';
#else
  return d->byteorder == '>';
#endif
}

std::string type_name(const py::handle& o) { return Py_TYPE(o.ptr())->tp_name; }

std::string shape_list_str(std::initializer_list<int64_t> shape) {
  std::string s = "(";
  for (int64_t d : shape) s += std::to_string(d) + ",";
  if (shape.size() > 1) s.pop_back();
  return s + ")";
}

}  // namespace

DType dtype_of(const py::array& a) {
  const Descr* d = descr_of(a);
  if (byte_swapped(d)) return DType::other;
  if (d->type_num == py::detail::npy_api::NPY_FLOAT_) return DType::f32;
  if (d->type_num == py::detail::npy_api::NPY_DOUBLE_) return DType::f64;
  return DType::other;
}

bool same_dtype(const py::array& a, const py::array& b) {
  const Descr *da = descr_of(a), *db = descr_of(b);
  return da->type_num == db->type_num && byte_swapped(da) == byte_swapped(db);
}

bool is_int64(const py::array& a) {
  using api = py::detail::npy_api;
  const Descr* d = descr_of(a);
  if (byte_swapped(d)) return false;
  return (d->type_num == api::NPY_LONG_ && sizeof(long) == 8) ||
         (d->type_num == api::NPY_LONGLONG_ && sizeof(long long) == 8);
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += std::to_string(a.shape(i)) + (a.ndim() == 1 || i + 1 < a.ndim() ? "," : "");
  return s + ")";
}

pydl::ops::Act activation_arg(const std::string& name) {
  pydl::ops::Act act;
  if (pydl::ops::parse_act(name.c_str(), &act)) return act;
  std::string names;
  for (int i = 0; i < pydl::ops::kNumActs; ++i)
    names += std::string(i ? ", '" : "'") + pydl::ops::act_name(static_cast<pydl::ops::Act>(i)) + "'";
  throw py::value_error("activation: expected an activation kind among " + names + ", got '" + name + "'");
}

double probability_arg(double p, const char* name) {
  if (!(p >= 0.0 && p <= 1.0))
    throw py::value_error(std::string(name) + ": expected a probability in [0, 1], got " + std::to_string(p));
  return p;
}

void check_steps(const std::vector<int64_t>& steps, size_t n) {
  if (steps.size() != n)
    throw py::value_error("steps: expected " + std::to_string(n) + " step counts (one per parameter), got " +
                          std::to_string(steps.size()));
  for (size_t i = 0; i < n; ++i)
    if (steps[i] < 1)
      throw py::value_error("steps[" + std::to_string(i) + "]: expected a step count >= 1, got " +
                            std::to_string(steps[i]));
}

Extent extent_of(const py::array& a) {
  // (read from the array's struct: every binding call takes the extents of all its arrays)
  const auto* p = py::detail::array_proxy(a.ptr());
  Extent e;
  e.lo = e.hi = reinterpret_cast<uintptr_t>(p->data);
  for (int i = 0; i < p->nd; ++i)
    if (p->dimensions[i] == 0) return e;
  for (int i = 0; i < p->nd; ++i) {
    const py::ssize_t span = (p->dimensions[i] - 1) * p->strides[i];
    if (span < 0) e.lo += span;
    else e.hi += span;
  }
  e.hi += a.itemsize();
  return e;
}

static bool overlap(const Extent& a, const Extent& b) { return a.lo < b.hi && b.lo < a.hi; }

// obj as an ndarray, or TypeError naming argument `name` (element `index` of it when >= 0).
static py::array ndarray_arg(const py::handle& obj, const char* name, int64_t index) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error((index < 0 ? std::string(name) : std::string(name) + "[" + std::to_string(index) + "]") +
                         ": expected a numpy.ndarray, got " + type_name(obj));
  return py::reinterpret_borrow<py::array>(obj);
}

Arg::Arg(const py::handle& obj, const char* name, int64_t index)
    : Arg(ndarray_arg(obj, name, index), name, index, true) {
  // Kernels load elements through typed pointers: an array at an address that is not a multiple
  // of its item size (a view into a byte buffer at an odd offset) is undefined behaviour there.
  constexpr int kAligned = 0x0100;  // NPY_ARRAY_ALIGNED
  if (!(py::detail::array_proxy(array_.ptr())->flags & kAligned))
    fail_value("expected an aligned array (its data address is not a multiple of its item size: pass a copy, "
               "np.array(...))");
}

Arg Arg::optional(const py::handle& obj, const char* name, int64_t index) {
  if (obj.is_none()) return Arg(py::reinterpret_borrow<py::array>(py::handle()), name, index, false);  // never touched
  if (!py::isinstance<py::array>(obj)) {
    const std::string label = index < 0 ? name : std::string(name) + "[" + std::to_string(index) + "]";
    throw py::type_error(label + ": expected a numpy.ndarray or None, got " + type_name(obj));
  }
  return Arg(obj, name, index);
}

std::vector<Arg> array_list(const py::handle& obj, const char* name, py::ssize_t expected_len, bool allow_none) {
  if (!py::isinstance<py::list>(obj) && !py::isinstance<py::tuple>(obj))
    throw py::type_error(std::string(name) + ": expected a list of numpy.ndarray, got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
  if (expected_len >= 0 && static_cast<py::ssize_t>(seq.size()) != expected_len)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(expected_len) +
                          " arrays (one per parameter), got " + std::to_string(seq.size()));
  std::vector<Arg> out;
  out.reserve(seq.size());
  for (size_t i = 0; i < seq.size(); ++i) {
    py::object o = seq[i];
    const auto index = static_cast<int64_t>(i);
    if (allow_none) {
      out.push_back(Arg::optional(o, name, index));
      continue;
    }
    if (!py::isinstance<py::array>(o))  // (type name as Python spells it: "list", not "builtins.list")
      throw py::type_error(std::string(name) + "[" + std::to_string(i) + "]: expected a numpy.ndarray, got " +
                           std::string(py::str(py::type::handle_of(o).attr("__name__"))));
    out.emplace_back(o, name, index);
  }
  return out;
}

std::string Arg::label() const { return index_ < 0 ? name_ : std::string(name_) + "[" + std::to_string(index_) + "]"; }

void Arg::fail_value(const std::string& what) const { throw py::value_error(label() + ": " + what); }
void Arg::fail_type(const std::string& what) const { throw py::type_error(label() + ": " + what); }

Arg& Arg::floating() {
  if (present_ && dtype() == DType::other) fail_type("expected float32 or float64, got " + dtype_str(array_));
  return *this;
}

Arg& Arg::dtype_as(const Arg& ref) {
  if (present_ && !same_dtype(array_, ref.array_))
    fail_type("expected dtype " + dtype_str(ref.array_) + " (as " + ref.label() + "), got " + dtype_str(array_));
  return *this;
}

Arg& Arg::rank(int64_t ndim) {
  if (present_ && array_.ndim() != ndim)
    fail_value("expected a " + std::to_string(ndim) + "-D array, got shape " + shape_str(array_));
  return *this;
}

Arg& Arg::shape(std::initializer_list<int64_t> shape) {
  if (!present_) return *this;
  bool ok = array_.ndim() == static_cast<py::ssize_t>(shape.size());
  py::ssize_t i = 0;
  for (auto d = shape.begin(); ok && d != shape.end(); ++d, ++i) ok = array_.shape(i) == *d;
  if (!ok) fail_value("expected shape " + shape_list_str(shape) + ", got " + shape_str(array_));
  return *this;
}

Arg& Arg::shape_as(const Arg& ref) {
  if (!present_) return *this;
  bool ok = array_.ndim() == ref.array_.ndim();
  for (py::ssize_t i = 0; ok && i < array_.ndim(); ++i) ok = array_.shape(i) == ref.array_.shape(i);
  if (!ok) fail_value("expected shape " + shape_str(ref.array_) + " (as " + ref.label() + "), got " + shape_str(array_));
  return *this;
}

Arg& Arg::contiguous() {
  if (present_ && !(array_.flags() & py::array::c_style)) fail_value("expected a C-contiguous array");
  return *this;
}

Arg& Arg::writeable() {
  if (present_ && !array_.writeable()) fail_value("array is read-only");
  return *this;
}

Arg& Arg::disjoint_from(const Arg& other) {
  if (present_ && other.present_ && overlap(extent_of(array_), extent_of(other.array_)))
    fail_value("must not share memory with " + other.label());
  return *this;
}

Arg& Arg::same_or_disjoint(const Arg& other) {
  if (!present_ || !other.present_) return *this;
  const Extent a = extent_of(array_), b = extent_of(other.array_);
  if ((a.lo == b.lo && a.hi == b.hi) || !overlap(a, b)) return *this;
  fail_value("overlaps " + other.label() + " partially (it may only be the same array or disjoint)");
}

void require_disjoint(const std::vector<const Arg*>& written, const std::vector<const Arg*>& read) {
  struct Range {
    Extent e;
    const Arg* arg;
    bool written;
  };
  std::vector<Range> r;
  r.reserve(written.size() + read.size());
  auto add = [&](const std::vector<const Arg*>& args, bool w) {
    for (const Arg* a : args)
      if (a->present() && a->size() > 0) r.push_back({extent_of(a->array()), a, w});
  };
  add(written, true);
  add(read, false);
  std::sort(r.begin(), r.end(), [](const Range& a, const Range& b) { return a.e.lo < b.e.lo; });
  // Sweep in address order, keeping the furthest end seen so far among written and among read arrays.
  const Range* far_written = nullptr;
  const Range* far_read = nullptr;
  for (const Range& x : r) {
    const Range* hit = nullptr;
    if (far_written && x.e.lo < far_written->e.hi) hit = far_written;
    else if (x.written && far_read && x.e.lo < far_read->e.hi) hit = far_read;
    if (hit) {
      const Range& out = x.written ? x : *hit;  // name the written array first
      const Range& other = x.written ? *hit : x;
      throw py::value_error(out.arg->label() + ": must not share memory with " + other.arg->label() +
                            " (every array a kernel writes needs its own memory)");
    }
    const Range*& far = x.written ? far_written : far_read;
    if (!far || x.e.hi > far->e.hi) far = &x;
  }
}

DisjointSet::DisjointSet(const std::vector<const Arg*>& arrays) {
  require_disjoint(arrays, {});
  for (const Arg* a : arrays)
    if (a->present() && a->size() > 0) ranges_.push_back({extent_of(a->array()), a->label()});
  std::sort(ranges_.begin(), ranges_.end(), [](const Range& a, const Range& b) { return a.e.lo < b.e.lo; });
}

void DisjointSet::require_disjoint_from(const Arg& a) const {
  if (!a.present() || a.size() == 0) return;
  const Extent e = extent_of(a.array());
  // the first range ending after e begins: the only one that can overlap it, if any does
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), e.lo,
                             [](uintptr_t lo, const Range& r) { return lo < r.e.hi; });
  if (it != ranges_.end() && overlap(it->e, e))
    throw py::value_error(a.label() + ": must not share memory with " + it->label +
                          " (every array a kernel writes needs its own memory)");
}

}  // namespace pydl::bind
