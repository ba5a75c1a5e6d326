"""Smoke runs of examples/*.py with --quick: each prints its table and writes its PNG."""
import os
import runpy
import sys

import pytest

# examples/ of this checkout (the tests may run against an installed pydl)
EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "examples")
SCRIPTS = {"optimizers": "optimizers.png", "batch_size": "batch_size.png", "regularization": "regularization.png",
           "cross_validation": "cross_validation.png", "bias_variance": "bias_variance.png",
           "mse_vs_nll": "mse_vs_nll.png", "cnn": "cnn.png", "mnist1d_paper": "mnist1d_paper.png"}


@pytest.mark.skipif(not os.path.isdir(EXAMPLES), reason="examples/ not in this checkout")
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_example_quick(name, tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    if name == "mnist1d_paper":
        pytest.importorskip("mnist1d")
    monkeypatch.syspath_prepend(EXAMPLES)
    monkeypatch.setattr(sys, "argv", [name + ".py", "--quick", "--out", str(tmp_path)])
    runpy.run_path(os.path.join(EXAMPLES, name + ".py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "-----" in out                                   # a table was printed
    with open(tmp_path / SCRIPTS[name], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
