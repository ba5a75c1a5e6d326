// Driver of the direct convolution (direct.h): padded copies (split into the stride's phases), the
// per-ISA kernels, and the copies of their results into NCHW.
//
// Per image n and group g (Kg = C/G*KH*KW taps; xp_n (C, Hp, Wp) the zero-padded input, per phase;
// a "wide" row t = i*Wp + j of Tv = roundup((OH-1)*Wp + OW, unit) pixels, the last Wp - OW of
// each row discarded; small images stacked, see Plan):
//   forward      OC/G whole vectors: yt (OH*OW, OCg) = forward_t over the valid pixels, transposed into y
//                                  (weights and yt channel-blocked; images batched per weight block);
//                otherwise         yw (OCg, Tv)    = forward over the wide pixels, valid columns copied;
//                depthwise (G == C == OC): one plane per channel. Bias and ReLU are added in the copy.
//   weight grad  per shape-determined chunk of images: wgrad_t (dz transposed to (L, OCg)) or the
//                wide wgrad (dz in wide rows, zeros in the discarded columns); partials added in
//                chunk order.
//   data grad    the cheaper of: a gather (stride 1: the forward kernels over dz padded by dil*(k-1) - pad,
//                with the weights flipped and transposed to (OCg*KH*KW, Cg); channel-vectorised when Cg
//                is whole vectors) or a scatter (each tap's products added into the padded input's
//                gradient, phases included: no work on the padding, which wins for unpadded layers
//                such as LeNet's c2; the only choice for strides).
// Every output element is computed by one thread in a fixed order: bitwise identical for any thread count.
// Every sum is blocked: at most kChain products per register (direct.h).
#include "conv/direct.h"
#include "conv/transpose.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "runtime/cpu.h"
#include "runtime/parallel.h"

namespace pydl::conv {

using pydl::ops::Act;

namespace {

constexpr int64_t kMaxChunkFloats = int64_t(1) << 21;  // one weight-gradient chunk's buffers
constexpr int64_t kPassFloats = int64_t(1) << 16;      // stacked forward passes: padded input floats (L2)
constexpr double kMinParallelMacs = 1 << 20;
constexpr int64_t kBatchPixels = 512;  // channel-vectorised passes batch images up to this many pixels

const DirectKernels& kernels() {
  return pydl::runtime::select(avx512::direct_kernels, avx2::direct_kernels, generic::direct_kernels)();
}

// Per-thread scratch buffers reused across calls (slot = role), grown on demand.
float* scratch(int slot, int64_t n) {
  thread_local std::vector<float> bufs[7];
  std::vector<float>& v = bufs[slot];
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  return v.data();
}

int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// fn(i) for i in [0, n), split among threads when the work is large enough; every i computes
// the same bits wherever it runs.
template <class F>
void for_each_item(int64_t n, double macs_per_item, const F& fn) {
  if (pydl::runtime::get_num_threads() > 1 && n > 1 && double(n) * macs_per_item >= kMinParallelMacs)
    pydl::runtime::parallel_for(n, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) fn(i);
    });
  else
    for (int64_t i = 0; i < n; ++i) fn(i);
}

// dst (C, Hd, Wd) followed by `slack` zeros: src (C, Hs, Ws) placed at row `top`, column `left`
// (rows/columns falling outside dst are dropped), zeros elsewhere. src rows have stride lds,
// planes stride pls.
void pad_copy(float* dst, int64_t Hd, int64_t Wd, const float* src, int64_t C, int64_t Hs, int64_t Ws, int64_t lds,
              int64_t pls, int64_t top, int64_t left, int64_t slack) {
  const int64_t c0 = left, c1 = left + Ws < Wd ? left + Ws : Wd;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t r = 0; r < Hd; ++r) {
      float* d = dst + (c * Hd + r) * Wd;
      const int64_t rs = r - top;
      if (rs < 0 || rs >= Hs) {
        std::memset(d, 0, sizeof(float) * size_t(Wd));
        continue;
      }
      for (int64_t j = 0; j < c0; ++j) d[j] = 0.0f;
      if (c1 > c0) std::memcpy(d + c0, src + c * pls + rs * lds, sizeof(float) * size_t(c1 - c0));
      for (int64_t j = c1 > c0 ? c1 : c0; j < Wd; ++j) d[j] = 0.0f;
    }
  std::memset(dst + C * Hd * Wd, 0, sizeof(float) * size_t(slack));
}

