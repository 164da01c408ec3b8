"""OmegaConf resolvers the configs use: `${uid:}` (one id per process) and `${job_name:}` (what a job runs)."""

from __future__ import annotations

import os
import secrets

from omegaconf import OmegaConf

# One id per process, so runs started in the same second never share a folder.
_PROCESS_UID = f"{os.getpid()}{secrets.token_hex(2)}"


def job_name(*, _root_) -> str:
    """dataset-model-method-noise-seed, naming what runs: `synthetic←semeval-tiny←flan_t5-sft-noise0.2-seed0`."""
    from atlantis.experiment.fallback import planned_fallback, shown_name

    plan = planned_fallback(_root_)
    return "-".join(
        [shown_name("dataset", _root_, plan), shown_name("model", _root_, plan), str(_root_.method.name)]
        + [f"noise{_root_.noise}", f"seed{_root_.seed}"]
    )


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("uid", lambda: _PROCESS_UID, replace=True)
    OmegaConf.register_new_resolver("job_name", job_name, replace=True)
