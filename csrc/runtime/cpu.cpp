#include "runtime/cpu.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(PYDL_X86)
#include <cpuid.h>
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

}  // namespace

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
