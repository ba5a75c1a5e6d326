#include "optim/multi_tensor.h"

#include <cmath>
#include <type_traits>
#include <utility>

#include "runtime/cpu.h"
#include "runtime/parallel.h"

namespace pydl::optim {
namespace {

constexpr int64_t kBlock = 16384;          // elements per block; a multiple of every vector width
constexpr int64_t kMinPerThread = 1 << 17;  // below this many elements per thread, stay serial

}  // namespace

template <class T>
Kernels<T> kernels_for(Impl impl) {
  const ImplKernels k = impl == Impl::reference
                            ? ref::kernels
                            : runtime::select(avx512::kernels, avx2::kernels, generic::kernels);
  if constexpr (std::is_same_v<T, float>) return k.f32;
  else return k.f64;
}

template Kernels<float> kernels_for<float>(Impl);
template Kernels<double> kernels_for<double>(Impl);

AdamArgs adam_args(double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step, bool amsgrad,
                   bool maximize, bool decoupled) {
  const double t = double(step);
  const double bc1 = 1.0 - std::pow(beta1, t), bc2 = 1.0 - std::pow(beta2, t);
  return {lr, beta1, beta2, eps, weight_decay, lr / bc1, std::sqrt(bc2), amsgrad, maximize, decoupled};
}

void for_each_block(const std::vector<int64_t>& sizes, const std::function<void(size_t, int64_t, int64_t)>& fn) {
  std::vector<std::pair<size_t, int64_t>> blocks;  // (tensor, first element)
  int64_t total = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    for (int64_t lo = 0; lo < sizes[i]; lo += kBlock) blocks.emplace_back(i, lo);
    total += sizes[i];
  }
  // Threads only when there are kMinPerThread elements per thread (however they are cut in blocks).
  const int64_t nblocks = static_cast<int64_t>(blocks.size());
  const bool parallel = runtime::threads_for(total, kMinPerThread) > 1;
  runtime::parallel_for(nblocks, parallel ? 1 : nblocks, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const auto [i, lo] = blocks[b];
      fn(i, lo, lo + kBlock < sizes[i] ? lo + kBlock : sizes[i]);
    }
  });
}

}  // namespace pydl::optim
