// Convolution forward/backward: im2col + packed GEMM and the naive direct loops (reference). float32
// shapes that direct_suits() accepts go to the direct kernels (direct.cpp) instead.
//
// Per image n and group g (Kg = C/G * KH * KW, L = OH*OW):
//   forward     y_ng (OC/G, L)  = act(W_g (OC/G, Kg) . col_ng (Kg, L) + b_g)  bias pre-stored in y, GEMM beta = 1,
//                                                                              relu in the GEMM epilogue;
//               or, when OC/G is a multiple of 32, y_ng^T = col_ng^T W_g^T with bias+relu as the GEMM's
//               per-column epilogue and the tile transposed into y. Small images are batched side by
//               side into one GEMM; large ones are cut into blocks of output rows (column block in L2).
//   data grad   gcol_ng (Kg, L) = W_g^T . dz_ng,   dx_n = col2im(gcol_n)
//   weight grad dW_g (OC/G, Kg) = sum_n dz_ng (OC/G, L) . col_ng^T
// The weight gradient is reduced over chunks of images fixed by the shape (chunk_images, conv.h):
// a chunk's images sit side by side in one (Kg, images*L) column buffer, so each chunk is one GEMM
// per group (long K, good for small images); the chunks' partial sums are then added in chunk
// order. Nothing depends on the thread count.
#include "conv/conv.h"

#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include "conv/direct.h"
#include "conv/transpose.h"

#include "gemm/gemm.h"
#include "runtime/parallel.h"

