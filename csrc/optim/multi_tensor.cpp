#include "optim/multi_tensor.h"

#include <functional>
#include <utility>

#include "runtime/cpu.h"
#include "runtime/threadpool.h"

namespace pydl::optim {
namespace {

constexpr int64_t kBlock = 16384;          // elements per block; a multiple of every vector width
constexpr int64_t kMinPerThread = 1 << 17;  // below this many elements per thread, stay serial

// Calls fn(tensor, lo, hi) on every block [lo, hi) of every tensor, in parallel when worth it.
template <class T>
void for_each_block(const std::vector<TensorSlot<T>>& t, const std::function<void(size_t, int64_t, int64_t)>& fn) {
  std::vector<std::pair<size_t, int64_t>> blocks;
  int64_t total = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    for (int64_t lo = 0; lo < t[i].n; lo += kBlock) blocks.emplace_back(i, lo);
    total += t[i].n;
  }
  auto run = [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const auto [i, lo] = blocks[b];
      const int64_t hi = lo + kBlock < t[i].n ? lo + kBlock : t[i].n;
      fn(i, lo, hi);
    }
  };
  const int64_t nblocks = static_cast<int64_t>(blocks.size());
  if (runtime::threads_for(total, kMinPerThread) > 1)
    runtime::parallel_for(0, nblocks, run);
  else
    run(0, nblocks);
}

// The implementation of one kernel for impl and the active ISA.
template <class Fn>
Fn pick(Impl impl, Fn ref, Fn generic, Fn avx2, Fn avx512) {
  if (impl == Impl::reference) return ref;
#ifdef PYDL_X86
  switch (runtime::active_isa()) {
    case runtime::Isa::avx512: return avx512;
    case runtime::Isa::avx2: return avx2;
    default: break;
  }
#else
  (void)avx2;
  (void)avx512;
#endif
  return generic;
}

#ifdef PYDL_X86
#define PYDL_PICK(T, name, impl) \
  pick<name##_fn<T>>(impl, &ref::name, &generic::name, &avx2::name, &avx512::name)
#else
#define PYDL_PICK(T, name, impl) pick<name##_fn<T>>(impl, &ref::name, &generic::name, nullptr, nullptr)
#endif

template <class T> using sgd_fn = void (*)(T*, T*, const T*, int64_t, const SgdArgs&);
template <class T> using adagrad_fn = void (*)(T*, T*, const T*, int64_t, const AdagradArgs&);
template <class T> using adadelta_fn = void (*)(T*, T*, T*, const T*, int64_t, const AdadeltaArgs&);
template <class T> using rmsprop_fn = void (*)(T*, T*, T*, T*, const T*, int64_t, const RmspropArgs&);
template <class T> using adam_fn = void (*)(T*, T*, T*, T*, const T*, int64_t, const AdamArgs&);

// State pointer at offset lo (nullptr stays nullptr).
template <class T>
T* at(T* s, int64_t lo) { return s ? s + lo : nullptr; }

}  // namespace

template <class T>
void sgd_multi(const std::vector<TensorSlot<T>>& t, const std::vector<SgdArgs>& args, Impl impl) {
  auto k = PYDL_PICK(T, sgd, impl);
  for_each_block(t, [&](size_t i, int64_t lo, int64_t hi) {
    k(t[i].p + lo, at(t[i].state[0], lo), t[i].g + lo, hi - lo, args[i]);
  });
}

template <class T>
void adagrad_multi(const std::vector<TensorSlot<T>>& t, const std::vector<AdagradArgs>& args, Impl impl) {
  auto k = PYDL_PICK(T, adagrad, impl);
  for_each_block(t, [&](size_t i, int64_t lo, int64_t hi) {
    k(t[i].p + lo, at(t[i].state[0], lo), t[i].g + lo, hi - lo, args[i]);
  });
}

template <class T>
void adadelta_multi(const std::vector<TensorSlot<T>>& t, const std::vector<AdadeltaArgs>& args, Impl impl) {
  auto k = PYDL_PICK(T, adadelta, impl);
  for_each_block(t, [&](size_t i, int64_t lo, int64_t hi) {
    k(t[i].p + lo, at(t[i].state[0], lo), at(t[i].state[1], lo), t[i].g + lo, hi - lo, args[i]);
  });
}

template <class T>
void rmsprop_multi(const std::vector<TensorSlot<T>>& t, const std::vector<RmspropArgs>& args, Impl impl) {
  auto k = PYDL_PICK(T, rmsprop, impl);
  for_each_block(t, [&](size_t i, int64_t lo, int64_t hi) {
    k(t[i].p + lo, at(t[i].state[0], lo), at(t[i].state[1], lo), at(t[i].state[2], lo), t[i].g + lo, hi - lo,
      args[i]);
  });
}

template <class T>
void adam_multi(const std::vector<TensorSlot<T>>& t, const std::vector<AdamArgs>& args, Impl impl) {
  auto k = PYDL_PICK(T, adam, impl);
  for_each_block(t, [&](size_t i, int64_t lo, int64_t hi) {
    k(t[i].p + lo, at(t[i].state[0], lo), at(t[i].state[1], lo), at(t[i].state[2], lo), t[i].g + lo, hi - lo,
      args[i]);
  });
}

#define PYDL_INSTANTIATE(T)                                                                          \
  template void sgd_multi<T>(const std::vector<TensorSlot<T>>&, const std::vector<SgdArgs>&, Impl);           \
  template void adagrad_multi<T>(const std::vector<TensorSlot<T>>&, const std::vector<AdagradArgs>&, Impl);   \
  template void adadelta_multi<T>(const std::vector<TensorSlot<T>>&, const std::vector<AdadeltaArgs>&, Impl); \
  template void rmsprop_multi<T>(const std::vector<TensorSlot<T>>&, const std::vector<RmspropArgs>&, Impl);   \
  template void adam_multi<T>(const std::vector<TensorSlot<T>>&, const std::vector<AdamArgs>&, Impl);

PYDL_INSTANTIATE(float)
PYDL_INSTANTIATE(double)

}  // namespace pydl::optim
