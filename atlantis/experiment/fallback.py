"""What a job runs when the hub is out of reach: the embedded demo setting, decided once from the config.

The same decision names the job's folder (`run_name`), so a job that fell back says what it ran
(`synthetic←semeval`, `tiny←flan_t5`) in its folder, summary row, W&B tags and report.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from atlantis.experiment.config import instantiate
from atlantis.utils.hub import hub_offline, missing_local_path

log = logging.getLogger(__name__)
ARROW = "←"
EMBEDDED = ("tiny", "builtin")
OFFLINE_DATASET = {"name": "synthetic", "reader": {"_target_": "atlantis.data.synthetic.SyntheticReader"}}


def _local_model(name: str | None) -> bool:
    """An embedded name, a local folder, or a hub id already in the local hub cache. A local path that is missing
    counts too: the tiny pair must not stand in for it (its loading says what is missing and what writes it)."""
    if not name or name in EMBEDDED or os.path.isdir(str(name)) or missing_local_path(name):
        return True
    try:
        from huggingface_hub import try_to_load_from_cache

        return any(
            isinstance(try_to_load_from_cache(str(name), f), str) for f in ("config.json", "tokenizer_config.json")
        )
    except Exception:  # not a valid repo id either
        return False


def make_reader(dataset: Mapping):
    """The dataset's reader, built from its config's `reader` node (`_target_` and options)."""
    return instantiate(dataset["reader"])


def dataset_is_local(dataset: Mapping) -> bool:
    return make_reader(dataset).local_source() is not None


def model_is_local(model: Mapping) -> bool:
    names = [model.get("tokenizer")] + [(model.get(role) or {}).get("name_or_path") for role in ("small", "large")]
    return all(_local_model(n) for n in names)


def planned_fallback(cfg: Mapping) -> dict:
    """{'dataset': name, 'model': name} for each part the job replaces because the hub is out of reach.

    A model that falls back takes the dataset with it: the tiny pair on a real dataset would be slow and say
    nothing, so the job becomes the embedded demo setting.
    """
    if not cfg.get("offline_fallback", True):
        return {}
    model_needs_hub = not model_is_local(cfg["model"])
    if not (model_needs_hub or not dataset_is_local(cfg["dataset"])) or not hub_offline():
        return {}
    plan = {"dataset": cfg["dataset"]["name"]} if cfg["dataset"]["name"] != OFFLINE_DATASET["name"] else {}
    return dict(plan, model=cfg["model"]["name"]) if model_needs_hub else plan


def replacement(part: str, cfg: Mapping) -> str:
    """The name of what runs in place of `part` ('dataset' or 'model') offline."""
    return OFFLINE_DATASET["name"] if part == "dataset" else cfg["offline_model"]["name"]


def _arrow(ran: str, replaced: str | None) -> str:
    return f"{ran}{ARROW}{replaced}" if replaced else ran


def shown_name(part: str, cfg: Mapping, plan: Mapping) -> str:
    """The name a report shows for `part`: what ran, and what it replaced (`synthetic←semeval`)."""
    return _arrow(replacement(part, cfg), plan[part]) if part in plan else cfg[part]["name"]


def apply_fallback(cfg: dict) -> dict:
    """Switch `cfg` (a plain dict) to the embedded setting where it needs the hub offline; record what changed."""
    plan = planned_fallback(cfg)
    if not plan:
        return cfg
    fallback = {}
    if "dataset" in plan:
        fallback.update(dataset=plan["dataset"], dataset_ran=replacement("dataset", cfg))
        cfg["dataset"] = dict(OFFLINE_DATASET)
    if "model" in plan:
        fallback.update(model=plan["model"], model_ran=replacement("model", cfg))
        cfg["model"] = dict(cfg["offline_model"], kind=cfg["model"]["kind"])
        cfg["trainer"] = dict(cfg["trainer"], **(cfg.get("offline_trainer") or {}))
    log.warning(
        "offline: running %s (set offline_fallback=false to fail instead)",
        ", ".join(f"{fallback[p + '_ran']} in place of {fallback[p]}" for p in ("dataset", "model") if p in fallback),
    )
    cfg["fallback"] = fallback
    return cfg


def ran_name(cfg: Mapping, part: str) -> str:
    """After `apply_fallback`: the name of what ran for `part`, with what it replaced (`tiny←flan_t5`)."""
    return _arrow(cfg[part]["name"], (cfg.get("fallback") or {}).get(part))