namespace pydl::conv {

using pydl::ops::Act;

namespace {

constexpr int64_t kMaxChunkCols = int64_t(1) << 21;  // elements of one chunk's column buffer
constexpr double kMinParallelMacs = 1 << 20;
constexpr int64_t kMinForwardCols = 512;
constexpr int64_t kColBlock = 96 * 1024;  // forward column-matrix block (elements) kept in L2  // forward GEMMs at least this wide (images batched)

// Per-thread scratch buffers reused across calls (slot = role), grown on demand.
template <class T>
T* workspace(int slot, int64_t n) {
  thread_local std::vector<T> bufs[4];
  std::vector<T>& v = bufs[slot];
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  return v.data();
}

// 1x1, stride 1, no padding: the column matrix is the image itself.
bool is_pointwise(const Conv2dShape& s) {
  return s.KH == 1 && s.KW == 1 && s.sh == 1 && s.sw == 1 && s.pt == 0 && s.pl == 0 && s.OH == s.H && s.OW == s.W;
}

// fn(i) for i in [0, n): items split among threads when there are at least as many as threads
// (each item then runs its GEMMs on one thread); otherwise serially, each GEMM threading itself.
// Either way every item computes the same bits.
template <class F>
void for_each_item(int64_t n, double macs_per_item, const F& fn) {
  const int nt = pydl::runtime::get_num_threads();
  if (nt > 1 && n >= nt && double(n) * macs_per_item >= kMinParallelMacs) {
    pydl::runtime::parallel_for(n, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) fn(i);
    });
  } else {
    for (int64_t i = 0; i < n; ++i) fn(i);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Fast path.

// The column matrix (G*Kg, nb*L) of images [n0, n0+nb), side by side: x itself for one pointwise
// image, else built in workspace slot `slot` (a channel copy for pointwise, im2col otherwise).
template <class T>
const T* chunk_columns(const T* x, int64_t n0, int64_t nb, const Conv2dShape& s, bool pointwise, int slot) {
  const int64_t HW = s.H * s.W, L = s.OH * s.OW, LL = nb * L;
  if (pointwise && nb == 1) return x + n0 * s.C * HW;
  T* buf = workspace<T>(slot, s.C * s.KH * s.KW * LL);
  for (int64_t k = 0; k < nb; ++k) {
    const T* xn = x + (n0 + k) * s.C * HW;
    if (pointwise)
      for (int64_t c = 0; c < s.C; ++c) std::memcpy(buf + c * LL + k * L, xn + c * HW, sizeof(T) * size_t(L));
    else
      im2col(buf + k * L, LL, xn, s.C, s);
  }
  return buf;
}

// One large image, in blocks of output rows whose column matrix (at most kColBlock elements)
// stays in L2 while the GEMM reads it: yn (OC, OH*OW), xn (C, H, W). A block of rows [i0, i0+nr)
// is the same convolution with OH = nr and the top padding moved up by i0*sh.
template <class T>
void forward_row_blocks(T* yn, const T* xn, const T* w, const T* b, const Conv2dShape& s, Act act, bool transposed) {
  const int64_t G = s.groups, OCg = s.OC / G, Kg = s.C / G * s.KH * s.KW, L = s.OH * s.OW;
  const int64_t rb = kColBlock / (G * Kg * s.OW) > 1 ? kColBlock / (G * Kg * s.OW) : 1;
  T* col = workspace<T>(0, G * Kg * rb * s.OW);
  T* tmp = transposed ? workspace<T>(1, OCg * rb * s.OW) : nullptr;
  for (int64_t i0 = 0; i0 < s.OH; i0 += rb) {
    const int64_t nr = s.OH - i0 < rb ? s.OH - i0 : rb, Lb = nr * s.OW;
    Conv2dShape sb = s;
    sb.OH = nr;
    sb.pt = s.pt - i0 * s.sh;
    im2col(col, Lb, xn, s.C, sb);
    for (int64_t g = 0; g < G; ++g) {
      const T* wg = w + g * OCg * Kg;
      const T* colg = col + g * Kg * Lb;
      const T* bg = b ? b + g * OCg : nullptr;
      T* yb = yn + g * OCg * L + i0 * s.OW;  // (OCg, Lb) with row stride L
      if (transposed) {
        pydl::gemm::gemm<T>(true, true, Lb, OCg, Kg, T(1), colg, Lb, wg, Kg, T(0), tmp, OCg, bg, act);
        transpose(yb, L, tmp, OCg, OCg, Lb);
        continue;
      }
      if (bg)
        for (int64_t o = 0; o < OCg; ++o)
          for (int64_t t = 0; t < Lb; ++t) yb[o * L + t] = bg[o];
      pydl::gemm::gemm<T>(false, false, OCg, Lb, Kg, T(1), wg, Kg, colg, Lb, bg ? T(1) : T(0), yb, L, nullptr, act);
    }
  }
}

template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s, Act act) {
  // y (N, OC, OH, OW), x (N, C, H, W), w (OC, C/G, KH, KW), b (OC,) or null.
  const int64_t G = s.groups, Cg = s.C / G, OCg = s.OC / G, Kg = Cg * s.KH * s.KW;
  const int64_t HW = s.H * s.W, L = s.OH * s.OW;
  if (s.N == 0 || s.OC == 0 || L == 0) return;
  if constexpr (std::is_same_v<T, float>)
    if (direct_suits(s)) return direct_forward(y, x, w, b, s, act);
  const bool direct = is_pointwise(s);
  // Small images are batched: a chunk of ipc images side by side makes one wider GEMM.
  const int64_t ipc = L >= kMinForwardCols ? 1 : (kMinForwardCols + L - 1) / L < s.N ? (kMinForwardCols + L - 1) / L : s.N;
  const int64_t nchunks = (s.N + ipc - 1) / ipc;
  // Orientation: y_g^T (LL, OCg) = col_g^T W_g^T when OCg fills whole micro-tile columns (the GEMM
  // then adds bias and relu as per-column epilogue, and the tile is transposed into y), else
  // y_g (OCg, LL) = W_g col_g with the bias pre-stored in y (beta = 1) and relu in the epilogue.
  const bool transposed = OCg % 32 == 0 && L >= 32;
  for_each_item(nchunks, double(ipc) * double(s.OC) * double(Kg) * double(L), [&](int64_t ci) {
    const int64_t n0 = ci * ipc, nb = s.N - n0 < ipc ? s.N - n0 : ipc, LL = nb * L;
    if (nb == 1 && !direct && G * Kg * L > kColBlock) {
      forward_row_blocks(y + n0 * s.OC * L, x + n0 * s.C * HW, w, b, s, act, transposed);
      return;
    }
    const T* col = chunk_columns(x, n0, nb, s, direct, 0);
    T* tmp = (transposed || nb > 1) ? workspace<T>(1, OCg * LL) : nullptr;
    for (int64_t g = 0; g < G; ++g) {
      const T* wg = w + g * OCg * Kg;
      const T* colg = col + g * Kg * LL;
      const T* bg = b ? b + g * OCg : nullptr;
      if (transposed) {
        pydl::gemm::gemm<T>(true, true, LL, OCg, Kg, T(1), colg, LL, wg, Kg, T(0), tmp, OCg, bg, act);
        for (int64_t k = 0; k < nb; ++k) transpose(y + ((n0 + k) * s.OC + g * OCg) * L, L, tmp + k * L * OCg, OCg, OCg, L);
        continue;
      }
      T* out = nb == 1 ? y + (n0 * s.OC + g * OCg) * L : tmp;
      if (bg)
        for (int64_t o = 0; o < OCg; ++o)
          for (int64_t t = 0; t < LL; ++t) out[o * LL + t] = bg[o];
      pydl::gemm::gemm<T>(false, false, OCg, LL, Kg, T(1), wg, Kg, colg, LL, bg ? T(1) : T(0), out, LL, nullptr, act);
      if (nb > 1)
        for (int64_t k = 0; k < nb; ++k)
          for (int64_t o = 0; o < OCg; ++o)
            std::memcpy(y + ((n0 + k) * s.OC + g * OCg + o) * L, tmp + o * LL + k * L, sizeof(T) * size_t(L));
    }
  });
}

template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* y, const Conv2dShape& s,
                     Act act, bool accumulate_w, bool accumulate_b) {
  // dx (N, C, H, W) or null, dw (OC, C/G, KH, KW), db (OC,) or null, dy and y (N, OC, OH, OW).
  const int64_t G = s.groups, Cg = s.C / G, OCg = s.OC / G, Kg = Cg * s.KH * s.KW;
  const int64_t HW = s.H * s.W, L = s.OH * s.OW, WN = s.OC * Kg;
  if constexpr (std::is_same_v<T, float>)
    if (L > 0 && direct_suits(s)) return direct_backward(dx, dw, db, dy, x, w, y, s, act, accumulate_w, accumulate_b);
  const bool direct = is_pointwise(s);
  const bool relu = act == Act::relu;
  // Chunks of `ipc` images, a function of the shape only.
  const int64_t col_per_image = (G * Kg > s.OC ? G * Kg : s.OC) * (L > 0 ? L : 1);
  const int64_t ipc = chunk_images(s.N, L, col_per_image, kMaxChunkCols);
  const int64_t nchunks = s.N > 0 ? (s.N + ipc - 1) / ipc : 0;
  if (nchunks == 0 || L == 0) {  // nothing flows back: zero gradients
    if (!accumulate_w) std::memset(dw, 0, sizeof(T) * size_t(WN));
    if (db && !accumulate_b) std::memset(db, 0, sizeof(T) * size_t(s.OC));
    if (dx) std::memset(dx, 0, sizeof(T) * size_t(s.N * s.C * HW));
    return;
  }
  const bool in_place = nchunks == 1 && !accumulate_w;
  T* pdw = in_place ? dw : workspace<T>(3, nchunks * WN);  // the caller's slot 3: chunks use 0..2
  std::vector<double> pdb(db ? size_t(nchunks * s.OC) : 0);

  for_each_item(nchunks, 3.0 * double(ipc) * double(s.OC) * double(Kg) * double(L), [&](int64_t ci) {
    const int64_t n0 = ci * ipc, nb = s.N - n0 < ipc ? s.N - n0 : ipc, LL = nb * L;
    // dz (OC, LL): the chunk's output gradients side by side, relu' applied.
    const T* dz = dy + n0 * s.OC * L;
    if (nb > 1 || relu) {
      T* buf = workspace<T>(0, s.OC * LL);
      for (int64_t k = 0; k < nb; ++k)
        for (int64_t o = 0; o < s.OC; ++o) {
          const T* src = dy + ((n0 + k) * s.OC + o) * L;
          T* dst = buf + o * LL + k * L;
          if (relu) {
            const T* yr = y + ((n0 + k) * s.OC + o) * L;
            pydl::ops::activation_backward<T>(dst, src, yr, nullptr, L, Act::relu, T(0));  // y > 0 iff x > 0
          } else {
            std::memcpy(dst, src, sizeof(T) * size_t(L));
          }
        }
      dz = buf;
    }
    if (db)
      for (int64_t o = 0; o < s.OC; ++o) {
        double acc = 0.0;
        for (int64_t t = 0; t < LL; ++t) acc += double(dz[o * LL + t]);
        pdb[size_t(ci * s.OC + o)] = acc;
      }
    // col (G*Kg, LL): the chunk's column matrices side by side.
    const T* col = chunk_columns(x, n0, nb, s, direct, 1);
    for (int64_t g = 0; g < G; ++g)
      pydl::gemm::gemm<T>(false, true, OCg, Kg, LL, T(1), dz + g * OCg * LL, LL, col + g * Kg * LL, LL, T(0),
                          pdw + ci * WN + g * OCg * Kg, Kg);
    if (!dx) return;
    if (direct && nb == 1) {
      for (int64_t g = 0; g < G; ++g)
        pydl::gemm::gemm<T>(true, false, Cg, L, OCg, T(1), w + g * OCg * Kg, Kg, dz + g * OCg * LL, LL, T(0),
                            dx + n0 * s.C * HW + g * Cg * HW, HW);
      return;
    }
    T* gcol = workspace<T>(2, G * Kg * LL);
    for (int64_t g = 0; g < G; ++g)
      pydl::gemm::gemm<T>(true, false, Kg, LL, OCg, T(1), w + g * OCg * Kg, Kg, dz + g * OCg * LL, LL, T(0),
                          gcol + g * Kg * LL, LL);
    for (int64_t k = 0; k < nb; ++k) {
      T* dxn = dx + (n0 + k) * s.C * HW;
      if (direct) {
        for (int64_t c = 0; c < s.C; ++c) std::memcpy(dxn + c * HW, gcol + c * LL + k * L, sizeof(T) * size_t(L));
      } else {
        std::memset(dxn, 0, sizeof(T) * size_t(s.C * HW));
        col2im_add(dxn, gcol + k * L, LL, s.C, s);
      }
    }
  });

  // Sum the chunks' partials in chunk order (threads split the elements of dW).
  if (!in_place) {
    auto reduce = [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        T v = pdw[i];
        for (int64_t c = 1; c < nchunks; ++c) v += pdw[c * WN + i];
        dw[i] = accumulate_w ? dw[i] + v : v;
      }
    };
    if (WN * nchunks >= (1 << 18))
      pydl::runtime::parallel_for(WN, 1, reduce);
    else
      reduce(0, WN);
  }
  if (db)
    for (int64_t o = 0; o < s.OC; ++o) {
      double v = 0.0;
      for (int64_t c = 0; c < nchunks; ++c) v += pdb[size_t(c * s.OC + o)];
      db[o] = accumulate_b ? db[o] + T(v) : T(v);
    }
}

