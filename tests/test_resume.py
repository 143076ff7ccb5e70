"""The resume rules: what may change when a run resumes, and advice that names only remedies it can take."""

from pathlib import Path

from googlenet_utils.recipe import TrainConfig
from googlenet_utils.resume import divergence_advice, resume_changes


def test_divergence_advice_offers_fp32_only_to_a_run_that_is_not_fp32():
    for checkpoint in (None, Path("runs/x/last.pt")):
        already = divergence_advice(2, 5, 0.3, 0.4, checkpoint, "fp32")
        assert "--precision fp32" not in already and "--lr 0.2" in already
        assert "--precision fp32" in divergence_advice(2, 5, 0.3, 0.4, checkpoint, "bf16")


def test_only_remedies_and_operational_settings_may_change_on_resume():
    saved = TrainConfig(lr=0.4).to_dict()
    allowed, refused = resume_changes(
        saved, TrainConfig(lr=0.2, precision="fp32", device="cpu", compile=False)
    )
    assert allowed == {"lr": (0.4, 0.2), "precision": ("auto", "fp32")} and refused == {}
    allowed, refused = resume_changes(saved, TrainConfig(lr=0.8, epochs=50, precision="bf16"))
    assert allowed == {} and set(refused) == {"lr", "epochs", "precision"}
