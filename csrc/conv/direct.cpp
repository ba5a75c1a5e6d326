// Driver of the direct stride-1 convolution (direct.h): padded copies, the per-ISA kernels, and
// the copies of their results into NCHW.
//
// Per image n and group g (Kg = C/G*KH*KW taps; xp_n (C, Hp, Wp) the zero-padded input; a "wide"
// row t = i*Wp + j of Tv = roundup((OH-1)*Wp + OW, unit) pixels, the last Wp - OW of each row discarded):
//   forward      OC/G whole vectors: yt (OH*OW, OCg) = forward_t over the valid pixels, transposed into y
//                                  (weights and yt channel-blocked; images batched per weight block);
//                otherwise         yw (OCg, Tv)    = forward over the wide pixels, valid columns copied;
//                depthwise (G == C == OC): one plane per channel. Bias and ReLU are added in the copy.
//   weight grad  per shape-determined chunk of images: wgrad_t (dz transposed to (L, OCg)) or the
//                wide wgrad (dz in wide rows, zeros in the discarded columns); partials added in
//                chunk order.
//   data grad    the cheaper of: a gather (the forward kernels over dz padded by dil*(k-1) - pad, with
//                the weights flipped and transposed to (OCg*KH*KW, Cg); channel-vectorised when Cg is
//                whole vectors) or a scatter (each tap's products added into the padded input's gradient:
//                no work on the padding, which wins for unpadded layers such as LeNet's c2).
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

constexpr int64_t kMaxChunks = 16;                   // weight-gradient chunks (as conv.cpp)
constexpr int64_t kMaxChunkFloats = int64_t(1) << 21;  // one chunk's wide buffers
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
struct Plan {
  int64_t G, Cg, OCg, KK, Kg;  // groups, channels per group, taps per channel KH*KW, taps per group
  int64_t Hp, Wp, plane, T, Tv, xs;  // padded input, wide pixel count (valid, rounded), image stride of xp
  int64_t lanes;  // the kernels' vector width
  int64_t unit;   // wide pixel counts are multiples of it (lanes, at least 4), and buffers carry as much slack
  bool depthwise;
  bool chan;  // channel-vectorised kernels: OCg is whole vectors (then only valid pixels are computed)
  std::vector<int64_t> off;  // (Kg,) tap offsets into one group's xp
};

