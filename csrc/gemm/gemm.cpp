// GEMM driver (Goto / BLIS structure; Goto & van de Geijn, "Anatomy of High-Performance Matrix
// Multiplication", TOMS 2008; Van Zee & van de Geijn, "BLIS", TOMS 2015):
//
//   C (M x N) = act(alpha * op(A) op(B) + beta * C + bias), row-major, op(A) M x K, op(B) K x N.
//
//   for ic in M by MC:                A panel (MC x KC) in half of L3
//     for pc in K by KC:              equal blocks of <= KC; the k order never depends on threads
//       for jc in N by NC:            B block (KC x NC) packed into NR-wide slivers, kept in L2
//         pack the B block, and with the first one the A panel into MR-row slivers (zero-padded
//         rows; row copies for op(A) = A, k-major for A^T): one parallel pass
//         for each (A sliver, column part) unit, threads taking units from a shared counter:
//           for jr in the part by NR: micro-kernel on one MR x NR tile of C: the A sliver is
//                                     reused by every tile of the part, it and the B sliver stream
//                                     from L2; on the last KC block it applies alpha, beta, bias
//                                     and the activation
//
// KC, NC and MC come from the cache sizes the CPU reports (blocking() below; docs/GEMM.md).
// Small problems (at most kSmallMacs multiply-adds, K within one KC block) skip this driver:
// gemm_small runs the micro-kernel over the tiles on the calling thread, A and B read in place
// where the micro-kernel can (rows of A or of A^T, rows of B). Larger ones still read an operand
// in place when too few tiles reuse it to pay for packing. A B^T with a few rows of A
// takes dot products of rows instead (gemm_dot). Threads split outputs only (tiles, column
// blocks), so every element of C sees the same arithmetic for any thread count (bitwise
// identical results).
#include <cstdint>
#include <cstdlib>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif
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

// A 64-byte aligned buffer that grows on demand. From 512 KiB it is 2 MiB aligned and asks for
// transparent huge pages: the packed blocks are streamed many times, and on 4 KiB pages a panel
// spans hundreds of TLB entries.
struct Buffer {
  void* p = nullptr;
  size_t cap = 0;
  ~Buffer() { std::free(p); }
  void* get(size_t bytes) {
    if (bytes <= cap) return p;
    std::free(p);
    const size_t huge = size_t(2) << 20;
    const size_t align = bytes >= huge / 4 ? huge : 64, size = (bytes + align - 1) / align * align;
    p = std::aligned_alloc(align, size);
    cap = p ? size : 0;
    if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align == huge) madvise(p, size, MADV_HUGEPAGE);  // a hint: failure changes nothing
#endif
    return p;
  }
};

// The calling thread's packing buffers (the workers of a call write into the caller's).
template <class T>
struct Packs {
  T* b;  // B block, KC x NC
  T* a;  // A panel, MC x KC
};

template <class T>
Packs<T> packing_buffers(size_t b_elems, size_t a_elems) {
  thread_local Buffer bufs[2];
  return {static_cast<T*>(bufs[0].get(b_elems * sizeof(T))), static_cast<T*>(bufs[1].get(a_elems * sizeof(T)))};
}

// Cache blocks for one ISA's tile. KC: where the A sliver lives while the kernel streams it.
// AVX-512 (12 x 32 tile): from L2, an A sliver (MR x KC) and a B sliver (KC x NR) each within a
// quarter of it: a k step is 24 FMAs for 14 loads, so both slivers stream from L2 in time
// (prefetched), and a longer KC means fewer passes over C and fewer restarts of the k loop. On
// Zen 4, n = 2048, KC 2048 against the L1-sized 672 (float32) and 336 (float64) of before ran
// 1.05-1.10x OpenBLAS against 1.01-1.05x, float64 0.99-1.04x against 0.93-1.00x (docs/GEMM.md).
// AVX2 (a k step of 12 FMAs for 8 loads: over twice AVX-512's loads per cycle here) and the
// portable kernel keep an A sliver in L1, as before: on AVX2, KC 2048 measured within noise of
// 1024 at best and up to 7% slower on some shapes. KC is capped at 2048 (AVX-512) or 1024 and
// rounded to 16. NC: a B block (KC x NC) in half of L2, at least four slivers (a multiple of NR).
// MC: an A panel (MC x KC) in half of the whole L3 (a multiple of MR), not one thread's share of
// it: all of B is packed again for every panel; the share of a Zen 3 core (32 MiB over 16
// threads) gave panels of 252 rows, 0.87x OpenBLAS at n = 2048 against 0.95-0.99x for 512 to 2048
// rows, and with KC = 2048 a quarter of L3 gave two panels at n = 2048 where half gives one.
struct Blocking {
  int64_t kc, nc, mc;
};

