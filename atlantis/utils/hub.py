"""Is the Hugging Face hub reachable? Asked once per process; when it is not, the whole process (and every job
of its sweep) switches to offline mode, so no download is retried."""

from __future__ import annotations

import logging
import os
import socket
import sys
from urllib.parse import urlparse

log = logging.getLogger(__name__)
OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_TRUE = {"1", "true", "yes", "on"}
_probed: bool | None = None


def _offline_by_env() -> bool:
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in OFFLINE_ENV)


def _reachable(url: str, timeout: float) -> bool:
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def set_offline() -> None:
    """Offline mode for this process and its children: the libraries read these once, so patch them too."""
    for name in OFFLINE_ENV:
        os.environ[name] = "1"
    if "huggingface_hub" in sys.modules:
        import huggingface_hub.constants

        huggingface_hub.constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:
        import datasets.config

        datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True


def hub_offline(timeout: float = 3.0) -> bool:
    """True when offline mode is set or the hub does not answer; the probe runs once per process."""
    global _probed
    if _offline_by_env():
        set_offline()  # a variable set after the libraries were imported still takes effect
        return True
    if _probed is None:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        _probed = not _reachable(endpoint, timeout)
        if _probed:
            log.warning("the hub (%s) is out of reach: offline mode for this process, no download retries", endpoint)
    if _probed:
        set_offline()
    return _probed


def missing_local_path(name: str) -> bool:
    """A model or tokenizer name that can only be a local path (absolute, ./, ../, ~, or more than a hub id's
    owner/name) and is not there: no hub can stand in for it, so it is an error, never an offline fallback."""
    name = str(name)
    looks_local = os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1
    return looks_local and not os.path.exists(os.path.expanduser(name))


def check_local_path(name: str, what: str = "model") -> None:
    """Raise, naming the path and what writes it, when `name` is a missing local path."""
    if missing_local_path(name):
        raise FileNotFoundError(
            f"{what} {name}: no such folder (a local path, not a hub id). `make models` writes Gemma-3-270M; "
            "ATLANTIS_MODELS_DIR and ATLANTIS_FETCHED_MODELS_DIR say where the local models are (docs/install.md)"
        )
