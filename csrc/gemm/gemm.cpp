// GEMM driver (Goto / BLIS structure; Goto & van de Geijn, "Anatomy of High-Performance Matrix
// Multiplication", TOMS 2008; Van Zee & van de Geijn, "BLIS", TOMS 2015):
//
//   C (M x N) = act(alpha * op(A) op(B) + beta * C + bias), row-major, op(A) M x K, op(B) K x N.
//
//   for jc in N by NC:                 B block (KC x NC) packed into NR-wide slivers, kept in L2
//     for pc in K by KC:               equal blocks of <= KC; the k order never depends on threads
//       pack B block                   (transposes and zero-padded edges handled here)
//       for each (A sliver, column part) unit, threads taking units from a shared counter:
//         pack the A sliver (MR x KC, k-major, zero-padded rows), kept in L1
//         for jr in the part by NR:    micro-kernel on one MR x NR tile of C; on the last KC
//                                      block it applies alpha, beta, bias and the activation
//
// Small problems skip packing where it cannot pay: op(B) = B is read in place when M has few
// slivers, op(A) = A^T when N has few. Threads split output tiles only, so every element of C
// sees the same arithmetic for any thread count (bitwise identical results); problems under
// ~2M multiply-adds run on the calling thread.
#include <cstdlib>
#include <new>
#include <type_traits>

#include "gemm/gemm.h"
#include "gemm/kernels.h"
#include "runtime/cpu.h"
#include "runtime/parallel.h"

