#include "runtime/cpu.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(PYDL_X86)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <unistd.h>
#endif

namespace pydl::runtime {
namespace {

#if defined(PYDL_X86)
unsigned long long xgetbv0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

Isa detect() {
#if defined(PYDL_X86)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::generic;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28);
  if (!(osxsave && avx && fma)) return Isa::generic;
  const unsigned long long xcr0 = xgetbv0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;            // SSE + AVX state
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;          // + opmask, ZMM_Hi256, Hi16_ZMM
  if (!os_ymm || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::generic;
  const bool avx2 = b & (1u << 5);
  const bool avx512 = (b & (1u << 16)) && (b & (1u << 17)) && (b & (1u << 30)) && (b & (1u << 31));  // F DQ BW VL
  if (avx512 && avx2 && os_zmm) return Isa::avx512;
  if (avx2) return Isa::avx2;
#endif
  return Isa::generic;
}

std::atomic<int> g_active{-1};

// Cache levels from the deterministic cache parameters leaf (same layout on Intel leaf 4 and AMD
// 0x8000001D): EAX[4:0] type (1 data, 3 unified), EAX[7:5] level;
// size = ways * partitions * line size * sets (EBX[31:22], EBX[21:12], EBX[11:0], ECX, each + 1).
CacheSizes detect_caches() {
  CacheSizes cs{0, 0, 0};
#if defined(PYDL_X86)
  unsigned a, b, c, d;
  unsigned leaf = 4;
  if (__get_cpuid(0, &a, &b, &c, &d) && b == 0x68747541u)  // "Auth": AMD
    leaf = 0x8000001Du;
  for (unsigned sub = 0; sub < 8; ++sub) {
    if (!__get_cpuid_count(leaf, sub, &a, &b, &c, &d)) break;
    const unsigned type = a & 31, level = (a >> 5) & 7;
    if (type == 0) break;
    if (type != 1 && type != 3) continue;
    const long size = long((b >> 22) + 1) * long(((b >> 12) & 1023) + 1) * long((b & 4095) + 1) * long(c + 1);
    if (level == 1) cs.l1d = size;
    else if (level == 2) cs.l2 = size;
    else if (level == 3) cs.l3 = size;
  }
#elif defined(__linux__) && defined(_SC_LEVEL1_DCACHE_SIZE)
  cs.l1d = sysconf(_SC_LEVEL1_DCACHE_SIZE);
  cs.l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  cs.l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
  if (cs.l1d <= 0) cs.l1d = 32 << 10;
  if (cs.l2 <= 0) cs.l2 = 512 << 10;
  if (cs.l3 <= 0) cs.l3 = 4 << 20;
  return cs;
}

}  // namespace

CacheSizes cache_sizes() {
  static const CacheSizes cs = detect_caches();
  return cs;
}

Isa detected_isa() {
  static const Isa isa = detect();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

bool parse_isa(const char* name, Isa* out) {
  if (!name) return false;
  if (!std::strcmp(name, "avx512")) { *out = Isa::avx512; return true; }
  if (!std::strcmp(name, "avx2")) { *out = Isa::avx2; return true; }
  if (!std::strcmp(name, "generic")) { *out = Isa::generic; return true; }
  return false;
}

Isa active_isa() {
  int v = g_active.load(std::memory_order_relaxed);
  if (v >= 0) return static_cast<Isa>(v);
  Isa isa = detected_isa();
  Isa wanted;
  if (parse_isa(std::getenv("PYDL_ISA"), &wanted) && static_cast<int>(wanted) < static_cast<int>(isa)) isa = wanted;
  g_active.store(static_cast<int>(isa));
  return isa;
}

bool set_active_isa(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(detected_isa())) return false;
  g_active.store(static_cast<int>(isa));
  return true;
}

}  // namespace pydl::runtime