Plan make_plan(const Conv2dShape& s, int64_t lanes) {
  Plan p;
  p.G = s.groups, p.Cg = s.C / s.groups, p.OCg = s.OC / s.groups, p.KK = s.KH * s.KW, p.Kg = p.Cg * p.KK;
  p.Hp = s.OH + s.dh * (s.KH - 1), p.Wp = s.OW + s.dw * (s.KW - 1), p.plane = p.Hp * p.Wp;
  p.T = (s.OH - 1) * p.Wp + s.OW, p.unit = lanes > 4 ? lanes : 4;
  p.Tv = round_up(p.T, p.unit), p.xs = s.C * p.plane + p.unit;
  p.lanes = lanes;
  p.depthwise = s.groups == s.C && s.OC == s.C;
  p.chan = lanes > 1 && !p.depthwise && p.OCg % lanes == 0;
  p.off.resize(size_t(p.Kg));
  for (int64_t c = 0; c < p.Cg; ++c)
    for (int64_t a = 0; a < s.KH; ++a)
      for (int64_t q = 0; q < s.KW; ++q) p.off[size_t((c * s.KH + a) * s.KW + q)] = c * p.plane + a * s.dh * p.Wp + q * s.dw;
  return p;
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
  if (mode == 0) return false;
  if (s.sh != 1 || s.sw != 1 || (s.KH == 1 && s.KW == 1)) return false;
  const int64_t eh = s.dh * (s.KH - 1), ew = s.dw * (s.KW - 1);
  const int64_t pb = s.OH + eh - s.pt - s.H, pr = s.OW + ew - s.pl - s.W;  // bottom/right padding in use
  if (s.pt > eh || s.pl > ew || pb > eh || pr > ew) return false;
  if (mode == 1) return true;
  // Measured (bench/bench_conv.py and a sweep of 3x3, 5x5, dilated, grouped and 1-D layers, one
  // thread): with vectors over output channels (OC/G whole vectors) or few output channels, the
  // direct kernels beat im2col + GEMM by 1.1-2.5x (depthwise 4-5x) on AVX-512 and AVX2. The portable
  // build has no channel-vectorised kernels; there only depthwise layers and single-input-channel
  // layers win (4x, 1.2x), the rest lose up to 1.6x.
  const int64_t Cg = s.C / s.groups, OCg = s.OC / s.groups, lanes = kernels().lanes;
  if (lanes == 1) return Cg == 1;
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
  // Items: chunks of nbf images (channel-vectorised: one pass over the weights serves them all), at
  // least one per thread. Each output's sum runs in the same order for any nbf, so the chunking may
  // follow the thread count.
  const int64_t nt = pydl::runtime::get_num_threads();
  const int64_t nbf = p.chan ? std::min(images_per_pass(s.N, L), std::max<int64_t>((s.N + nt - 1) / nt, 1)) : 1;
  const int64_t nitems = (s.N + nbf - 1) / nbf;
  for_each_item(nitems, double(nbf) * double(s.OC) * double(p.Kg) * double(p.Tv), [&](int64_t ci) {
    const int64_t n0 = ci * nbf, nb = s.N - n0 < nbf ? s.N - n0 : nbf;
    float* xp = scratch(0, nb * p.xs);
    for (int64_t k = 0; k < nb; ++k)
      pad_copy(xp + k * p.xs, p.Hp, p.Wp, x + (n0 + k) * s.C * HW, s.C, s.H, s.W, s.W, HW, s.pt, s.pl, p.unit);
    if (p.chan) {  // yw holds (OH*OW, OCg) blocked per image, one group at a time
      float* yw = scratch(1, nb * L * p.OCg);
      for (int64_t g = 0; g < p.G; ++g) {
        forward_t_blocked(kern, yw, xp + g * p.Cg * p.plane, p.xs, nb, p.Wp, p.off.data(), p.Kg,
                          wt + g * p.Kg * p.OCg, p.OCg, s.OH, s.OW);
        for (int64_t k = 0; k < nb; ++k) {
          float* yg = y + ((n0 + k) * s.OC + g * p.OCg) * L;
          transpose_from_blocked(yg, L, yw + k * L * p.OCg, L, p.OCg, kern.block);
          for (int64_t o = 0; o < p.OCg; ++o) {
            const float bo = b ? b[g * p.OCg + o] : 0.0f;
            float* yo = yg + o * L;
            if (relu)
              for (int64_t t = 0; t < L; ++t) {
                const float v = yo[t] + bo;
                yo[t] = !(v > 0.0f) && v == v ? 0.0f : v;
              }
            else
              for (int64_t t = 0; t < L; ++t) yo[t] += bo;
          }
        }
      }
      return;
    }
    const int64_t n = n0;  // nbf == 1 from here on
    float* yw = scratch(1, s.OC * p.Tv);
    if (p.depthwise)
      kern.depthwise(yw, p.Tv, xp, p.plane, p.off.data(), p.KK, w, s.C, p.Tv);
    else
      for (int64_t g = 0; g < p.G; ++g)
        kern.forward(yw + g * p.OCg * p.Tv, p.Tv, xp + g * p.Cg * p.plane, p.off.data(), p.Kg,
                     wt + g * p.Kg * p.OCg, p.OCg, p.Tv);
    for (int64_t o = 0; o < s.OC; ++o) {
      const float bo = b ? b[o] : 0.0f;
      float* yo = y + (n * s.OC + o) * L;
      for (int64_t i = 0; i < s.OH; ++i) {
        const float* src = yw + o * p.Tv + i * p.Wp;
        float* dst = yo + i * s.OW;
        if (relu)
          for (int64_t j = 0; j < s.OW; ++j) {
            const float v = src[j] + bo;
            dst[j] = !(v > 0.0f) && v == v ? 0.0f : v;
          }
        else
          for (int64_t j = 0; j < s.OW; ++j) dst[j] = src[j] + bo;
      }
    }
  });
}

