"""Real timm and transformers models (tests/corpus/real.py) against torch: parameters exact,
every output exact, MACs within -1 % / +5 % of FlopCounterMode ÷ 2, no node uncounted.

CI runs the fast subset (:data:`corpus.real.FAST`: every import route and family); the whole
corpus (57 timm architectures, 11 transformers models) runs as ``benchmarks/corpus.py``,
which also times it against torchinfo and prints the README's table.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("transformers")

from corpus import real  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("entry", real.entries(real.FAST), ids=lambda e: e.name)
def test_real_model_figures_equal_torch(entry):
    outcome = real.check(entry)
    assert outcome.problems == []
    assert outcome.params == outcome.torch_params and outcome.uncounted == 0
    assert real.MACS_BELOW <= outcome.ratio <= real.MACS_ABOVE


def test_the_corpus_spans_the_families_it_claims():
    assert sum(len(models) for models in real.TIMM.values()) >= 40
    assert set(real.TIMM) == {"cnn", "mobile", "vit", "hybrid", "mlp"}
    families = {real._hf(kind).family for kind in real.HF}
    assert len(real.HF) >= 10 and families == {"encoder", "decoder", "encoder-decoder", "vision",
                                               "speech"}


def test_the_model_that_crashed_shows_in_the_cli_without_a_traceback():
    # tf_efficientnet_cc_b0_4e once gave a 55-line traceback ("duplicate node name").
    run = subprocess.run(
        [sys.executable, "-m", "shapecalc", "show", 'timm:create_model("tf_efficientnet_cc_b0_4e")',
         "--input", "1x3x64x64", "--json"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert '"uncounted": []' in run.stdout
