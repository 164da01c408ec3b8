"""Hydra at the edge: the resolved config as plain values, and objects built from `_target_` nodes."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


def plain(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


def instantiate(node: dict):
    """The object a `_target_` node names, with plain (not OmegaConf) arguments."""
    from hydra.utils import instantiate as hydra_instantiate

    return hydra_instantiate(dict(node), _convert_="all")


def compose_job(*overrides: str, config_dir: str | None = None) -> dict:
    """A job's config as run.py composes it (without the hydra node), resolved to plain values: for notebooks,
    benchmarks and tests that run one job through `run_job` without Hydra's runner."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from atlantis.experiment.resolvers import register_resolvers

    register_resolvers()
    conf = config_dir or str(Path(__file__).resolve().parents[2] / "conf")
    with initialize_config_dir(conf, version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)