void direct_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w, const float* y,
                     const Conv2dShape& s, Act act, bool accumulate_w, bool accumulate_b) {
  // dx (N, C, H, W) or null, dw (OC, C/G, KH, KW), db (OC,) or null, dy and y (N, OC, OH, OW).
  const DirectKernels& kern = kernels();
  const Plan p = make_plan(s, kern.lanes);
  const int64_t HW = s.H * s.W, L = s.OH * s.OW, WN = s.OC * p.Kg;
  const bool relu = act == Act::relu;
  // Data gradient geometry: dz padded to (OC, Hq, Wq); dx wide over Tq pixels of width Wq.
  const int64_t eh = s.dh * (s.KH - 1), ew = s.dw * (s.KW - 1);
  const int64_t Hq = s.H + eh, Wq = s.W + ew, planeq = Hq * Wq;
  const int64_t Tq = round_up((s.H - 1) * Wq + s.W, p.unit), K2 = p.OCg * p.KK;
  // Chunks of ipc images, a function of the shape only.
  const int64_t per_image = p.xs + s.OC * p.Tv;
  int64_t ipc = (s.N + kMaxChunks - 1) / kMaxChunks;
  if (ipc > 1 && ipc * per_image > kMaxChunkFloats) ipc = kMaxChunkFloats / per_image > 1 ? kMaxChunkFloats / per_image : 1;
  const int64_t nchunks = s.N > 0 ? (s.N + ipc - 1) / ipc : 0;
  if (nchunks == 0) {
    if (!accumulate_w) std::memset(dw, 0, sizeof(float) * size_t(WN));
    if (db && !accumulate_b) std::memset(db, 0, sizeof(float) * size_t(s.OC));
    return;
  }
  // The data gradient either gathers (a convolution over dz padded by dil*(k-1) - pad, Tq wide
  // pixels per input channel and tap) or scatters (each tap's products added into the padded
  // input's gradient, Tv wide pixels plus a read-modify-write per OCg products): the cheaper one.
  // Depthwise layers always gather (their scatter would have one product per read-modify-write).
  // With Cg whole vectors the gather is channel-vectorised and computes only the H*W valid pixels.
  const bool gather_t = p.lanes > 1 && !p.depthwise && p.Cg % p.lanes == 0;
  const bool scatter =
      !p.depthwise && double(p.Tv) * (1.0 + 1.0 / double(p.OCg)) < double(gather_t ? s.H * s.W : Tq);
  std::vector<int64_t> off2;  // gather: taps (o, p', q') of the data-gradient convolution
  float* wf = nullptr;        // gather: per group the flipped weights (K2, Cg); scatter: (KK, OCg, Cg)
  if (dx && scatter) {
    off2.resize(size_t(p.KK));
    for (int64_t a = 0; a < s.KH; ++a)
      for (int64_t q = 0; q < s.KW; ++q) off2[size_t(a * s.KW + q)] = a * s.dh * p.Wp + q * s.dw;
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

  for_each_item(nchunks, 3.0 * double(ipc) * double(s.OC) * double(p.Kg) * double(p.Tv), [&](int64_t ci) {
    const int64_t n0 = ci * ipc, nb = s.N - n0 < ipc ? s.N - n0 : ipc;
    float* xpc = scratch(0, nb * p.xs);  // padded inputs (nb, xs)
    for (int64_t k = 0; k < nb; ++k)
      pad_copy(xpc + k * p.xs, p.Hp, p.Wp, x + (n0 + k) * s.C * HW, s.C, s.H, s.W, s.W, HW, s.pt, s.pl, p.unit);
    // dzm (nb, OC, L): the chunk's output gradients with relu' applied (dy itself without relu).
    const float* dzm = dy + n0 * s.OC * L;
    if (relu) {
      float* buf = scratch(4, nb * s.OC * L);
      const float* yc = y + n0 * s.OC * L;
      pydl::ops::activation_backward<float>(buf, dzm, yc, nullptr, nb * s.OC * L, Act::relu, 0.0f);  // y > 0 iff x > 0
      dzm = buf;
    }
    // dzc (nb, OC, Tv): the same in wide rows (zeros in the discarded columns), for the
    // pixel-vectorised weight gradient and the scatter.
    float* dzc = nullptr;
    if (!p.chan || (dx && scatter)) {
      dzc = scratch(1, nb * s.OC * p.Tv);
      std::memset(dzc, 0, sizeof(float) * size_t(nb * s.OC * p.Tv));
      for (int64_t r = 0; r < nb * s.OC; ++r)
        for (int64_t i = 0; i < s.OH; ++i)
          std::memcpy(dzc + r * p.Tv + i * p.Wp, dzm + r * L + i * s.OW, sizeof(float) * size_t(s.OW));
    }
    if (db)  // four interleaved double sums (independent chains), added in a fixed order
      for (int64_t o = 0; o < s.OC; ++o) {
        double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
        for (int64_t k = 0; k < nb; ++k) {
          const float* r = dzm + (k * s.OC + o) * L;
          int64_t t = 0;
          for (; t + 4 <= L; t += 4) a0 += double(r[t]), a1 += double(r[t + 1]), a2 += double(r[t + 2]), a3 += double(r[t + 3]);
          for (; t < L; ++t) a0 += double(r[t]);
        }
        pdb[size_t(ci * s.OC + o)] = (a0 + a1) + (a2 + a3);
      }
    if (p.chan) {
      // dzt (nb, G, L, OCg): the output gradients with channels innermost; the partial is (Kg, OCg) per group.
      float* dzt = scratch(2, nb * s.OC * L);
      for (int64_t k = 0; k < nb; ++k)
        for (int64_t g = 0; g < p.G; ++g)
          transpose(dzt + (k * p.G + g) * L * p.OCg, p.OCg, dzm + (k * s.OC + g * p.OCg) * L, L, L, p.OCg);
      for (int64_t g = 0; g < p.G; ++g) {
        for (int64_t o0 = 0; o0 < p.OCg; o0 += kern.block)
          kern.wgrad_t(pdw + ci * WN + g * p.OCg * p.Kg + o0, p.OCg, dzt + g * L * p.OCg + o0, p.OCg, s.OC * L, xpc + g * p.Cg * p.plane, p.xs,
                       p.off.data(), p.Kg, p.OCg - o0 < kern.block ? p.OCg - o0 : kern.block, nb, s.OH, s.OW, p.Wp);
      }
    } else {
      for (int64_t g = 0; g < p.G; ++g)
        kern.wgrad(pdw + ci * WN + g * p.OCg * p.Kg, dzc + g * p.OCg * p.Tv, p.Tv, s.OC * p.Tv,
                   xpc + g * p.Cg * p.plane, p.xs, p.off.data(), p.Kg, p.OCg, nb, p.Tv);
    }
    if (!dx) return;
    if (scatter) {
      const int64_t ldx = p.plane + p.unit;
      float* dxw = scratch(3, s.C * ldx);
      for (int64_t k = 0; k < nb; ++k) {
        const int64_t n = n0 + k;
        std::memset(dxw, 0, sizeof(float) * size_t(s.C * ldx));
        for (int64_t g = 0; g < p.G; ++g)
          kern.scatter(dxw + g * p.Cg * ldx, ldx, dzc + (k * s.OC + g * p.OCg) * p.Tv, p.Tv, off2.data(), p.KK,
                       wf + g * p.KK * p.OCg * p.Cg, p.OCg, p.Cg, p.Tv);
        // dx = the interior of the padded gradient (input rows/columns no output reads get 0).
        const int64_t h1 = p.Hp - s.pt < s.H ? p.Hp - s.pt : s.H, w1 = p.Wp - s.pl < s.W ? p.Wp - s.pl : s.W;
        for (int64_t c = 0; c < s.C; ++c)
          for (int64_t h = 0; h < s.H; ++h) {
            float* d = dx + ((n * s.C + c) * s.H + h) * s.W;
            const float* src = dxw + c * ldx + (h + s.pt) * p.Wp + s.pl;
            for (int64_t j = 0; j < s.W; ++j) d[j] = h < h1 && j < w1 ? src[j] : 0.0f;
          }
      }
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
