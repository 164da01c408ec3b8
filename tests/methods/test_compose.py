"""Every method preset and every slot option composes and runs one tiny training step (or none, if frozen)."""

import json

import numpy as np
import pytest

from atlantis.experiment.pipeline import run_job
from atlantis.methods.base import Weights
from atlantis.methods.weights import WeightSet
from tests.conftest import REPO, job_config

PRESETS = sorted(p.stem for p in (REPO / "conf" / "method").glob("*.yaml"))
ALL_SLOTS = [
    (slot, p.stem)
    for slot in ("select", "weights", "loss", "params")
    for p in (REPO / "conf" / "method" / slot).glob("*.yaml")
]


def preset_slots() -> set[tuple[str, str]]:
    """The slot options some preset already runs (through its defaults list, or the preset it extends)."""
    import yaml

    used, presets = set(), {p.stem: yaml.safe_load(p.read_text()) for p in (REPO / "conf" / "method").glob("*.yaml")}
    for preset in presets.values():
        chain = [preset]
        while chain:
            node = chain.pop()
            for entry in node.get("defaults", []):
                if isinstance(entry, str) and entry in presets:
                    chain.append(presets[entry])
                elif isinstance(entry, dict):
                    used.update((k, v) for k, v in entry.items() if k in ("select", "weights", "loss", "params"))
    return used


# Options a preset runs are covered by test_every_preset_runs; the others run here, on SFT.
SLOTS = sorted(set(ALL_SLOTS) - preset_slots())
TINY = ["experiment=demo", "dataset.reader.sizes=[24,8,8]", "trainer.max_epochs=1", "trainer.max_steps=1"]
TINY += ["trainer.enable_progress_bar=false", "trainer.batch_size=8"]


def run_tiny(tmp_path, *overrides):
    cfg = job_config(*TINY, f"paths.output_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'cache'}", *overrides)
    return run_job(cfg, tmp_path / "run"), tmp_path / "run"


NEEDS_TRUSTED_SEED = {"glc", "l2rw"}


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_runs(tmp_path, preset):
    trusted = ["trusted.per_class=2"] if preset in NEEDS_TRUSTED_SEED else []
    metrics, run_dir = run_tiny(tmp_path, f"method={preset}", *trusted)
    assert metrics["config"]["method"] == json.loads((run_dir / "metrics.json").read_text())["config"]["method"]
    assert 0.0 <= metrics["test/f1_macro"] <= 1.0


@pytest.mark.parametrize(("slot", "option"), sorted(ALL_SLOTS))
def test_every_slot_option_implements_its_base_class(slot, option):
    from atlantis.experiment.config import instantiate
    from atlantis.methods.base import SLOTS

    node = job_config("experiment=demo", f"method/{slot}={option}")["method"][slot]
    assert isinstance(instantiate(node), SLOTS[slot]), f"method/{slot}={option}: {node['_target_']}"


def test_a_method_refuses_a_slot_that_is_not_its_kind():
    from atlantis.methods.loss import WeightedNLL
    from atlantis.methods.method import Method
    from atlantis.methods.params import FullParams
    from atlantis.methods.select import SelectAll

    with pytest.raises(TypeError, match="weights slot is a object, which does not implement"):
        Method("broken", SelectAll(), object(), WeightedNLL(), FullParams())


class HalfWeightOnTheFirstLabel(Weights):
    """A weighting written outside the package: composed by `_target_`, it needs nothing else."""

    def example_weights(self, data) -> WeightSet:
        return WeightSet({f["id"]: 0.5 if f["label_index"] == 0 else 1.0 for f in data.features})


def test_a_weighting_defined_in_a_test_composes_by_target_and_trains(tmp_path):
    target = f"method.weights._target_={__name__}.HalfWeightOnTheFirstLabel"
    metrics, run_dir = run_tiny(tmp_path, "method=sft", target, "trainer.max_steps=-1")  # one epoch, validated
    rows = [json.loads(line) for line in (run_dir / "weights.jsonl").read_text().splitlines()]
    assert len(rows) == metrics["data"]["train"]["n_kept"] and sorted({r["weight"] for r in rows}) == [0.5, 1.0]
    assert metrics["test/checkpoint"] is not None  # it trained and tested its best checkpoint


def test_a_loss_that_ignores_weights_refuses_a_weighting(tmp_path):
    with pytest.raises(ValueError, match="ignores per-example weights"):
        run_tiny(tmp_path, "method=atlantis", "method/loss=ssr_pu")


def test_every_slot_option_is_run_by_some_test():
    assert set(ALL_SLOTS) <= preset_slots() | set(SLOTS) and len(ALL_SLOTS) >= 10