// ---------------------------------------------------------------------------------------------
// Naive references: direct loops over every output and tap, double accumulators, one thread.

template <class T>
void conv2d_forward_ref(T* y, const T* x, const T* w, const T* b, const Conv2dShape& s, Act act) {
  const int64_t Cg = s.C / s.groups, OCg = s.OC / s.groups;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t o = 0; o < s.OC; ++o) {
      const int64_t g = o / OCg;
      for (int64_t i = 0; i < s.OH; ++i)
        for (int64_t j = 0; j < s.OW; ++j) {
          double acc = b ? double(b[o]) : 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t p = 0; p < s.KH; ++p)
              for (int64_t q = 0; q < s.KW; ++q) {
                const int64_t ih = i * s.sh - s.pt + p * s.dh, iw = j * s.sw - s.pl + q * s.dw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                acc += double(w[((o * Cg + c) * s.KH + p) * s.KW + q]) *
                       double(x[((n * s.C + g * Cg + c) * s.H + ih) * s.W + iw]);
              }
          T v = T(acc);
          if (act == Act::relu && !(v > T(0))) v = v != v ? v : T(0);
          y[((n * s.OC + o) * s.OH + i) * s.OW + j] = v;
        }
    }
}

template <class T>
void conv2d_backward_ref(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const T* y,
                         const Conv2dShape& s, Act act, bool accumulate_w, bool accumulate_b) {
  const int64_t Cg = s.C / s.groups, OCg = s.OC / s.groups, L = s.OH * s.OW;
  const int64_t WN = s.OC * Cg * s.KH * s.KW;
  std::vector<double> gx(dx ? size_t(s.N * s.C * s.H * s.W) : 0, 0.0), gw(size_t(WN), 0.0), gb(size_t(s.OC), 0.0);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t o = 0; o < s.OC; ++o) {
      const int64_t g = o / OCg;
      for (int64_t i = 0; i < s.OH; ++i)
        for (int64_t j = 0; j < s.OW; ++j) {
          const int64_t at = (n * s.OC + o) * L + i * s.OW + j;
          const double d = act == Act::relu && !(y[at] > T(0)) ? 0.0 : double(dy[at]);
          gb[size_t(o)] += d;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t p = 0; p < s.KH; ++p)
              for (int64_t q = 0; q < s.KW; ++q) {
                const int64_t ih = i * s.sh - s.pt + p * s.dh, iw = j * s.sw - s.pl + q * s.dw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                const int64_t wi = ((o * Cg + c) * s.KH + p) * s.KW + q;
                const int64_t xi = ((n * s.C + g * Cg + c) * s.H + ih) * s.W + iw;
                gw[size_t(wi)] += d * double(x[xi]);
                if (dx) gx[size_t(xi)] += d * double(w[wi]);
              }
        }
    }
  if (dx)
    for (size_t i = 0; i < gx.size(); ++i) dx[i] = T(gx[i]);
  for (int64_t i = 0; i < WN; ++i) dw[i] = accumulate_w ? dw[i] + T(gw[size_t(i)]) : T(gw[size_t(i)]);
  if (db)
    for (int64_t o = 0; o < s.OC; ++o) db[o] = accumulate_b ? db[o] + T(gb[size_t(o)]) : T(gb[size_t(o)]);
}

#define PYDL_CONV_INSTANTIATE(T)                                                                              \
  template void conv2d_forward<T>(T*, const T*, const T*, const T*, const Conv2dShape&, Act);                   \
  template void conv2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const Conv2dShape&, Act, \
                                   bool, bool);                                                               \
  template void conv2d_forward_ref<T>(T*, const T*, const T*, const T*, const Conv2dShape&, Act);               \
  template void conv2d_backward_ref<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const Conv2dShape&,  \
                                       Act, bool, bool);
PYDL_CONV_INSTANTIATE(float)
PYDL_CONV_INSTANTIATE(double)
#undef PYDL_CONV_INSTANTIATE

}  // namespace pydl::conv
