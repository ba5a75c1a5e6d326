// Multi-tensor optimizer steps: one call updates a list of parameter tensors and their state.
//
// Each tensor is cut into fixed blocks of kBlock elements (independent of the thread count) and
// the blocks of all tensors are shared among the threads of the pool when the total is large,
// so results are bitwise identical for any number of threads. The kernels of the active ISA
// (runtime::select) run each block; Impl::reference runs the naive loops instead.
// Call with the GIL released.
#pragma once

#include <cstdint>
#include <functional>
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

// The step kernels of impl (for Impl::fast: of the active ISA).
template <class T>
Kernels<T> kernels_for(Impl impl);

// fn(i, lo, hi) for every block [lo, hi) of every tensor i (sizes[i] elements), on the pool's
// threads when the total is large.
void for_each_block(const std::vector<int64_t>& sizes, const std::function<void(size_t, int64_t, int64_t)>& fn);

// The scalars of one tensor's Adam (decoupled: AdamW) step number `step` (>= 1): the
// hyperparameters and the bias corrections, computed once in double.
AdamArgs adam_args(double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step, bool amsgrad,
                   bool maximize, bool decoupled);

namespace detail {

template <class T>
T* at(T* s, int64_t lo) { return s ? s + lo : nullptr; }

// Block [lo, hi) of tensor s through a kernel with one, two or three state arrays.
template <class T, class A>
void run_block(void (*k)(T*, T*, const T*, int64_t, const A&), const TensorSlot<T>& s, int64_t lo, int64_t hi,
               const A& a) {
  k(s.p + lo, at(s.state[0], lo), s.g + lo, hi - lo, a);
}
template <class T, class A>
void run_block(void (*k)(T*, T*, T*, const T*, int64_t, const A&), const TensorSlot<T>& s, int64_t lo, int64_t hi,
               const A& a) {
  k(s.p + lo, at(s.state[0], lo), at(s.state[1], lo), s.g + lo, hi - lo, a);
}
template <class T, class A>
void run_block(void (*k)(T*, T*, T*, T*, const T*, int64_t, const A&), const TensorSlot<T>& s, int64_t lo,
               int64_t hi, const A& a) {
  k(s.p + lo, at(s.state[0], lo), at(s.state[1], lo), at(s.state[2], lo), s.g + lo, hi - lo, a);
}

}  // namespace detail

// Runs `kernel` (a member of Kernels<T>) over every tensor of t; args[i] holds the scalars of
// tensor i (they differ where the step count differs).
template <class T, class A, class Kernel>
void multi_tensor_step(const std::vector<TensorSlot<T>>& t, const std::vector<A>& args, Kernel kernel) {
  std::vector<int64_t> sizes(t.size());
  for (size_t i = 0; i < t.size(); ++i) sizes[i] = t[i].n;
  for_each_block(sizes, [&](size_t i, int64_t lo, int64_t hi) { detail::run_block(kernel, t[i], lo, hi, args[i]); });
}

}  // namespace pydl::optim
