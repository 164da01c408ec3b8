"""A language model as a weak labeller: label a dataset's training (and validation) sentences by closed-label
scoring, prompted as the job's `prompt` and `eval.calibration` say, and measure its errors against gold.

    python -m atlantis.experiment.labeller experiment=smollm2_semeval_subset \\
        prompt.shots=1 prompt.demo_pool=clean_seed prompt.max_length=1024 labeller.out=weak/

writes `weak.jsonl` (id, label, per-label probabilities) and `weak_summary.json` (natural error rate,
confusion matrix, share of the top class) to `labeller.out`, through the artifact cache (a rerun with the same
model, data and prompt reads them back). Train on them with `noise_kind=labeller noise_kind.weak_file=...`.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig

from atlantis.experiment.resolvers import register_resolvers
from atlantis.utils.progress import progress

register_resolvers()
log = logging.getLogger(__name__)


def label_summary(gold: list[str], predicted: list[str], labels: list[str]) -> dict:
    """The labeller against gold: natural error rate, confusion matrix (rows gold), where its answers go."""
    index = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(gold, predicted, strict=True):
        confusion[index[g], index[p]] += 1
    answers = confusion.sum(axis=0)
    top = int(answers.argmax())
    return {
        "n": len(gold),
        "natural_error_rate": float(1 - np.trace(confusion) / max(len(gold), 1)),
        "top_class": labels[top],
        "top_class_share": float(answers[top] / max(len(gold), 1)),
        "answer_share": {label: float(answers[i] / max(len(gold), 1)) for i, label in enumerate(labels)},
        "labels": labels,
        "confusion_matrix": confusion.tolist(),
    }


def label_dataset(cfg: dict, out_dir: Path) -> None:
    """Write weak.jsonl and weak_summary.json for the train and validation splits of cfg's dataset."""
    from atlantis.data.tokenization import target_ids
    from atlantis.models.loading import build_model
    from atlantis.signals.scoring import label_set_posterior, score_label_sets
    from atlantis.utils.distributed import job_device
    from atlantis.utils.io import atomic_write_json, atomic_write_jsonl

    dm = labeller_datamodule(cfg)
    tokenizer, kind = dm.tokenizer, cfg["model"]["kind"]
    label_ids = [target_ids(tokenizer, dm.builder, label) for label in dm.labels]
    model = build_model(
        cfg["model"]["large"], kind, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id,
        cfg["paths"]["cache_dir"],
    ).to(job_device(cfg["trainer"].get("accelerator", "auto")))  # fmt: skip
    features = dm.features["train"] + dm.features["validation"]
    scores = np.array(score_in_chunks(cfg, model, features, label_ids, tokenizer.pad_token_id), dtype=np.float64)
    if cfg["eval"].get("calibration", "none") == "content_free":
        content_free = score_label_sets(model, kind, [dm.content_free_feature()], tokenizer.pad_token_id, label_ids, 1)
        scores = scores - content_free
    probs = np.exp(label_set_posterior(scores))
    examples = {e.id: e for e in dm.splits.train + dm.splits.validation}
    rows, gold, predicted = [], [], []
    for feature, p in zip(features, probs, strict=True):
        label = dm.labels[int(p.argmax())]
        rows.append({"id": feature["id"], "label": label, "probs": dict(zip(dm.labels, p.round(6).tolist()))})
        gold.append(examples[feature["id"]].clean_label)
        predicted.append(label)
    atomic_write_jsonl(out_dir / "weak.jsonl", rows)
    summary = label_summary(gold, predicted, dm.labels)
    summary.update(setting=labeller_spec(cfg))
    atomic_write_json(out_dir / "weak_summary.json", summary)


