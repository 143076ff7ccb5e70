"""Resume rules' messages: the divergence advice names only remedies the run can take."""

from pathlib import Path

from googlenet_utils.resume import divergence_advice


def test_divergence_advice_offers_fp32_only_to_a_run_that_is_not_fp32():
    for checkpoint in (None, Path("runs/x/last.pt")):
        already = divergence_advice(2, 5, 0.3, 0.4, checkpoint, "fp32")
        assert "--precision fp32" not in already and "--lr 0.2" in already
        assert "--precision fp32" in divergence_advice(2, 5, 0.3, 0.4, checkpoint, "bf16")