// The geometry shared by forward and backward.
//
// Strides: the padded input is split into its sh*sw stride phases (the polyphase decomposition of
// a strided filter; Vaidyanathan, "Multirate Systems and Filter Banks", 1993, §4.3): phase (a, b)
// holds the padded input's rows a, a+sh, ... and columns b, b+sw, ..., so output pixel (i, j)
// reads tap (p, q) at row i + p*dh/sh, column j + q*dw/sw of phase ((p*dh) % sh, (q*dw) % sw): a
// stride-1 access again, and every kernel below works unchanged. Stride 1 is one phase.
//
// Layout of a pass over nb images: xp (C, phases, nb*Hp, Wp) followed by `unit` zeros: each phase
// plane holds the nb images one below the other (image n's rows start at row n*Hp). An image's
// wide pixels are t = i*Wp + j, T1 = (OH-1)*Wp + OW of them; the last Wp - OW of each row are
// discarded. Small images are "stacked": the wide pixels run on across the images of the pass
// (image n's at n*Hp*Wp + t), one kernel call for all of them, when that computes fewer pixels
// than rounding each image up to whole vectors (1-D signals: one row per image).
struct Plan {
  int64_t G, Cg, OCg, KK, Kg;  // groups, channels per group, taps per channel KH*KW, taps per group
  int64_t ph;                  // stride phases sh*sw
  int64_t Hp, Wp, img;         // one image's part of a phase plane: Hp x Wp = img
  int64_t T1, Tv1;             // one image's wide pixels; rounded up to unit
  int64_t lanes;  // the kernels' vector width
  int64_t unit;   // wide pixel counts are multiples of it (lanes, at least 4), and buffers carry as much slack
  bool depthwise;
  bool chan;     // channel-vectorised kernels: OCg is whole vectors (then only valid pixels are computed)
  bool stacked;  // the wide pixels of a pass's images run on, one segment for all of them
};

Plan make_plan(const Conv2dShape& s, int64_t lanes) {
  Plan p;
  p.G = s.groups, p.Cg = s.C / s.groups, p.OCg = s.OC / s.groups, p.KK = s.KH * s.KW, p.Kg = p.Cg * p.KK;
  p.ph = s.sh * s.sw;
  p.Hp = s.OH + s.dh * (s.KH - 1) / s.sh, p.Wp = s.OW + s.dw * (s.KW - 1) / s.sw, p.img = p.Hp * p.Wp;
  p.T1 = (s.OH - 1) * p.Wp + s.OW, p.unit = lanes > 4 ? lanes : 4, p.Tv1 = round_up(p.T1, p.unit);
  p.lanes = lanes;
  p.depthwise = s.groups == s.C && s.OC == s.C;
  p.chan = lanes > 1 && !p.depthwise && p.OCg % lanes == 0;
  p.stacked = !p.chan && p.img < p.Tv1;
  return p;
}

// The buffers of one pass over nb images: phase planes of nb*img floats, channel stride cs; wide
// pixels in nseg segments of segT (stacked: one for all images, image n at n*img; else one per
// image); off (Kg,): tap (c, p, q) of a group at off = c*cs + phase*plane + row*Wp + column.
struct Pass {
  int64_t nb, plane, cs, nseg, segT;
  std::vector<int64_t> off;
  int64_t seg(int64_t n) const { return nseg == 1 ? 0 : n; }       // image n's segment
  int64_t at(int64_t n) const { return nseg == 1 ? n * plane / nb : 0; }  // and its start in it
};

Pass make_pass(const Conv2dShape& s, const Plan& p, int64_t nb) {
  Pass q;
  q.nb = nb, q.plane = nb * p.img, q.cs = p.ph * q.plane;
  q.nseg = p.stacked ? 1 : nb;
  q.segT = p.stacked ? round_up((nb - 1) * p.img + p.T1, p.unit) : p.Tv1;
  q.off.resize(size_t(p.Kg));
  for (int64_t c = 0; c < p.Cg; ++c)
    for (int64_t a = 0; a < s.KH; ++a)
      for (int64_t b = 0; b < s.KW; ++b) {
        const int64_t r = a * s.dh, col = b * s.dw, phase = (r % s.sh) * s.sw + col % s.sw;
        q.off[size_t((c * s.KH + a) * s.KW + b)] = c * q.cs + phase * q.plane + r / s.sh * p.Wp + col / s.sw;
      }
  return q;
}

// ceil(a / b) for b > 0 and any sign of a.
int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

