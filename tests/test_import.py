"""Importing pydl from a checkout whose compiled extensions are not built says so and names the fix
(instead of a circular-import message from deep inside the package)."""
import os
import shutil
import subprocess
import sys

import pydl


def test_unbuilt_checkout_names_the_missing_extensions(tmp_path):
    src = os.path.dirname(pydl.__file__)
    shutil.copytree(src, tmp_path / "pydl", ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    proc = subprocess.run([sys.executable, "-c", "import pydl"], cwd=tmp_path, capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: pydl is imported from"), proc.stderr
    assert "pydl._C, pydl.data._augment missing" in last and "pip install -e ." in last, last


def test_built_package_imports_its_extensions():
    assert pydl._unbuilt_extensions() == []
