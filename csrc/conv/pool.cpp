// Max, average and adaptive average pooling (pool.h): direct loops over each plane, windows
// clipped to the input once per output row/column, sums in double. Threads split planes.
#include "conv/pool.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "runtime/parallel.h"

namespace pydl::conv {

namespace {

inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

// fn(p) for every plane; threads split planes when the work is large enough.
template <class F>
void for_planes(const Pool2dShape& s, int64_t work_per_plane, const F& fn) {
  auto body = [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) fn(p);
  };
  if (s.P * work_per_plane >= (1 << 16))
    pydl::runtime::parallel_for(s.P, 1, body);
  else
    body(0, s.P);
}

}  // namespace

// The running maximum of a window: v replaces best when larger, or when NaN (a NaN wins, as torch).
// Written with selects, not branches: on real data the comparison is a coin toss and a
// mispredicted branch per element costs more than the whole window.
template <class T>
inline void take_max(T v, int64_t at_v, T* best, int64_t* at) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  const bool take = (v > *best) | (v != v);  // `|`, not `||`: both tests, no branch
  const int64_t m = -static_cast<int64_t>(take);
  *at = (at_v & m) | (*at & ~m);
  U vb, bb;  // the value selected through its bits (a float ?: compiles to a branch)
  std::memcpy(&vb, &v, sizeof(T));
  std::memcpy(&bb, best, sizeof(T));
  bb = (vb & U(m)) | (bb & ~U(m));
  std::memcpy(best, &bb, sizeof(T));
}

template <class T>
void max_pool2d_forward(T* y, int64_t* idx, const T* x, const Pool2dShape& s) {
  // y, idx (P, OH, OW); x (P, H, W)
  const int64_t OL = s.OH * s.OW;
  const bool k2s2 = s.KH == 2 && s.KW == 2 && s.sh == 2 && s.sw == 2 && s.ph == 0 && s.pw == 0;
  for_planes(s, OL * s.KH * s.KW, [&](int64_t p) {
    const T* xp = x + p * s.H * s.W;
    if (k2s2) {  // the common 2x2 / stride 2 window, always inside the plane: same order as below
      const int64_t W = s.W, OW = s.OW;
      for (int64_t i = 0; i < s.OH; ++i) {
        const T* r0 = xp + 2 * i * W;
        const T* r1 = r0 + W;
        T* yr = y + p * OL + i * OW;
        int64_t* ir = idx + p * OL + i * OW;
        for (int64_t j = 0; j < OW; ++j) {
          const int64_t a = 2 * i * W + 2 * j;
          T best = r0[2 * j];
          int64_t at = a;
          take_max(r0[2 * j + 1], a + 1, &best, &at);
          take_max(r1[2 * j], a + W, &best, &at);
          take_max(r1[2 * j + 1], a + W + 1, &best, &at);
          yr[j] = best;
          ir[j] = at;
        }
      }
      return;
    }
    for (int64_t i = 0; i < s.OH; ++i) {
      const int64_t h0 = imax(i * s.sh - s.ph, 0), h1 = imin(i * s.sh - s.ph + s.KH, s.H);
      for (int64_t j = 0; j < s.OW; ++j) {
        const int64_t w0 = imax(j * s.sw - s.pw, 0), w1 = imin(j * s.sw - s.pw + s.KW, s.W);
        T best = -std::numeric_limits<T>::infinity();
        int64_t at = h0 * s.W + w0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) {
            take_max(xp[h * s.W + w], h * s.W + w, &best, &at);
          }
        y[p * OL + i * s.OW + j] = best;
        idx[p * OL + i * s.OW + j] = at;
      }
    }
  });
}

template <class T>
bool max_pool2d_backward(T* dx, const T* dy, const int64_t* idx, const Pool2dShape& s) {
  // dx (P, H, W); dy, idx (P, OH, OW)
  const int64_t OL = s.OH * s.OW, L = s.H * s.W;
  std::atomic<bool> ok{true};
  for_planes(s, OL + L, [&](int64_t p) {
    T* dxp = dx + p * L;
    std::memset(dxp, 0, sizeof(T) * size_t(L));
    for (int64_t k = 0; k < OL; ++k) {
      const int64_t at = idx[p * OL + k];
      if (at < 0 || at >= L) {
        ok.store(false, std::memory_order_relaxed);
        continue;
      }
      dxp[at] += dy[p * OL + k];
    }
  });
  return ok.load();
}