template <class T>
Blocking blocking(const Plan<T>& p, bool a_from_l2) {
  const runtime::CacheSizes cs = runtime::cache_sizes();
  const int64_t size = sizeof(T);
  int64_t kc = a_from_l2 ? cs.l2 / 4 / ((p.mr > p.nr ? p.mr : p.nr) * size) : cs.l1d / (p.mr * size);
  const int64_t kc_cap = a_from_l2 ? 2048 : 1024;
  kc = kc / 16 * 16;
  kc = kc < 64 ? 64 : kc > kc_cap ? kc_cap : kc;
  int64_t nc = cs.l2 / 2 / (kc * size) / p.nr * p.nr;
  nc = nc < 4 * p.nr ? 4 * p.nr : nc;
  int64_t mc = cs.l3 / 2 / (kc * size) / p.mr * p.mr;
  mc = mc < 16 * p.mr ? 16 * p.mr : mc;
  return {kc, nc, mc};
}

// One ISA's kernels for T and their cache blocks.
template <class T>
struct Setup {
  Plan<T> p;
  Blocking bk;
};

template <class T>
Setup<T> setup_for(const IsaKernels& k, bool a_from_l2) {
  Plan<T> p;
  if constexpr (std::is_same_v<T, float>) p = k.f32;
  else p = k.f64;
  return {p, blocking(p, a_from_l2)};
}

// The kernels and blocks of the active ISA (worked out once per ISA).
template <class T>
const Setup<T>& active_setup() {
  static const Setup<T> s[3] = {setup_for<T>(avx512::kernels, true), setup_for<T>(avx2::kernels, false),
                                setup_for<T>(generic::kernels, false)};
  return *runtime::select(&s[0], &s[1], &s[2]);
}

// Packed rows of A are kc + kRowPad elements apart. With kc a multiple of 1024 floats the rows of
// a sliver would lie exactly 4 KiB apart, so the MR lines the micro-kernel reads at each k step
// would share one L1 set (64 sets of 64 bytes: addresses 4 KiB apart map to the same set), six of
// its eight ways on AVX2, and evict one another and the B stream. The pad spreads them over sets:
// AVX2 n = 1024 went from 0.88-0.95x to 0.97-1.00x OpenBLAS's Haswell kernel (docs/GEMM.md).
constexpr int64_t kRowPad = 32;

// Packs op(A)[i0 : i0+rows, k0 : k0+kc] into an MR x kc sliver, rows past `rows` zero. op(A) = A^T
// goes k-major (element (i, k) at dst[k * MR + i]), op(A) = A row by row (at dst[i * (kc + kRowPad)
// + k]): both are plain copies, and the micro-kernel reads either layout at the same speed.
template <class T>
void pack_a(const Plan<T>& p, T* dst, const T* A, int64_t lda, bool trans, int64_t i0, int64_t k0, int rows,
            int64_t kc) {
  if (trans) {
    p.cpack(dst, p.mr, A + k0 * lda + i0, lda, rows, kc);
  } else {
    const int64_t stride = kc + kRowPad;
    for (int i = 0; i < rows; ++i) p.cpack(dst + i * stride, int(kc), A + (i0 + i) * lda + k0, lda, int(kc), 1);
    for (int64_t e = rows * stride; e < p.mr * stride; ++e) dst[e] = T(0);
  }
}