// xp (C, ph, nb*Hp, Wp) + unit zeros (the layout above) from nb images x (N, C, H, W) at x:
// phase (a, b), row r, column j of image n = the padded input at row r*sh + a, column j*sw + b.
// Rows are split in columns of as many rows as possible (a 1-D batch: one call per channel).
void phase_copy(const DirectKernels& kern, float* xp, const float* x, const Conv2dShape& s, const Plan& p,
                const Pass& q) {
  const int64_t HW = s.H * s.W, is = s.C * HW;
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t a = 0; a < s.sh; ++a) {
      float* dp = xp + c * q.cs + a * s.sw * q.plane;  // phase (a, 0); (a, b) at + b*plane
      // rows r reading input row h = r*sh + a - pt in [0, H): [r0, r1)
      const int64_t r0 = std::clamp<int64_t>(ceil_div(s.pt - a, s.sh), 0, p.Hp);
      const int64_t r1 = std::clamp<int64_t>(ceil_div(s.H + s.pt - a, s.sh), r0, p.Hp);
      for (int64_t n = 0; n < q.nb; ++n)
        for (int64_t r = 0; r < p.Hp; ++r)
          if (r < r0 || r >= r1)
            for (int64_t b = 0; b < s.sw; ++b) std::memset(dp + b * q.plane + n * p.img + r * p.Wp, 0, sizeof(float) * size_t(p.Wp));
      if (r1 == r0) continue;
      const float* src = x + c * HW + (r0 * s.sh + a - s.pt) * s.W;
      if (q.nb >= r1 - r0)
        for (int64_t r = r0; r < r1; ++r)
          kern.split_rows(dp + r * p.Wp, p.img, q.plane, src + (r - r0) * s.sh * s.W, is, q.nb, s.W, s.pl, s.sw, p.Wp);
      else
        for (int64_t n = 0; n < q.nb; ++n)
          kern.split_rows(dp + n * p.img + r0 * p.Wp, p.Wp, q.plane, src + n * is, s.sh * s.W, r1 - r0, s.W, s.pl,
                          s.sw, p.Wp);
    }
  std::memset(xp + s.C * q.cs, 0, sizeof(float) * size_t(p.unit));
}

// The adjoint of phase_copy's interior: dx (nb images, NCHW) = dxp (C, ph, nb*Hp, Wp) at the input
// positions (0 where no phase position exists: input rows/columns no output reads).
void phase_extract(const DirectKernels& kern, float* dx, const float* dxp, const Conv2dShape& s, const Plan& p,
                   const Pass& q) {
  const int64_t HW = s.H * s.W, is = s.C * HW;
  if (s.sh == 1 && q.nb < s.H && s.pt + s.H <= p.Hp) {  // an image's rows are consecutive rows of a plane
    for (int64_t n = 0; n < q.nb; ++n)
      for (int64_t c = 0; c < s.C; ++c)
        kern.merge_rows(dx + n * is + c * HW, s.W, dxp + c * q.cs + (n * p.Hp + s.pt) * p.Wp, p.Wp, q.plane, s.H, s.W,
                        s.pl, s.sw, p.Wp);
    return;
  }
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t h = 0; h < s.H; ++h) {  // row h of every image
      float* d = dx + c * HW + h * s.W;
      const int64_t rr = h + s.pt, r = rr / s.sh;
      if (r >= p.Hp) {
        for (int64_t n = 0; n < q.nb; ++n) std::memset(d + n * is, 0, sizeof(float) * size_t(s.W));
        continue;
      }
      kern.merge_rows(d, is, dxp + c * q.cs + (rr % s.sh) * s.sw * q.plane + r * p.Wp, p.img, q.plane, q.nb, s.W,
                      s.pl, s.sw, p.Wp);
    }
}

// The channel-blocked layout of an (R, C) matrix, as the channel-vectorised kernels read and write
// it: column blocks of cb (the last one narrower) stored one after another, each (R, width)
// row-major, so block c0 starts at c0 * R with row stride min(cb, C - c0). It keeps the rows the
// kernels walk contiguous (with a row stride of C floats, C a multiple of 64, they would fall into
// few L1 sets).

// dst (K, C) blocked = the transpose of src (C, K) (row stride lds).
void transpose_to_blocked(float* dst, const float* src, int64_t lds, int64_t C, int64_t K, int64_t cb) {
  for (int64_t c0 = 0; c0 < C; c0 += cb) {
    const int64_t cw = std::min(cb, C - c0);
    transpose(dst + c0 * K, cw, src + c0 * lds, lds, K, cw);
  }
}