template <class T>
void avg_pool2d_forward(T* y, const T* x, const Pool2dShape& s) {
  const int64_t OL = s.OH * s.OW;
  const double inv = 1.0 / double(s.KH * s.KW);
  for_planes(s, OL * s.KH * s.KW, [&](int64_t p) {
    const T* xp = x + p * s.H * s.W;
    for (int64_t i = 0; i < s.OH; ++i) {
      const int64_t h0 = imax(i * s.sh - s.ph, 0), h1 = imin(i * s.sh - s.ph + s.KH, s.H);
      for (int64_t j = 0; j < s.OW; ++j) {
        const int64_t w0 = imax(j * s.sw - s.pw, 0), w1 = imin(j * s.sw - s.pw + s.KW, s.W);
        double acc = 0.0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) acc += double(xp[h * s.W + w]);
        y[p * OL + i * s.OW + j] = T(acc * inv);
      }
    }
  });
}

template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const Pool2dShape& s) {
  const int64_t OL = s.OH * s.OW, L = s.H * s.W;
  const T inv = T(1.0 / double(s.KH * s.KW));
  for_planes(s, OL * s.KH * s.KW + L, [&](int64_t p) {
    T* dxp = dx + p * L;
    std::memset(dxp, 0, sizeof(T) * size_t(L));
    for (int64_t i = 0; i < s.OH; ++i) {
      const int64_t h0 = imax(i * s.sh - s.ph, 0), h1 = imin(i * s.sh - s.ph + s.KH, s.H);
      for (int64_t j = 0; j < s.OW; ++j) {
        const int64_t w0 = imax(j * s.sw - s.pw, 0), w1 = imin(j * s.sw - s.pw + s.KW, s.W);
        const T g = dy[p * OL + i * s.OW + j] * inv;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) dxp[h * s.W + w] += g;
      }
    }
  });
}

template <class T>
void adaptive_avg_pool2d_forward(T* y, const T* x, const Pool2dShape& s) {
  const int64_t OL = s.OH * s.OW;
  for_planes(s, s.H * s.W + OL, [&](int64_t p) {
    const T* xp = x + p * s.H * s.W;
    for (int64_t i = 0; i < s.OH; ++i) {
      const int64_t h0 = i * s.H / s.OH, h1 = ((i + 1) * s.H + s.OH - 1) / s.OH;
      for (int64_t j = 0; j < s.OW; ++j) {
        const int64_t w0 = j * s.W / s.OW, w1 = ((j + 1) * s.W + s.OW - 1) / s.OW;
        double acc = 0.0;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) acc += double(xp[h * s.W + w]);
        y[p * OL + i * s.OW + j] = T(acc / double((h1 - h0) * (w1 - w0)));
      }
    }
  });
}

template <class T>
void adaptive_avg_pool2d_backward(T* dx, const T* dy, const Pool2dShape& s) {
  const int64_t OL = s.OH * s.OW, L = s.H * s.W;
  for_planes(s, L + OL, [&](int64_t p) {
    T* dxp = dx + p * L;
    std::memset(dxp, 0, sizeof(T) * size_t(L));
    for (int64_t i = 0; i < s.OH; ++i) {
      const int64_t h0 = i * s.H / s.OH, h1 = ((i + 1) * s.H + s.OH - 1) / s.OH;
      for (int64_t j = 0; j < s.OW; ++j) {
        const int64_t w0 = j * s.W / s.OW, w1 = ((j + 1) * s.W + s.OW - 1) / s.OW;
        const T g = dy[p * OL + i * s.OW + j] / T((h1 - h0) * (w1 - w0));
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) dxp[h * s.W + w] += g;
      }
    }
  });
}

#define PYDL_POOL_INSTANTIATE(T)                                                              \
  template void max_pool2d_forward<T>(T*, int64_t*, const T*, const Pool2dShape&);             \
  template bool max_pool2d_backward<T>(T*, const T*, const int64_t*, const Pool2dShape&);      \
  template void avg_pool2d_forward<T>(T*, const T*, const Pool2dShape&);                       \
  template void avg_pool2d_backward<T>(T*, const T*, const Pool2dShape&);                      \
  template void adaptive_avg_pool2d_forward<T>(T*, const T*, const Pool2dShape&);              \
  template void adaptive_avg_pool2d_backward<T>(T*, const T*, const Pool2dShape&);
PYDL_POOL_INSTANTIATE(float)
PYDL_POOL_INSTANTIATE(double)
#undef PYDL_POOL_INSTANTIATE

}  // namespace pydl::conv
