"""Hydra at the edge: the resolved config as plain values, and objects built from `_target_` nodes."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


def plain(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


def instantiate(node: dict):
    """The object a `_target_` node names, with plain (not OmegaConf) arguments."""
    from hydra.utils import instantiate as hydra_instantiate

    return hydra_instantiate(dict(node), _convert_="all")