// dst (C, L) (row stride ldd) = the transpose of src (L, C) blocked.
void transpose_from_blocked(float* dst, int64_t ldd, const float* src, int64_t L, int64_t C, int64_t cb) {
  for (int64_t c0 = 0; c0 < C; c0 += cb) {
    const int64_t cw = std::min(cb, C - c0);
    transpose(dst + c0 * ldd, ldd, src + c0 * L, cw, cw, L);
  }
}

// For each of nimg images n: yt_n (L, C) blocked (to_blocked with cb = kern.block), yt_n = yt + n*L*C,
// = the channel-vectorised forward over all K taps for C channels (whole vectors), reading xp + n*xs
// (rows Wp wide); wt (K, C) blocked. Tap blocks of at most kChain whose weights (kc x block, contiguous)
// stay in L1 while they serve every image; block sizes depend on the shape and the ISA only.
void forward_t_blocked(const DirectKernels& kern, float* yt, const float* xp, int64_t xs, int64_t nimg, int64_t Wp,
                       const int64_t* off, int64_t K, const float* wt, int64_t C, int64_t OH, int64_t OW) {
  const int64_t cb = kern.block, kc = std::clamp<int64_t>(8192 / cb, 1, kChain);  // <= 32 KiB of weights, kChain taps
  const int64_t L = OH * OW;
  for (int64_t c0 = 0; c0 < C; c0 += cb) {
    const int64_t cw = std::min(cb, C - c0);
    for (int64_t k0 = 0; k0 < K; k0 += kc)
      for (int64_t n = 0; n < nimg; ++n)
        kern.forward_t(yt + n * L * C + c0 * L, cw, xp + n * xs, Wp, off + k0, std::min(kc, K - k0), wt + c0 * K + k0 * cw,
                       cw, cw, OH, OW, k0 > 0);
  }
}

// Images per call of forward_t_blocked: enough that each weight block serves kBatchPixels output pixels.
int64_t images_per_pass(int64_t N, int64_t pixels) {
  const int64_t nb = pixels > 0 ? (kBatchPixels + pixels - 1) / pixels : 1;
  return nb < N ? nb : (N > 0 ? N : 1);
}

}  // namespace

bool direct_suits(const Conv2dShape& s) {
  // PYDL_CONV_DIRECT=0: never (im2col + GEMM for every shape); =1: every shape the kernels take;
  // unset: the measured rule below (docs/ARCHITECTURE.md §4b).
  static const int mode = [] {
    const char* v = std::getenv("PYDL_CONV_DIRECT");
    return v != nullptr && (v[0] == '0' || v[0] == '1') && v[1] == 0 ? v[0] - '0' : -1;
  }();
  if (mode == 0 || (s.KH == 1 && s.KW == 1)) return false;
  // Empty channels or batch: the im2col path (its GEMMs return at once); the direct kernels'
  // scatter read past empty buffers (a fuzz case: conv2d_backward with C = OC = 0).
  if (s.N <= 0 || s.C <= 0 || s.OC <= 0) return false;
  const bool strided = s.sh != 1 || s.sw != 1;
  if (!strided) {  // the stride-1 data gradient may gather: a padded convolution again
    const int64_t eh = s.dh * (s.KH - 1), ew = s.dw * (s.KW - 1);
    const int64_t pb = s.OH + eh - s.pt - s.H, pr = s.OW + ew - s.pl - s.W;  // bottom/right padding in use
    if (s.pt > eh || s.pl > ew || pb > eh || pr > ew) return false;
  }
  if (mode == 1) return true;
  // Measured (bench/bench_conv.py and a sweep of 3x3, 5x5, dilated, grouped and 1-D layers, one
  // thread): with vectors over output channels (OC/G whole vectors) or few output channels, the
  // direct kernels beat im2col + GEMM by 1.1-2.5x (depthwise 4-5x) on AVX-512 and AVX2, and the
  // portable kernels (4-lane vectors) by 1.3-2.3x forward on the same rule (3x3 64->64 and 128->128,
  // LeNet's layers, a CIFAR stem).
  const int64_t OCg = s.OC / s.groups, lanes = kernels().lanes;
  if (strided) {
    // Strided (the polyphase split; bench sweep of 14 strided layers, one thread, forward +
    // backward against im2col + GEMM): 1.2-4x faster on 1-D signals, CIFAR-size and 7x7 stems,
    // depthwise and odd channel counts with AVX-512 (0.95-1.1x with AVX2 where OC/G is whole
    // vectors); slower with 256 output channels (0.9x, AVX2 0.8x) and when the windows do not
    // overlap (2x2 stride 2: im2col is then a plain rearrangement; 0.93x).
    const bool disjoint = s.dh * (s.KH - 1) < s.sh && s.dw * (s.KW - 1) < s.sw;
    return !disjoint && ((OCg % lanes == 0 && OCg < 256) || OCg < 32);
  }
  return OCg % lanes == 0 || OCg < 32;
}