// Elements of one packed A sliver of kc steps (either layout).
template <class T>
int64_t a_sliver_elems(const Plan<T>& p, int64_t kc) {
  return p.mr * (kc + kRowPad);
}

// Width of a packed B sliver of `cols` columns: the narrow p.nr_min when they fit in it (the last
// sliver of a block), else NR.
template <class T>
int sliver_width(const Plan<T>& p, int cols) {
  return cols <= p.nr_min ? p.nr_min : p.nr;
}

// Whether a sliver of `rows` rows of op(A) can be read in place: a full one, or an edge whose row
// count has a register block of its own (kernels.h).
template <class T>
bool a_in_place(const Plan<T>& p, int rows) {
  return rows == p.mr || (p.exact_rows >> rows & 1u);
}

// Packs op(B)[k0 : k0+kc, j0 : j0+cols] into a kc x sliver_width(cols) sliver, columns past `cols` zero.
template <class T>
void pack_b(const Plan<T>& p, T* dst, const T* B, int64_t ldb, bool trans, int64_t k0, int64_t j0, int cols,
            int64_t kc) {
  if (trans) p.tpack(dst, sliver_width(p, cols), B + j0 * ldb + k0, ldb, cols, kc);
  else p.cpack(dst, sliver_width(p, cols), B + k0 * ldb + j0, ldb, cols, kc);
}

// The micro-kernels' epilogue activation (Epilogue::act): 1 relu, 2 leaky_relu, 0 none; other
// activations (sigmoid, tanh, gelu) run afterwards on the finished rows.
int epilogue_act(Act act) { return act == Act::relu ? 1 : act == Act::leaky_relu ? 2 : 0; }

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

// Rows of a panel (A^T or B) per pack item (Plan::tpanel): each item ends with one exact-width store per
// sliver (the others spill into the next row).
constexpr int64_t kPanelRows = 32;

// Problems of at most this many multiply-adds take the small path: the calling thread alone (~20 us
// of work on one core; waking a worker costs a few us) and operands read in place where possible.
constexpr double kSmallMacs = 1 << 21;