@pytest.mark.parametrize(("slot", "option"), SLOTS)
def test_every_slot_option_runs(tmp_path, slot, option):
    overrides = [f"method/{slot}={option}"]
    if slot == "select" and option != "all":
        overrides.append("method.select.budget=0.5")
    if slot == "params" and option == "top_layers_cached":
        overrides.append("model.kind=causal")  # cached frozen outputs serve decoder-only models
    metrics, run_dir = run_tiny(tmp_path, "method=sft", *overrides)
    if slot == "select" and option != "all":
        selection = json.loads((run_dir / "selection.json").read_text())
        assert selection["n_selected"] == 12 == metrics["data"]["train"]["n_selected"]
    if slot == "params" and option == "frozen":
        assert metrics["test/checkpoint"] is None and metrics["val/history"] == []


def test_atlantis_on_a_fisher_subset_normalises_over_the_subset(tmp_path):
    metrics, run_dir = run_tiny(tmp_path, "method=atlantis", "method/select=fisher", "method.select.budget=0.5")
    selected = json.loads((run_dir / "selection.json").read_text())["ids"]
    rows = [json.loads(line) for line in (run_dir / "weights.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(selected)
    assert np.mean([r["weight"] for r in rows]) == pytest.approx(1.0)


@pytest.mark.parametrize("params", ["sparse", "lora"])
def test_saved_merged_model_predicts_what_the_trained_job_did(tmp_path, params):
    # The merged plain HF directory, tested as a frozen model, gives the trained job's predictions exactly.
    metrics, run_dir = run_tiny(tmp_path / "train", "method=sft", f"method/params={params}", "save_model=true")
    saved = run_dir / "model"
    assert metrics["model_dir"] == "model" and (saved / "config.json").is_file()
    weights = (saved / "model.safetensors").read_bytes()
    assert b"lora_" not in weights and b"parametrizations" not in weights  # a plain model: nothing to unwrap
    # The training is in it: against the untrained tiny model, the trained entries (only they) changed.
    from safetensors.torch import load_file

    from atlantis.models.loading import build_model, load_tokenizer

    cfg = job_config(*TINY)
    tok = load_tokenizer(cfg["model"]["tokenizer"])
    base = build_model(cfg["model"]["large"], cfg["model"]["kind"], len(tok), tok.pad_token_id, tok.eos_token_id)
    base_state, merged = base.state_dict(), load_file(saved / "model.safetensors")
    changed = sum(int((merged[k] != base_state[k]).sum()) for k in merged)
    limit = metrics["params"]["trained"] if params == "sparse" else sum(v.numel() for v in merged.values())
    assert 0 < changed <= limit
    _, frozen_dir = run_tiny(
        tmp_path / "frozen", "method=sft", "method/params=frozen", f"model.large.name_or_path={saved}"
    )
    trained = [json.loads(line)["predicted"] for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    again = [json.loads(line)["predicted"] for line in (frozen_dir / "predictions.jsonl").read_text().splitlines()]
    assert trained == again


def test_crossfit_atlantis_writes_the_detector_comparison(tmp_path):
    metrics, run_dir = run_tiny(tmp_path, "method=atlantis_crossfit", "noise=0.4", "reference.folds=2")
    detector = json.loads((run_dir / "cleanlab.json").read_text())
    assert detector["n_corrupted"] == sum(
        1 for line in (run_dir / "weights.jsonl").open() if '"is_noisy": true' in line
    )
    cleanlab_auroc = detector["cleanlab"]["auroc_clean_vs_noisy"]
    assert 0 <= cleanlab_auroc <= 1 and metrics["weights"]["cleanlab_auroc_clean_vs_noisy"] == cleanlab_auroc
    assert detector["atlantis_weights"]["auroc_clean_vs_noisy"] == metrics["weights"]["auroc_clean_vs_noisy"]
    assert 0 <= detector["reference"]["top_is_clean"] <= 1 and 0 <= detector["reference"]["top_is_given"] <= 1


def test_calibrated_few_shot_prompting_never_trains(tmp_path, monkeypatch):
    import lightning as L

    fits = []
    monkeypatch.setattr(L.Trainer, "fit", lambda *args, **kwargs: fits.append(args))
    overrides = ["method=zero_shot", "prompt.shots=1", "eval.calibration=content_free", "prompt.max_length=1024"]
    metrics, _ = run_tiny(tmp_path, *overrides)
    assert fits == [] and metrics["test/checkpoint"] is None
    assert metrics["settings"]["prompt"]["shots"] == 1 and metrics["settings"]["eval"]["calibration"] == "content_free"


def test_calibration_by_a_constant_prior_changes_nothing():
    import torch

    from tests.models.test_module import build

    module, dm = build("causal")
    batch = dm.collator(dm.features["validation"][:8])
    module.eval()
    plain, _ = module.predict_labels(batch)
    module.label_bias = torch.full((len(dm.labels),), -3.7)
    assert module.predict_labels(batch)[0] == plain
    module.calibration_batch = dm.content_free_batch()
    assert module.content_free_scores().shape == (len(dm.labels),)