void direct_forward(float* y, const float* x, const float* w, const float* b, const Conv2dShape& s, Act act) {
  // y (N, OC, OH, OW), x (N, C, H, W), w (OC, C/G, KH, KW), b (OC,) or null.
  const DirectKernels& kern = kernels();
  const Plan p = make_plan(s, kern.lanes);
  const int64_t HW = s.H * s.W, L = s.OH * s.OW;
  // wt: per group the weights transposed to (Kg, OCg), as the kernels read them (blocked for the
  // channel-vectorised kernel; one block otherwise).
  float* wt = scratch(6, s.OC * p.Kg);
  for (int64_t g = 0; g < p.G; ++g)
    transpose_to_blocked(wt + g * p.Kg * p.OCg, w + g * p.OCg * p.Kg, p.Kg, p.OCg, p.Kg, p.chan ? kern.block : p.OCg);
  const bool relu = act == Act::relu;
  // Items: passes over nbf images, at least one per thread (channel-vectorised: one pass over the
  // weights serves them all; stacked: one wide segment for all, within kPassFloats of input).
  // Each output's sum runs in the same order for any nbf, so the passes may follow the thread count.
  const int64_t nt = pydl::runtime::get_num_threads();
  const int64_t per_thread = std::max<int64_t>((s.N + nt - 1) / nt, 1);
  const int64_t per_image = s.C * p.ph * p.img;
  const int64_t nbf = p.chan      ? std::min(images_per_pass(s.N, L), per_thread)
                      : p.stacked ? std::clamp<int64_t>(kPassFloats / std::max<int64_t>(per_image, 1), 1, per_thread)
                                  : 1;
  const int64_t nitems = (s.N + nbf - 1) / nbf;
  for_each_item(nitems, double(nbf) * double(s.OC) * double(p.Kg) * double(p.Tv1), [&](int64_t ci) {
    const int64_t n0 = ci * nbf, nb = s.N - n0 < nbf ? s.N - n0 : nbf;
    const Pass q = make_pass(s, p, nb);
    float* xp = scratch(0, s.C * q.cs + p.unit);
    phase_copy(kern, xp, x + n0 * s.C * HW, s, p, q);
    if (p.chan) {  // yw holds (OH*OW, OCg) blocked per image, one group at a time
      float* yw = scratch(1, nb * L * p.OCg);
      for (int64_t g = 0; g < p.G; ++g) {
        forward_t_blocked(kern, yw, xp + g * p.Cg * q.cs, p.img, nb, p.Wp, q.off.data(), p.Kg,
                          wt + g * p.Kg * p.OCg, p.OCg, s.OH, s.OW);
        for (int64_t k = 0; k < nb; ++k) {
          float* yg = y + ((n0 + k) * s.OC + g * p.OCg) * L;
          transpose_from_blocked(yg, L, yw + k * L * p.OCg, L, p.OCg, kern.block);
          for (int64_t o = 0; o < p.OCg; ++o)
            kern.rows_bias_act(yg + o * L, L, yg + o * L, L, 1, L, b ? b[g * p.OCg + o] : 0.0f, relu);
        }
      }
      return;
    }
    // yw (nseg, OC, segT): the wide outputs
    float* yw = scratch(1, q.nseg * s.OC * q.segT);
    for (int64_t sg = 0; sg < q.nseg; ++sg) {
      const float* xs = xp + sg * p.img;
      float* ys = yw + sg * s.OC * q.segT;
      if (p.depthwise)
        kern.depthwise(ys, q.segT, xs, q.cs, q.off.data(), p.KK, w, s.C, q.segT);
      else
        for (int64_t g = 0; g < p.G; ++g)
          kern.forward(ys + g * p.OCg * q.segT, q.segT, xs + g * p.Cg * q.cs, q.off.data(), p.Kg,
                       wt + g * p.Kg * p.OCg, p.OCg, q.segT);
    }
    if (p.stacked)  // output row i of every image at once
      for (int64_t o = 0; o < s.OC; ++o)
        for (int64_t i = 0; i < s.OH; ++i)
          kern.rows_bias_act(y + (n0 * s.OC + o) * L + i * s.OW, s.OC * L, yw + o * q.segT + i * p.Wp, p.img, nb, s.OW,
                             b ? b[o] : 0.0f, relu);
    else
      for (int64_t k = 0; k < nb; ++k)
        for (int64_t o = 0; o < s.OC; ++o)
          kern.rows_bias_act(y + ((n0 + k) * s.OC + o) * L, s.OW, yw + (k * s.OC + o) * q.segT, p.Wp, s.OH, s.OW,
                             b ? b[o] : 0.0f, relu);
  });
}

