// CPU feature detection and the active instruction set.
//
// Kernels are compiled once per ISA, each inside its own namespace (pydl::<family>::avx512,
// ::avx2, ::generic) in a file named *_avx512.cpp / *_avx2.cpp (only those files get -m flags,
// see setup.py). A family's dispatcher picks its kernels with select() below at call time; on
// builds for other CPUs the family header aliases the avx512 and avx2 namespaces to generic
// (those files are not compiled there), so the same select() call compiles. Rule for ISA
// files: no inline or template code shared with other translation units (no STL algorithms,
// no std::min/max, no shared inline helpers from headers), so the linker can never pick an
// AVX-512 body for a generic caller (numpy issue 25274).
#pragma once

namespace pydl::runtime {

enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };

// Best ISA this CPU and OS support (cpuid + xgetbv).
Isa detected_isa();
// ISA in use: detected_isa(), lowered by the environment variable PYDL_ISA=avx512|avx2|generic
// at first use, or by set_active_isa(). Never higher than detected_isa().
Isa active_isa();
// Sets the active ISA; returns false (and changes nothing) if the CPU lacks it.
bool set_active_isa(Isa isa);
const char* isa_name(Isa isa);
// Parses "avx512" / "avx2" / "generic"; returns false for anything else.
bool parse_isa(const char* name, Isa* out);

// Data cache sizes in bytes as the CPU reports them (cpuid leaf 4 on Intel, 0x8000001D on AMD;
// elsewhere sysconf): L1d and L2 of one core, the whole L3 (however many cores share it). A level
// the CPU does not report gets a conservative default (32 KiB, 512 KiB, 4 MiB). Read once, then
// cached.
struct CacheSizes {
  long l1d;
  long l2;
  long l3;
};
CacheSizes cache_sizes();

// The one of three per-ISA entries (kernel functions, or tables of them) for active_isa().
// Baseline translation units only, like every template (see above).
template <class K>
K select(K avx512, K avx2, K generic) {
  switch (active_isa()) {
    case Isa::avx512: return avx512;
    case Isa::avx2: return avx2;
    default: return generic;
  }
}

}  // namespace pydl::runtime
