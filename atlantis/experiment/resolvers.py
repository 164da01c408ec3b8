"""OmegaConf resolvers the configs use: `${uid:}` (one id per process), `${job_name:}` (what a job runs) and
`${sweep_group:}` (a multirun's W&B group)."""

from __future__ import annotations

import os
import secrets

from omegaconf import OmegaConf

# One id per process, so runs started in the same second never share a folder.
_PROCESS_UID = f"{os.getpid()}{secrets.token_hex(2)}"


def job_name(*, _root_) -> str:
    """dataset-model-method[-selection]-noise-seed, naming what runs: `synthetic←semeval-tiny←flan_t5-sft-noise0.2-seed0`,
    `semeval-smollm2-sft-fisher0.25-noise0.2-seed0`."""
    from atlantis.experiment.fallback import planned_fallback, shown_name

    plan = planned_fallback(_root_)
    method = str(_root_.method.name)
    selection = selection_tag(OmegaConf.select(_root_, "method.select"), method)
    trusted = trusted_tag(OmegaConf.select(_root_, "trusted"))
    return "-".join(
        [shown_name("dataset", _root_, plan), shown_name("model", _root_, plan), method]
        + [tag for tag in (selection, trusted) if tag]
        + [f"noise{_root_.noise}", f"seed{_root_.seed}"]
    )


def selection_tag(select, method: str) -> str | None:
    """`fisher0.25` for FisherSFT at 25 %; None for every example or a selection the method's name already says
    (cleanlab). Without it, SFT on all, on FisherSFT's and on a random quarter shared one folder name, and a sweep
    that ran them one after another into one folder kept only the last one's outputs."""
    target = OmegaConf.select(select, "_target_") if select is not None else None
    if not target:
        return None
    kind = str(target).rsplit(".", 1)[-1].removeprefix("Select").lower()
    if kind == "all" or kind in method:
        return None
    budget = OmegaConf.select(select, "budget")
    return f"{kind}{budget}" if budget is not None else kind


def trusted_tag(trusted) -> str | None:
    """`trusted10` (k = 10 per class, training on noisy and trusted), `trusted10none` / `trusted10only` for the
    other uses; None without a trusted seed."""
    per_class = OmegaConf.select(trusted, "per_class") if trusted is not None else None
    if not per_class:
        return None
    use = OmegaConf.select(trusted, "use") or "union"
    return f"trusted{per_class}" + ("" if use == "union" else use)


def sweep_group() -> str | None:
    """A multirun's W&B group (its folder's last two parts); None for a single run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from atlantis.report.wandb import sweep_group_name

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return sweep_group_name(HydraConfig.get().sweep.dir)


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("uid", lambda: _PROCESS_UID, replace=True)
    OmegaConf.register_new_resolver("job_name", job_name, replace=True)
    OmegaConf.register_new_resolver("sweep_group", sweep_group, replace=True)