void direct_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w, const float* y,
                     const Conv2dShape& s, Act act, bool accumulate_w, bool accumulate_b) {
  // dx (N, C, H, W) or null, dw (OC, C/G, KH, KW), db (OC,) or null, dy and y (N, OC, OH, OW).
  const DirectKernels& kern = kernels();
  const Plan p = make_plan(s, kern.lanes);
  const int64_t HW = s.H * s.W, L = s.OH * s.OW, WN = s.OC * p.Kg;
  const bool relu = act == Act::relu;
  // Data gradient geometry (stride 1, gather): dz padded to (OC, Hq, Wq); dx wide over Tq pixels of width Wq.
  const int64_t eh = s.dh * (s.KH - 1), ew = s.dw * (s.KW - 1);
  const int64_t Hq = s.H + eh, Wq = s.W + ew, planeq = Hq * Wq;
  const int64_t Tq = round_up((s.H - 1) * Wq + s.W, p.unit), K2 = p.OCg * p.KK;
  const int64_t wide = p.stacked ? p.img : p.Tv1;  // wide pixels per image
  // Chunks of ipc images, a function of the shape only (chunk_images, conv.h).
  const int64_t ipc = chunk_images(s.N, L, s.C * p.ph * p.img + s.OC * wide, kMaxChunkFloats);
  const int64_t nchunks = s.N > 0 ? (s.N + ipc - 1) / ipc : 0;
  if (nchunks == 0) {
    if (!accumulate_w) std::memset(dw, 0, sizeof(float) * size_t(WN));
    if (db && !accumulate_b) std::memset(db, 0, sizeof(float) * size_t(s.OC));
    return;
  }
  // The data gradient either gathers (stride 1: a convolution over dz padded by dil*(k-1) - pad, Tq
  // wide pixels per input channel and tap) or scatters (each tap's products added into the padded
  // input's phases, `wide` pixels per image plus a read-modify-write per OCg products): the
  // cheaper one; strided layers always scatter. Depthwise stride-1 layers always gather (their
  // scatter would have one product per read-modify-write). With Cg whole vectors the gather is
  // channel-vectorised and computes only the H*W valid pixels.
  const bool strided = p.ph > 1;
  const bool gather_t = !strided && p.lanes > 1 && !p.depthwise && p.Cg % p.lanes == 0;
  const bool scatter =
      strided || (!p.depthwise && double(wide) * (1.0 + 1.0 / double(p.OCg)) < double(gather_t ? s.H * s.W : Tq));
  std::vector<int64_t> off2;  // gather: taps (o, p', q') of the data-gradient convolution; scatter: (KK,) taps
  float* wf = nullptr;        // gather: per group the flipped weights (K2, Cg); scatter: (KK, OCg, Cg)
  if (dx && scatter) {
    wf = scratch(6, s.OC * p.Kg);
    for (int64_t g = 0; g < p.G; ++g)
      for (int64_t o = 0; o < p.OCg; ++o)
        for (int64_t c = 0; c < p.Cg; ++c)
          for (int64_t k = 0; k < p.KK; ++k)
            wf[g * p.KK * p.OCg * p.Cg + (k * p.OCg + o) * p.Cg + c] = w[((g * p.OCg + o) * p.Cg + c) * p.KK + k];
  } else if (dx) {
    off2.resize(size_t(K2));
    for (int64_t o = 0; o < p.OCg; ++o)
      for (int64_t a = 0; a < s.KH; ++a)
        for (int64_t q = 0; q < s.KW; ++q) off2[size_t((o * s.KH + a) * s.KW + q)] = o * planeq + a * s.dh * Wq + q * s.dw;
    wf = scratch(6, p.G * K2 * p.Cg);
    const int64_t cb = gather_t ? kern.block : p.Cg;  // blocked for the channel-vectorised kernel
    for (int64_t g = 0; g < p.G; ++g)
      for (int64_t c0 = 0; c0 < p.Cg; c0 += cb) {
        const int64_t cw = std::min(cb, p.Cg - c0);
        float* dst = wf + g * K2 * p.Cg + c0 * K2;
        for (int64_t o = 0; o < p.OCg; ++o)
          for (int64_t c = 0; c < cw; ++c) {
            const float* src = w + ((g * p.OCg + o) * p.Cg + c0 + c) * p.KK;
            for (int64_t k = 0; k < p.KK; ++k) dst[(o * p.KK + k) * cw + c] = src[p.KK - 1 - k];
          }
      }
  }
  // Partials per chunk: (OCg, Kg) per group, or (Kg, OCg) from the channel-vectorised kernel
  // (transposed once, after the reduction).
  const bool in_place = nchunks == 1 && !accumulate_w && !p.chan;
  float* pdw = in_place ? dw : scratch(5, nchunks * WN);  // every chunk writes its whole partial
  std::vector<double> pdb(db ? size_t(nchunks * s.OC) : 0);

  for_each_item(nchunks, 3.0 * double(ipc) * double(s.OC) * double(p.Kg) * double(wide), [&](int64_t ci) {
    const int64_t n0 = ci * ipc, nb = s.N - n0 < ipc ? s.N - n0 : ipc;
    const Pass q = make_pass(s, p, nb);
    float* xpc = scratch(0, s.C * q.cs + p.unit);  // the chunk's padded inputs, in phases
    phase_copy(kern, xpc, x + n0 * s.C * HW, s, p, q);
    const float* dyc = dy + n0 * s.OC * L;
    const float* yc = relu ? y + n0 * s.OC * L : nullptr;
    // dzc (nseg, OC, segT): the output gradients with relu' applied in wide rows (zeros in the
    // discarded columns and between stacked images), for the pixel-vectorised weight gradient and
    // the scatter; dzm (nb, OC, L) the same compact, for the channel-vectorised kernels.
    float* dzc = nullptr;
    const float* dzm = dyc;
    if (!p.chan || (dx && scatter)) {
      dzc = scratch(1, q.nseg * s.OC * q.segT);
      std::memset(dzc, 0, sizeof(float) * size_t(q.nseg * s.OC * q.segT));
      if (p.stacked)
        for (int64_t o = 0; o < s.OC; ++o)
          for (int64_t i = 0; i < s.OH; ++i)
            kern.rows_relu_grad(dzc + o * q.segT + i * p.Wp, p.img, dyc + o * L + i * s.OW,
                                yc ? yc + o * L + i * s.OW : nullptr, s.OC * L, nb, s.OW);
      else
        for (int64_t k = 0; k < nb; ++k)
          for (int64_t o = 0; o < s.OC; ++o)
            kern.rows_relu_grad(dzc + (k * s.OC + o) * q.segT, p.Wp, dyc + (k * s.OC + o) * L,
                                yc ? yc + (k * s.OC + o) * L : nullptr, s.OW, s.OH, s.OW);
    }
    if (relu && (p.chan || (dx && !scatter))) {  // the channel-vectorised kernels and the gather read dzm
      float* buf = scratch(4, nb * s.OC * L);
      pydl::ops::activation_backward<float>(buf, dyc, yc, nullptr, nb * s.OC * L, Act::relu, 0.0f);
      dzm = buf;
    }
    if (db)  // from the rows of dzc (its zeros add nothing) or dzm
      for (int64_t o = 0; o < s.OC; ++o)
        pdb[size_t(ci * s.OC + o)] = dzc ? kern.sum_rows(dzc + o * q.segT, s.OC * q.segT, q.nseg, q.segT)
                                         : kern.sum_rows(dzm + o * L, s.OC * L, nb, L);
    if (p.chan) {
      // dzt (nb, G, L, OCg): the output gradients with channels innermost; the partial is (Kg, OCg) per group.
      float* dzt = scratch(2, nb * s.OC * L);
      for (int64_t k = 0; k < nb; ++k)
        for (int64_t g = 0; g < p.G; ++g)
          transpose(dzt + (k * p.G + g) * L * p.OCg, p.OCg, dzm + (k * s.OC + g * p.OCg) * L, L, L, p.OCg);
      for (int64_t g = 0; g < p.G; ++g) {
        for (int64_t o0 = 0; o0 < p.OCg; o0 += kern.block)
          kern.wgrad_t(pdw + ci * WN + g * p.OCg * p.Kg + o0, p.OCg, dzt + g * L * p.OCg + o0, p.OCg, s.OC * L,
                       xpc + g * p.Cg * q.cs, p.img, q.off.data(), p.Kg,
                       p.OCg - o0 < kern.block ? p.OCg - o0 : kern.block, nb, s.OH, s.OW, p.Wp);
      }
    } else {
      for (int64_t g = 0; g < p.G; ++g)
        kern.wgrad(pdw + ci * WN + g * p.OCg * p.Kg, dzc + g * p.OCg * q.segT, q.segT, s.OC * q.segT,
                   xpc + g * p.Cg * q.cs, p.img, q.off.data(), p.Kg, p.OCg, q.nseg, q.segT);
    }
    if (!dx) return;
    if (scatter) {  // into dxp, the gradient of xpc (same layout), then its interior into dx
      float* dxp = scratch(3, s.C * q.cs + p.unit);
      std::memset(dxp, 0, sizeof(float) * size_t(s.C * q.cs + p.unit));
      for (int64_t sg = 0; sg < q.nseg; ++sg)
        for (int64_t g = 0; g < p.G; ++g)
          kern.scatter(dxp + g * p.Cg * q.cs + sg * p.img, q.cs, dzc + (sg * s.OC + g * p.OCg) * q.segT, q.segT,
                       q.off.data(), p.KK, wf + g * p.KK * p.OCg * p.Cg, p.OCg, p.Cg, q.segT);
      phase_extract(kern, dx + n0 * s.C * HW, dxp, s, p, q);
      return;
    }
    float* dzp = scratch(2, s.OC * planeq + p.unit);
    float* dxw = scratch(3, s.C * Tq);
    for (int64_t k = 0; k < nb; ++k) {
      const int64_t n = n0 + k;
      pad_copy(dzp, Hq, Wq, dzm + k * s.OC * L, s.OC, s.OH, s.OW, s.OW, L, eh - s.pt, ew - s.pl, p.unit);
      if (gather_t) {  // dxw holds (H*W, Cg) blocked, one group at a time
        for (int64_t g = 0; g < p.G; ++g) {
          forward_t_blocked(kern, dxw, dzp + g * p.OCg * planeq, 0, 1, Wq, off2.data(), K2, wf + g * K2 * p.Cg,
                            p.Cg, s.H, s.W);
          transpose_from_blocked(dx + (n * s.C + g * p.Cg) * HW, HW, dxw, HW, p.Cg, kern.block);
        }
        continue;
      }
      if (p.depthwise)
        kern.depthwise(dxw, Tq, dzp, planeq, off2.data(), p.KK, wf, s.C, Tq);
      else
        for (int64_t g = 0; g < p.G; ++g)
          kern.forward(dxw + g * p.Cg * Tq, Tq, dzp + g * p.OCg * planeq, off2.data(), K2, wf + g * K2 * p.Cg,
                       p.Cg, Tq);
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t h = 0; h < s.H; ++h)
          std::memcpy(dx + ((n * s.C + c) * s.H + h) * s.W, dxw + c * Tq + h * Wq, sizeof(float) * size_t(s.W));
    }
  });

  // Sum the chunks' partials in chunk order (threads split the elements of dW).
  if (!in_place) {
    auto reduce = [&](int64_t lo, int64_t hi) {  // chunk 0's slot collects the sum, chunk by chunk
      for (int64_t c = 1; c < nchunks; ++c)
        for (int64_t i = lo; i < hi; ++i) pdw[i] += pdw[c * WN + i];
      if (!p.chan)
        for (int64_t i = lo; i < hi; ++i) dw[i] = accumulate_w ? dw[i] + pdw[i] : pdw[i];
    };
    if (WN * nchunks >= (1 << 18))
      pydl::runtime::parallel_for(WN, 1, reduce);
    else
      reduce(0, WN);
    if (p.chan) {  // (Kg, OCg) per group -> dw (OCg, Kg), added when accumulating
      float* t = accumulate_w ? scratch(4, WN) : dw;
      for (int64_t g = 0; g < p.G; ++g)
        transpose(t + g * p.OCg * p.Kg, p.Kg, pdw + g * p.OCg * p.Kg, p.OCg, p.OCg, p.Kg);
      if (accumulate_w)
        for (int64_t i = 0; i < WN; ++i) dw[i] += t[i];
    }
  }
  if (db)
    for (int64_t o = 0; o < s.OC; ++o) {
      double v = 0.0;
      for (int64_t c = 0; c < nchunks; ++c) v += pdb[size_t(c * s.OC + o)];
      db[o] = accumulate_b ? db[o] + float(v) : float(v);
    }
}

}  // namespace pydl::conv