template <class T>
void gemm_blocked(const Setup<T>& setup, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha,
                  const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const T* bias,
                  Act act, T negative_slope) {
  const Plan<T>& p = setup.p;
  const Blocking& bk = setup.bk;
  const int mr = p.mr, nr = p.nr;
  const int act_code = epilogue_act(act);
  const bool other_act = act != Act::none && act_code == 0;
  // K split into equal blocks of at most KC (rounded up to 8): no short tail block. Depends on K
  // and the ISA's blocking only, never on the thread count.
  const int64_t kblocks = ceil_div(K, bk.kc);
  const int64_t kc_max = min64(K, ceil_div(ceil_div(K, kblocks), 8) * 8);
  const int64_t nc_max = min64(bk.nc, ceil_div(N, nr) * nr);
  // M split into equal panels of at most MC rows (rounded up to MR): no thin last panel, which would
  // pack all of B again for a few rows (n = 2048 on AVX2 here: a panel of 2046 rows and one of 2).
  const int64_t mc_max = ceil_div(ceil_div(M, ceil_div(M, bk.mc)), mr) * mr;
  const bool small = double(M) * double(N) * double(K) <= kSmallMacs;
  const int nthreads = small ? 1 : pydl::runtime::get_num_threads();
  // Operands read in place: op(B) = B when the problem is small, when there are too few A slivers
  // to pay for packing it, or when it stays in cache anyway (K x N within 64 KiB) and the kernel's B
  // rows are at least two cache lines wide; op(A) (A or A^T) when the problem is small or there are
  // too few B slivers to pay for packing it. Partial slivers at the edges are still packed (zero
  // padding). The row width: AVX2's 64-byte rows of B read in place ran 0.78-0.93x OpenBLAS's
  // Haswell kernel (516 x 512 x 32 and six shapes like it), packed 0.90-1.05x; AVX-512's 128-byte
  // rows were as fast in place as packed, or up to 7% faster (docs/GEMM.md).
  const bool b_stays = p.nr * int64_t(sizeof(T)) >= 128 && K * N * int64_t(sizeof(T)) <= (64 << 10);
  const bool direct_b = !trans_b && (small || ceil_div(M, mr) <= 4 || b_stays);
  const bool direct_a = small || ceil_div(N, nr) <= 4;
  const bool b_from_dram = p.nr * int64_t(sizeof(T)) == 64 && double(K) * double(N) * sizeof(T) > runtime::cache_sizes().l3 / 2;
  const Packs<T> packs = packing_buffers<T>(size_t(kc_max * nc_max), size_t(ceil_div(mc_max, mr) * a_sliver_elems(p, kc_max)));
  T* const bpack = packs.b;
  T* const apack = packs.a;

  for (int64_t ic = 0; ic < M; ic += mc_max) {
    const int64_t mc = min64(mc_max, M - ic);
    const int64_t slivers_m = ceil_div(mc, mr);
    for (int64_t pc = 0; pc < K; pc += kc_max) {
      const int64_t kc = min64(kc_max, K - pc);
      const bool first = pc == 0, last = pc + kc == K;
      for (int64_t jc = 0; jc < N; jc += nc_max) {
        const int64_t nc = min64(nc_max, N - jc);
        const int64_t slivers_n = ceil_div(nc, nr);
        // One parallel pass packs the B block and, with the first one, the A panel.
        // A^T goes row by row where the ISA has it (kernels.h, PanelPack): pack items of
        // kPanelRows k rows of every sliver; else one item per sliver. So does a B (not B^T) of
        // one-line sliver rows (AVX2) too large for half of L3, which comes from DRAM: sliver by
        // sliver, each 64-byte piece of a row is a miss of its own. Its slivers are all NR wide
        // (a partial one zero-padded). AVX2, in-process: 128 x 4096 x 4096 and 60 x 4096 x 4096
        // 10-14% faster; n = 2048 (B half of L3) 0-2% slower, hence the bound; AVX-512's two-line
        // rows gained 0-7% at 60 x 4096 x 4096 and lost 0-2% at 128 x 4096 x 4096 (docs/GEMM.md).
        const bool a_panel = trans_a && !direct_a && p.tpanel;
        const bool b_panel = !trans_b && !direct_b && p.tpanel && b_from_dram;
        const int64_t a_items = jc != 0 ? 0 : a_panel ? ceil_div(kc, kPanelRows) : slivers_m;
        const int64_t b_items = b_panel ? ceil_div(kc, kPanelRows) : slivers_n;
        auto pack = [&](int64_t u0, int64_t u1) {
          for (int64_t u = u0; u < u1; ++u) {
            if (a_panel && u < a_items) {
              const int64_t k0 = u * kPanelRows;
              p.tpanel(apack, a_sliver_elems(p, kc), mr, A + pc * lda + ic, lda, mc, k0, min64(kc, k0 + kPanelRows), kc);
            } else if (u < a_items) {
              const int rows = int(min64(mr, mc - u * mr));
              if (!(direct_a && a_in_place(p, rows))) pack_a(p, apack + u * a_sliver_elems(p, kc), A, lda, trans_a, ic + u * mr, pc, rows, kc);
            } else if (b_panel) {
              const int64_t k0 = (u - a_items) * kPanelRows;
              p.tpanel(bpack, nr * kc, nr, B + pc * ldb + jc, ldb, nc, k0, min64(kc, k0 + kPanelRows), kc);
            } else {
              const int64_t t = u - a_items;
              const int cols = int(min64(nr, nc - t * nr));
              if (!direct_b || cols < nr) pack_b(p, bpack + t * nr * kc, B, ldb, trans_b, pc, jc + t * nr, cols, kc);
            }
          }
        };
        runtime::parallel_for_dynamic(a_items + b_items, nthreads, pack);

        // Work units are (A sliver, column part) pairs; slivers are cut into parts only when
        // there are too few of them to keep every thread busy.
        const int64_t parts = (nthreads == 1 || slivers_m >= 4 * nthreads) ? 1 : min64(2 * nthreads, slivers_n);
        Epilogue<T> ep{alpha, first ? beta : T(1), nullptr, last ? act_code : 0, negative_slope};
        auto run_units = [&](int64_t u0, int64_t u1) {
          for (int64_t u = u0; u < u1; ++u) {
            const int64_t s = u / parts, q = u % parts;
            const int64_t i0 = ic + s * mr;
            const int rows = int(min64(mr, M - i0));
            // A sliver: packed (k-major for op(A) = A^T, rows for op(A) = A) or read in place
            const bool in_place = direct_a && a_in_place(p, rows);
            const T* a = !in_place ? apack + s * a_sliver_elems(p, kc) : trans_a ? A + pc * lda + i0 : A + i0 * lda + pc;
            const int64_t aks = trans_a ? (in_place ? lda : mr) : 1;
            const int64_t ars = trans_a ? 0 : in_place ? lda : kc + kRowPad;
            const int64_t t0 = slivers_n * q / parts, t1 = slivers_n * (q + 1) / parts;
            Epilogue<T> e = ep;
            for (int64_t t = t0; t < t1; ++t) {
              const int64_t j = jc + t * nr;
              const int cols = int(min64(nr, N - j));
              e.bias = (last && bias) ? bias + j : nullptr;
              if (direct_b && cols == nr)
                p.kernel(kc, a, aks, ars, B + pc * ldb + j, ldb, C + i0 * ldc + j, ldc, rows, cols, e);
              else
                p.kernel(kc, a, aks, ars, bpack + t * nr * kc, b_panel ? nr : sliver_width(p, cols), C + i0 * ldc + j,
                         ldc, rows, cols, e);
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
}

// The small path's wide strips (Plan::wide) for K up to this many steps.
constexpr int64_t kWideMaxK = 16;

// The small-problem path (at most kSmallMacs multiply-adds, K in one block of at most KC): the
// calling thread runs the micro-kernel over the tiles directly, without the blocked driver's
// panels, work units and parallel passes, whose fixed cost is a large share of a call this short.
// Column tiles outside, row slivers inside: each B sliver (op(B) = B read in place, or packed once
// into the buffer: B^T, a partial sliver, or any sliver of one-line rows) is reused from L1 by every row sliver, and A (at
// most a few tens of KiB here) stays in L1 throughout. A is read in place (rows of A or of A^T)
// except an edge sliver whose height has no register block of its own, packed once. Short k
// loops run most columns as wider strips of fewer rows where the ISA has them (Plan::wide). Every
// element gets the same k-ordered FMAs and epilogue as in gemm_blocked with one K block, so the
// same result bits whatever the tile.
template <class T>
void gemm_small(const Plan<T>& p, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, const T* bias, Act act,
                T negative_slope) {
  const int mr = p.mr, nr = p.nr;
  const int act_code = epilogue_act(act);
  const int64_t full = M / mr * mr;  // rows covered by full slivers
  const int edge = int(M - full);    // rows of the edge sliver (0: none)
  const bool pack_edge = edge > 0 && !a_in_place(p, edge);
  const Packs<T> packs = packing_buffers<T>(size_t(K * nr), pack_edge ? size_t(a_sliver_elems(p, K)) : 0);
  if (pack_edge) pack_a(p, packs.a, A, lda, trans_a, full, 0, edge, K);
  // A sliver at row i0: element (i, k) at a[k * aks + i] (ars == 0) or a[i * ars + k]
  const int64_t aks_in_place = trans_a ? lda : 1, ars_in_place = trans_a ? 0 : lda;
  const int64_t aks_packed = trans_a ? mr : 1, ars_packed = trans_a ? 0 : K + kRowPad;
  Epilogue<T> ep{alpha, beta, nullptr, act_code, negative_slope};
  // Full slivers of op(B) = B are packed too when the kernel's B rows are one cache line (AVX2)
  // and the k loop is not tiny: read in place, a row segment straddles two lines at numpy's
  // 16-byte alignment. Measured (AVX2 vs OpenBLAS Haswell, float32): 126 x 256 x 64 0.85-0.93x
  // in place, 1.02-1.03x packed; 60 x 1024 x 32 0.85-0.87x, 0.94-0.96x; but 25 x 3136 x 6
  // 0.95x, 0.85-0.90x, and 128 x 256 x 10 either way within noise (hence K >= 16). AVX-512's
  // two-line rows and the portable kernel's half-line rows ran faster in place (docs/GEMM.md).
  const bool pack_full = nr * int64_t(sizeof(T)) == 64 && K >= 16;
  // Column strips end on C's cache lines: when every row of C starts at the same offset within a
  // line (ldc a whole number of lines), a first strip narrower than NR takes the columns up to the
  // first line boundary, and the strips after it store whole lines (numpy's arrays sit 16 bytes
  // past a line: a 128-byte row of an AVX-512 tile then touches three lines, not two). Each
  // element's arithmetic does not depend on its strip. Only for tiles two lines wide and N of 16
  // tiles or more, where the extra strip costs little: AVX-512, 25 x 3136 x 6 A^T (LeNet conv1's
  // input gradient) 13.4 -> 12.0 us, C aligned 12.4 us; at N = 256 the extra strip cost what the
  // lines saved, and AVX2's one-line tiles gained nothing (docs/GEMM.md).
  const int64_t line = 64 / int64_t(sizeof(T)), off = int64_t(reinterpret_cast<uintptr_t>(C) % 64);
  const bool shift = nr >= 2 * line && N >= 16 * nr && off % int64_t(sizeof(T)) == 0 && ldc % line == 0 && off != 0;
  const int64_t head = shift ? line - off / int64_t(sizeof(T)) : nr;
  auto run_strip = [&](int64_t j, int cols) {
    const T* b = B + j;  // op(B) = B in place
    int64_t ldb_tile = ldb;
    if (trans_b || cols < nr || pack_full) {  // B^T, a partial sliver, or one-line rows: packed
      pack_b(p, packs.b, B, ldb, trans_b, 0, j, cols, K);
      b = packs.b;
      ldb_tile = sliver_width(p, cols);
    }
    ep.bias = bias ? bias + j : nullptr;
    if (p.strip) {  // the slivers read in place in one call
      p.strip(K, A, aks_in_place, ars_in_place, trans_a ? 1 : lda, b, ldb_tile, C + j, ldc, int(pack_edge ? full : M),
              cols, ep);
    } else {
      for (int64_t i0 = 0; i0 < full; i0 += mr) {
        const T* a = trans_a ? A + i0 : A + i0 * lda;
        p.kernel(K, a, aks_in_place, ars_in_place, b, ldb_tile, C + i0 * ldc + j, ldc, mr, cols, ep);
      }
    }
    if (edge > 0 && (pack_edge || !p.strip)) {
      const T* a = pack_edge ? packs.a : trans_a ? A + full : A + full * lda;
      p.kernel(K, a, pack_edge ? aks_packed : aks_in_place, pack_edge ? ars_packed : ars_in_place, b, ldb_tile,
               C + full * ldc + j, ldc, edge, cols, ep);
    }
  };
  // Short k loops with op(B) = B in place: strips of p.wide_cols where the ISA has them (AVX-512:
  // 64 columns in 6 x 4-vector blocks; a head strip and the last columns as above). In-process
  // against the 12 x 2 tiles, AVX-512 float32 (docs/GEMM.md): 128 x 256 x 10 (the MLP's K = 10
  // backward) 3-8% faster at C offsets 0, 16 and 32, 64 x 512 x 8 9-13%, 4 x 1024 x 8 13%,
  // 25 x 3136 x 6 A^T 1-3%; 6 x 768 x 9 (one 6-row block either way) 7% slower. At K of 24 and 25
  // it was mixed (6 x 784 x 25 3-8% slower), hence kWideMaxK.
  const bool wide = p.wide && !trans_b && K <= kWideMaxK;
  int64_t j = 0;
  if (head < nr) {
    run_strip(0, int(min64(head, N)));
    j = head;
  }
  for (; wide && j + p.wide_cols <= N; j += p.wide_cols) {
    ep.bias = bias ? bias + j : nullptr;
    p.wide(K, A, aks_in_place, ars_in_place, trans_a ? 1 : lda, B + j, ldb, C + j, ldc, int(M), p.wide_cols, ep);
  }
  for (; j < N; j += nr) run_strip(j, int(min64(nr, N - j)));
  if (act != Act::none && act_code == 0)  // sigmoid, tanh, gelu: on the finished rows (in cache)
    for (int64_t i = 0; i < M; ++i) pydl::ops::activation_forward<T>(C + i * ldc, C + i * ldc, N, act, negative_slope);
}

// C = act(alpha A B^T + beta C + bias) with few rows of A: every output is a dot product of two
// rows read in place (the ISA's dot kernel), where the blocked path would transpose all of B to
// use it M times. Taken for M <= 2, and for M <= kDotMaxM when K >= 256 (below that the blocked
// path wins: each dot product ends in a horizontal sum; docs/GEMM.md). Threads split column
// blocks, as outputs.
constexpr int64_t kDotMaxM = 8;

template <class T>
void gemm_dot(const Plan<T>& p, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
              int64_t ldb, T beta, T* C, int64_t ldc, const T* bias, Act act, T negative_slope) {
  const int act_code = epilogue_act(act);
  const bool other_act = act != Act::none && act_code == 0;
  // Rows per block: all of M when it fits one block; 7 or 8 rows as two of 4 (not 6 + 2).
  const int64_t rb = (p.dot_rows > 4 && M > p.dot_rows) ? 4 : p.dot_rows, cb = p.dot_cols;
  const int64_t col_blocks = ceil_div(N, cb), per_unit = 16;  // 16 column blocks per unit of work
  const int nthreads = double(M) * double(N) * double(K) <= kSmallMacs ? 1 : pydl::runtime::get_num_threads();
  auto run = [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t j0 = u * per_unit * cb, j1 = min64(N, j0 + per_unit * cb);
      for (int64_t i = 0; i < M; i += rb) {
        const int m = int(min64(rb, M - i));
        for (int64_t j = j0; j < j1; j += cb) {
          const Epilogue<T> ep{alpha, beta, bias ? bias + j : nullptr, act_code, negative_slope};
          p.dot(K, A + i * lda, lda, B + j * ldb, ldb, C + i * ldc + j, ldc, m, int(min64(cb, N - j)), ep);
        }
        for (int r = 0; other_act && r < m; ++r) {  // sigmoid, tanh, gelu: on the finished rows
          T* row = C + (i + r) * ldc + j0;
          pydl::ops::activation_forward<T>(row, row, j1 - j0, act, negative_slope);
        }
      }
    }
  };
  runtime::parallel_for_dynamic(ceil_div(col_blocks, per_unit), nthreads, run);
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
  const Setup<T>& setup = active_setup<T>();
  if (!trans_a && trans_b && setup.p.dot && M <= kDotMaxM && (M <= 2 || K >= 256)) {
    gemm_dot<T>(setup.p, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, act, negative_slope);
    return;
  }
  if (K <= setup.bk.kc && double(M) * double(N) * double(K) <= kSmallMacs) {
    gemm_small<T>(setup.p, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, act, negative_slope);
    return;
  }
  gemm_blocked<T>(setup, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, act,
                  negative_slope);
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                          int64_t, float, float*, int64_t, const float*, Act, float);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                           int64_t, double, double*, int64_t, const double*, Act, double);

}  // namespace pydl::gemm
