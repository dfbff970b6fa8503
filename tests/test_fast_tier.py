"""The fast tier (-m "not slow") is honest: a test marked model or browser is slow as well, and a
test outside the slow tier that opens llama.cpp or loads the embedded model fails, naming the
mark it needs (tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FastTierError


def test_outside_the_slow_tier_llama_cpp_and_the_embedded_model_are_refused(request):
    import llama_cpp

    from xling.models import base

    assert request.node.get_closest_marker("slow") is None
    with pytest.raises(FastTierError, match="opens llama.cpp but is not marked slow"):
        llama_cpp.Llama(model_path="nothing.gguf")
    with pytest.raises(FastTierError, match="runs llama.cpp's quantizer"):
        llama_cpp.llama_model_quantize(b"in", b"out", None)
    with pytest.raises(FastTierError, match="loads the embedded model"):
        base._dequantized_folder(Path("nothing.gguf"), "0" * 64)


@pytest.mark.model
def test_a_model_test_is_slow_and_sees_the_real_llama_cpp(request):
    import llama_cpp

    assert request.node.get_closest_marker("slow") is not None
    assert isinstance(llama_cpp.Llama, type)  # the class itself, not the refusal


def test_model_and_browser_tests_are_left_out_of_the_fast_tier(pytestconfig):
    # collected by the conftest hook that adds the mark, then deselected by -m "not slow"
    import subprocess
    import sys

    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-m",
            "not slow",
            "-p",
            "no:cacheprovider",
            "tests/test_fast_tier.py",
            "tests/test_report.py",
        ],
        capture_output=True,
        text=True,
        cwd=pytestconfig.rootpath,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "test_a_model_test_is_slow" not in res.stdout  # marked model
    assert "test_every_figure_loads_in_headless_chromium" not in res.stdout  # marked browser
    assert "test_outside_the_slow_tier" in res.stdout  # and the rest is still there
