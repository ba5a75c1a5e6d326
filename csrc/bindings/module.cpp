// pydl._C: one registration function per area, each in its own file in this folder.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_runtime(py::module_& m);
void register_gemm(py::module_& m);
void register_ops(py::module_& m);
void register_optim(py::module_& m);
void register_nn(py::module_& m);
void register_conv(py::module_& m);
void register_batchnorm2d(py::module_& m);
void register_mlp_step(py::module_& m);

PYBIND11_MODULE(_C, m) {
  m.doc() = "pydl C++ kernels (private; use pydl.ops, pydl.nn and pydl.optim)";
  register_runtime(m);
  register_gemm(m);
  register_ops(m);
  register_optim(m);
  register_nn(m);
  register_conv(m);
  register_batchnorm2d(m);
  register_mlp_step(m);
}
