// Optimizer step kernels: one call updates a slice of one parameter tensor and its state in place.
//
// Update rules are PyTorch's (docs/API.md §1, optimizers), written out in optim_ref.cpp. Every kernel
// is elementwise: element i of p and of each state array depends only on element i of its
// inputs, so a tensor may be cut into any slices and the slices run on any threads.
//
// Arguments: outputs (p, state arrays, updated in place) first, then the gradient, then n, then
// the scalars.
// State arrays an option does not use are nullptr. Per-step scalars (bias corrections, the
// Adagrad clr) are computed once on the host and passed in the *Args structs, in double; the
// kernels round them to T once, like PyTorch does with Python scalars.
//
// Implementations, one namespace each, each exporting a table `kernels` of the five steps for
// float and double:
//   ref      naive loops, the test oracle (optim_ref.cpp)
//   generic  vectorisable loops, baseline x86-64 (optim_generic.cpp)
//   avx2     the same loops built with -mavx2 -mfma (optim_avx2.cpp)
//   avx512   the same loops built with -mavx512f ... (optim_avx512.cpp)
// multi_tensor.h runs a list of tensors through the table the active ISA selects.
#pragma once

#include <cstdint>

namespace pydl::optim {

struct SgdArgs {
  double lr, momentum, dampening, weight_decay;
  bool nesterov, maximize;
  bool first;  // first step with momentum for this tensor: buf = g
};

struct AdagradArgs {
  double clr;  // lr / (1 + (t - 1) * lr_decay)
  double weight_decay, eps;
  bool maximize;
};

struct AdadeltaArgs {
  double lr, rho, eps, weight_decay;
  bool maximize;
};

struct RmspropArgs {
  double lr, alpha, eps, weight_decay, momentum;
  bool centered, maximize;
};

struct AdamArgs {
  double lr, beta1, beta2, eps, weight_decay;
  double step_size;  // lr / (1 - beta1^t)
  double bc2_sqrt;   // sqrt(1 - beta2^t)
  bool amsgrad, maximize;
  bool decoupled;    // AdamW: p *= 1 - lr * weight_decay before the Adam update
};

// The five step kernels for one dtype. Shapes: every array is (n,); state arrays an option does
// not use are nullptr.
template <class T>
struct Kernels {
  void (*sgd)(T* p, T* momentum_buffer, const T* g, int64_t n, const SgdArgs& a);
  void (*adagrad)(T* p, T* state_sum, const T* g, int64_t n, const AdagradArgs& a);
  void (*adadelta)(T* p, T* square_avg, T* acc_delta, const T* g, int64_t n, const AdadeltaArgs& a);
  void (*rmsprop)(T* p, T* square_avg, T* grad_avg, T* momentum_buffer, const T* g, int64_t n, const RmspropArgs& a);
  void (*adam)(T* p, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq, const T* g, int64_t n, const AdamArgs& a);
};

struct ImplKernels {
  Kernels<float> f32;
  Kernels<double> f64;
};

namespace ref { extern const ImplKernels kernels; }
namespace generic { extern const ImplKernels kernels; }
#if defined(PYDL_X86)
namespace avx2 { extern const ImplKernels kernels; }
namespace avx512 { extern const ImplKernels kernels; }
#else
namespace avx2 = generic;  // other CPUs: only the portable kernels are built
namespace avx512 = generic;
#endif

}  // namespace pydl::optim
