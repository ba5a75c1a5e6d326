// Multi-tensor optimizer steps: one call updates a list of parameter tensors and their state.
//
// Each tensor is cut into fixed blocks of kBlock elements (independent of the thread count) and
// the blocks of all tensors are shared among the threads of the pool when the total is large,
// so results are bitwise identical for any number of threads. The kernel for the active ISA
// (runtime::active_isa()) runs each block; Impl::reference runs the naive loops instead.
// Call with the GIL released.
#pragma once

#include <cstdint>
#include <vector>

#include "optim/optim.h"

namespace pydl::optim {

enum class Impl { fast, reference };

// One tensor of a step: parameter p (n,), gradient g (n,), state arrays (n,) or nullptr, in the
// order of the kernel's arguments in optim.h (e.g. Adam: exp_avg, exp_avg_sq, max_exp_avg_sq).
template <class T>
struct TensorSlot {
  T* p;
  const T* g;
  T* state[3];
  int64_t n;
};

// args[i] holds the scalars of tensor i (they differ where the step count differs).
template <class T>
void sgd_multi(const std::vector<TensorSlot<T>>& t, const std::vector<SgdArgs>& args, Impl impl);
template <class T>
void adagrad_multi(const std::vector<TensorSlot<T>>& t, const std::vector<AdagradArgs>& args, Impl impl);
template <class T>
void adadelta_multi(const std::vector<TensorSlot<T>>& t, const std::vector<AdadeltaArgs>& args, Impl impl);
template <class T>
void rmsprop_multi(const std::vector<TensorSlot<T>>& t, const std::vector<RmspropArgs>& args, Impl impl);
template <class T>
void adam_multi(const std::vector<TensorSlot<T>>& t, const std::vector<AdamArgs>& args, Impl impl);

}  // namespace pydl::optim