def labeller_datamodule(cfg: dict):
    """The train and validation sentences as prompts (the test split is not labelled), every one of them kept."""
    from atlantis.data.datamodule import RelationDataModule
    from atlantis.data.prompts import DEFAULT_TEMPLATE
    from atlantis.experiment.fallback import make_reader
    from atlantis.experiment.pipeline import role_tokenizer
    from atlantis.models.loading import load_tokenizer

    if cfg["prompt"].get("shots") and cfg["prompt"].get("demo_pool") != "clean_seed":
        raise ValueError(
            "a labeller's demonstrations would show it the gold labels of the sentences it labels: "
            "use prompt.demo_pool=clean_seed (validation sentences, excluded from their own prompts)"
        )
    splits = make_reader(cfg["dataset"]).load(cfg["seed"]).check_not_empty()
    splits.test = splits.test[:1]  # not labelled; the datamodule wants three splits
    prompt = dict(cfg["prompt"])
    template = prompt.pop("template", None) or DEFAULT_TEMPLATE
    tokenizer = load_tokenizer(role_tokenizer(cfg["model"], "large"))  # the labelling model's own
    dm = RelationDataModule(
        splits, tokenizer, cfg["model"]["kind"], seed=cfg["seed"], prompt_template=template, **prompt
    )
    dm.setup()
    dropped = {k: s["n_dropped"] for k, s in dm.stats.items() if k != "test" and s["n_dropped"]}
    if dropped:
        raise ValueError(
            f"the labeller's prompts do not fit prompt.max_length={dm.max_length} for {dropped} sentences; "
            "raise it (every sentence needs a weak label)"
        )
    return dm


def score_in_chunks(cfg: dict, model, features: list[dict], label_ids, pad_token_id: int) -> list:
    """[N, C] label scores, in chunks each cached: an interrupted labelling (8,000 sentences are ~30 CPU
    minutes) resumes."""
    from atlantis.signals.cache import ArtifactCache
    from atlantis.signals.scoring import score_label_sets

    batch_size = cfg["trainer"].get("eval_batch_size") or 16
    cache, spec = ArtifactCache(Path(cfg["paths"]["cache_dir"])), labeller_spec(cfg)
    chunk = int((cfg.get("labeller") or {}).get("chunk") or 1000)
    scores = []
    for start in progress(range(0, len(features), chunk), "labelling", "chunks"):
        part = features[start : start + chunk]
        ids = [f["id"] for f in part]
        scores += cache.get_or_compute_json(
            "weak_label_chunks",
            {"labeller": {k: v for k, v in spec.items() if k != "calibration"}, "ids": ids},  # raw scores
            lambda part=part: score_label_sets(
                model, cfg["model"]["kind"], part, pad_token_id, label_ids, batch_size
            ).tolist(),
            f"weak labels {start}-{start + len(part)}",
        )
    return scores


def labeller_spec(cfg: dict) -> dict:
    """What decides the labels: model, tokenizer, data, prompt, calibration, seed (the cache key)."""
    from atlantis.experiment.pipeline import role_tokenizer, tokenizer_identity
    from atlantis.signals.identity import model_identity

    cache = cfg["paths"]["cache_dir"]
    return {
        "model": model_identity(cfg["model"]["large"], cache),
        "tokenizer": tokenizer_identity(role_tokenizer(cfg["model"], "large"), cache),
        "kind": cfg["model"]["kind"],
        "dataset": cfg["dataset"]["reader"],
        "prompt": cfg["prompt"],
        "calibration": cfg["eval"].get("calibration", "none"),
        "seed": cfg["seed"],
    }


def run_labeller(cfg: dict) -> Path:
    """The labelled files (cached), copied to labeller.out; returns the folder they are in."""
    from atlantis.experiment.config import plain
    from atlantis.signals.cache import ArtifactCache

    cfg = plain(cfg)
    cache = ArtifactCache(Path(cfg["paths"]["cache_dir"]))
    entry = cache.get_or_create("weak_labels", labeller_spec(cfg), lambda tmp: label_dataset(cfg, tmp), "weak labels")
    out = Path((cfg.get("labeller") or {}).get("out") or entry)
    if out != entry:
        out.mkdir(parents=True, exist_ok=True)
        for name in ("weak.jsonl", "weak_summary.json"):
            shutil.copyfile(entry / name, out / name)
    summary = json.loads((out / "weak_summary.json").read_text())
    print(
        f"labelled {summary['n']} sentences: natural error rate {summary['natural_error_rate']:.3f}, "
        f"{summary['top_class_share']:.1%} of the answers on {summary['top_class']}\n"
        f"train on them: noise_kind=labeller noise_kind.weak_file={(out / 'weak.jsonl').resolve()}"
    )
    return out


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from atlantis.experiment.console import quiet_libraries

    quiet_libraries()
    run_labeller(cfg)


if __name__ == "__main__":
    main()
