import os
import subprocess
import sys

import pytest

import pydl
from pydl import _C


def test_cpu_info_keys():
    info = pydl.cpu_info()
    assert info["isa"] in ("avx512", "avx2", "generic")
    assert isinstance(info["num_threads"], int) and info["num_threads"] >= 1
    order = ("generic", "avx2", "avx512")
    assert order.index(info["isa"]) <= order.index(info["detected_isa"])


def test_set_num_threads_roundtrip():
    pydl.set_num_threads(1)
    assert pydl.get_num_threads() == 1
    pydl.set_num_threads(2)
    assert pydl.get_num_threads() == 2


@pytest.mark.parametrize("bad", [0, -3])
def test_set_num_threads_rejects_nonpositive(bad):
    with pytest.raises(ValueError, match="n"):
        pydl.set_num_threads(bad)


def test_set_num_threads_rejects_non_int():
    with pytest.raises(TypeError, match="n"):
        pydl.set_num_threads(1.5)


def test_pydl_isa_env_lowers_isa(tmp_path):
    code = "import pydl; print(pydl.cpu_info()['isa'])"
    # The subprocess imports the same pydl as this process (installed, or an in-place build).
    root = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))
    env = dict(os.environ, PYDL_ISA="generic", PYTHONPATH=root)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=tmp_path)  # not the source tree: import the installed pydl
    assert out.stdout.strip() == "generic"


def test_set_isa_rejects_unknown():
    with pytest.raises(ValueError, match="isa"):
        _C.set_isa("sse9")
