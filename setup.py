"""Build pydl._C (pybind11, every .cpp under csrc/) and the Cython modules (pydl/**/_*.pyx).

ISA-specific translation units are named ``*_avx512.cpp`` / ``*_avx2.cpp`` and only they are
compiled with the matching ``-m`` flags; everything else targets baseline x86-64, so the same
build runs on any x86-64 CPU and picks its kernels at import (see csrc/runtime/cpu.h).
There is no flag for the build machine's own CPU.
"""
import glob
import os
import platform

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import Extension, setup

X86 = platform.machine().lower() in ("x86_64", "amd64")

ISA_FLAGS = {
    "_avx512.cpp": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma", "-mf16c"],
    "_avx2.cpp": ["-mavx2", "-mfma", "-mf16c"],
}


def cpp_sources():
    sources = sorted(glob.glob("csrc/**/*.cpp", recursive=True))
    if not X86:
        sources = [s for s in sources if not s.endswith(tuple(ISA_FLAGS))]
    return sources


class BuildExt(build_ext):
    """build_ext that adds the ISA flags to the ISA-specific sources only."""

    def build_extensions(self):
        compile_one = self.compiler._compile

        def _compile(obj, src, ext, cc_args, extra_postargs, pp_opts):
            extra = list(extra_postargs)
            for suffix, flags in ISA_FLAGS.items():
                if src.endswith(suffix):
                    extra += flags
            return compile_one(obj, src, ext, cc_args, extra, pp_opts)

        self.compiler._compile = _compile
        super().build_extensions()


ext_modules = [
    Pybind11Extension(
        "pydl._C",
        cpp_sources(),
        # headers and included kernel bodies: editing one rebuilds the extension
        depends=sorted(glob.glob("csrc/**/*.h", recursive=True) + glob.glob("csrc/**/*.inc", recursive=True)),
        include_dirs=["csrc"],
        cxx_std=17,
        define_macros=[("PYDL_X86", "1")] if X86 else [],
        extra_compile_args=["-O3", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wno-unused-function"],
        extra_link_args=["-pthread"],
    )
]

pyx = sorted(glob.glob("pydl/**/_*.pyx", recursive=True))
if pyx:
    from Cython.Build import cythonize

    cy_exts = [
        Extension(os.path.splitext(p)[0].replace(os.sep, "."), [p], extra_compile_args=["-O3"])
        for p in pyx
    ]
    ext_modules += cythonize(
        cy_exts,
        compiler_directives={"language_level": 3, "boundscheck": False, "wraparound": False,
                             "cdivision": True, "initializedcheck": False},
    )

ParallelCompile("PYDL_BUILD_JOBS", default=0).install()

setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildExt})