namespace pydl::gemm {

using pydl::ops::Act;

namespace {

int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The kernels and blocking of the active ISA for T.
template <class T>
Plan<T> active_plan() {
  const IsaKernels k = runtime::select(avx512::kernels, avx2::kernels, generic::kernels);
  if constexpr (std::is_same_v<T, float>) return k.f32;
  else return k.f64;
}

// A growable 64-byte aligned scratch buffer per thread and slot (0: B block, 1: A sliver).
template <class T>
T* scratch(int slot, size_t n) {
  struct Buf {
    void* p = nullptr;
    size_t cap = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf bufs[2];
  Buf& b = bufs[slot];
  const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
  if (bytes > b.cap) {
    std::free(b.p);
    b.p = std::aligned_alloc(64, bytes);
    if (!b.p) throw std::bad_alloc();
    b.cap = bytes;
  }
  return static_cast<T*>(b.p);
}

// dst[k * w + c] = src[k * lds + c] for c < cols, zero for cols <= c < w: rows copied as they are.
template <class T>
void copy_pack(T* dst, int w, const T* src, int64_t lds, int cols, int64_t kc) {
  for (int64_t k = 0; k < kc; ++k) {
    const T* s = src + k * lds;
    T* d = dst + k * w;
    for (int c = 0; c < cols; ++c) d[c] = s[c];
    for (int c = cols; c < w; ++c) d[c] = T(0);
  }
}

// Packs op(A)[i0 : i0+rows, k0 : k0+kc] into an MR x kc k-major sliver, rows past `rows` zero.
template <class T>
void pack_a(const Plan<T>& p, T* dst, const T* A, int64_t lda, bool trans, int64_t i0, int64_t k0, int rows,
            int64_t kc) {
  if (trans) copy_pack(dst, p.mr, A + k0 * lda + i0, lda, rows, kc);
  else p.tpack(dst, p.mr, A + i0 * lda + k0, lda, rows, kc);
}

// Packs op(B)[k0 : k0+kc, j0 : j0+cols] into a kc x NR sliver, columns past `cols` zero.
template <class T>
void pack_b(const Plan<T>& p, T* dst, const T* B, int64_t ldb, bool trans, int64_t k0, int64_t j0, int cols,
            int64_t kc) {
  if (trans) p.tpack(dst, p.nr, B + j0 * ldb + k0, ldb, cols, kc);
  else copy_pack(dst, p.nr, B + k0 * ldb + j0, ldb, cols, kc);
}

// C = act(beta * C + bias): the K == 0 case.
template <class T>
void scale_only(T* C, int64_t ldc, const T* bias, int64_t M, int64_t N, T beta, Act act, T negative_slope) {
  for (int64_t i = 0; i < M; ++i) {
    T* ci = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) {
      T x = beta != T(0) ? beta * ci[j] : T(0);
      if (bias) x += bias[j];
      if (act == Act::relu) x = x < T(0) ? T(0) : x;
      else if (act == Act::leaky_relu) x = x < T(0) ? x * negative_slope : x;
      ci[j] = x;
    }
    if (act != Act::none && act != Act::relu && act != Act::leaky_relu)
      pydl::ops::activation_forward<T>(ci, ci, N, act, negative_slope);
  }
}

// Work (multiply-adds) below which threads cost more than they save.
// (~2M multiply-adds is ~20 us on one core; waking a worker costs a few us.)
constexpr double kMinParallelMacs = 1 << 21;

template <class T>
void gemm_blocked(const Plan<T>& p, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                  const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const T* bias,
                  Act act, T negative_slope) {
  const int mr = p.mr, nr = p.nr;
  const int act_code = act == Act::relu ? 1 : act == Act::leaky_relu ? 2 : 0;
  const bool other_act = act != Act::none && act_code == 0;
  const int64_t nc_max = min64(p.nc, ceil_div(N, nr) * nr);
  // K split into equal blocks of at most p.kc (rounded up to 8): no short tail block. Depends on
  // K and the ISA only, never on the thread count.
  const int64_t kblocks = ceil_div(K, p.kc);
  const int64_t kc_max = min64(K, ceil_div(ceil_div(K, kblocks), 8) * 8);
  const int nthreads =
      double(M) * double(N) * double(K) >= kMinParallelMacs ? pydl::runtime::get_num_threads() : 1;
  const int64_t slivers_m = ceil_div(M, mr);
  // Small-problem paths: read op(B) = B in place when there are too few A slivers to pay for
  // packing it or it is small enough to stay in cache, and op(A) = A^T in place when there are
  // too few B slivers to pay for packing A (partial slivers at the edges are still packed).
  const bool direct_b = !trans_b && (slivers_m <= 4 || K * N * int64_t(sizeof(T)) <= (64 << 10));
  const bool direct_a = trans_a && ceil_div(N, nr) <= 4;
  T* bpack = scratch<T>(0, size_t(kc_max * nc_max));

  for (int64_t jc = 0; jc < N; jc += nc_max) {
    const int64_t nc = min64(nc_max, N - jc);
    const int64_t slivers_n = ceil_div(nc, nr);
    // Work units are (A sliver, column part) pairs; slivers are cut into parts only when there
    // are too few of them to keep every thread busy.
    const int64_t parts = (nthreads == 1 || slivers_m >= 4 * nthreads) ? 1 : min64(2 * nthreads, slivers_n);
    for (int64_t pc = 0; pc < K; pc += kc_max) {
      const int64_t kc = min64(kc_max, K - pc);
      const bool first = pc == 0, last = pc + kc == K;
      auto pack_slivers = [&](int64_t s0, int64_t s1) {
        for (int64_t s = s0; s < s1; ++s) {
          const int cols = int(min64(nr, nc - s * nr));
          if (!direct_b || cols < nr) pack_b(p, bpack + s * nr * kc, B, ldb, trans_b, pc, jc + s * nr, cols, kc);
        }
      };
      runtime::parallel_for_dynamic(slivers_n, nthreads, pack_slivers);

      Epilogue<T> ep{alpha, first ? beta : T(1), nullptr, last ? act_code : 0, negative_slope};
      auto run_units = [&](int64_t u0, int64_t u1) {
        T* apack = scratch<T>(1, size_t(mr * kc));
        int64_t packed = -1;
        for (int64_t u = u0; u < u1; ++u) {
          const int64_t s = u / parts, q = u % parts;
          const int64_t i0 = s * mr;
          const int rows = int(min64(mr, M - i0));
          const T* a = apack;
          int64_t aks = mr;
          if (direct_a && rows == mr) {
            a = A + pc * lda + i0;
            aks = lda;
          } else if (s != packed) {
            pack_a(p, apack, A, lda, trans_a, i0, pc, rows, kc);
            packed = s;
          }
          const int64_t t0 = slivers_n * q / parts, t1 = slivers_n * (q + 1) / parts;
          Epilogue<T> e = ep;
          for (int64_t t = t0; t < t1; ++t) {
            const int64_t j = jc + t * nr;
            const int cols = int(min64(nr, N - j));
            e.bias = (last && bias) ? bias + j : nullptr;
            if (direct_b && cols == nr)
              p.kernel(kc, a, aks, B + pc * ldb + j, ldb, C + i0 * ldc + j, ldc, rows, cols, e);
            else
              p.kernel(kc, a, aks, bpack + t * nr * kc, nr, C + i0 * ldc + j, ldc, rows, cols, e);
          }
          if (last && other_act) {  // sigmoid, tanh, gelu: on the finished rows while they are in cache
            const int64_t j0 = jc + t0 * nr, j1 = min64(N, jc + t1 * nr);
            for (int i = 0; i < rows; ++i) {
              T* row = C + (i0 + i) * ldc + j0;
              pydl::ops::activation_forward<T>(row, row, j1 - j0, act, negative_slope);
            }
          }
        }
      };
      runtime::parallel_for_dynamic(slivers_m * parts, nthreads, run_units);
    }
  }
}

}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const T* bias, Act act, T negative_slope) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    scale_only<T>(C, ldc, bias, M, N, beta, act, negative_slope);
    return;
  }
  gemm_blocked<T>(active_plan<T>(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, act,
                  negative_slope);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                          int64_t, float, float*, int64_t, const float*, Act, float);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t, const double*, Act, double);

}  // namespace pydl::gemm
