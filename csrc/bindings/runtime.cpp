#include <pybind11/pybind11.h>

#include "runtime/cpu.h"
#include "runtime/threadpool.h"

namespace py = pybind11;
using namespace pydl::runtime;

void register_runtime(py::module_& m) {
  m.def("active_isa", [] { return std::string(isa_name(active_isa())); },
        "ISA whose kernels run now: 'avx512', 'avx2' or 'generic'.");
  m.def("detected_isa", [] { return std::string(isa_name(detected_isa())); },
        "Best ISA this CPU supports.");
  m.def("set_isa", [](const std::string& name) {
          Isa isa;
          if (!parse_isa(name.c_str(), &isa))
            throw py::value_error("isa: expected 'avx512', 'avx2' or 'generic', got '" + name + "'");
          if (!set_active_isa(isa))
            throw py::value_error("isa: this CPU does not support '" + name + "' (best: " + isa_name(detected_isa()) + ")");
        }, py::arg("isa"), "Switch the kernels to another ISA (tests use it to cover every path).");
  m.attr("MAX_THREADS") = kMaxThreads;
  m.def("get_num_threads", &get_num_threads);
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("available_cpus", &available_cpus);
}
