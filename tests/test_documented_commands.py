"""Every `python run.py ...` line in README.md and docs/**/*.md, and every one the study scripts (sweeps/*.sh) run,
composes: a renamed key fails here, not a reader.

Each line is parsed as the shell would (continuations joined, comments and env assignments dropped), a sweep is
reduced to its first value, `<placeholder>`s become a plain word, and Hydra composes the result (the config a
`--cfg job` would print). Lines abbreviated with `...` are skipped. The scripts print their commands under DRY_RUN=1.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from atlantis.experiment.resolvers import register_resolvers
from tests.conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
COMMAND = re.compile(r"(?:\S*python\S*)\s+run\.py\b(?P<args>[^`\n]*)")


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        parts = path.read_text().split("```")
        # code blocks (odd parts): shell continuations joined; prose: an inline `command` may wrap a line
        parts = [re.sub(r"\\\n\s*", " ", p) if i % 2 else re.sub(r"`[^`]+`", lambda m: m[0].replace("\n", " "), p)
                 for i, p in enumerate(parts)]  # fmt: skip
        text = "```".join(parts)
        for match in COMMAND.finditer(text):
            args = match.group("args").split(" #", 1)[0].strip()
            if "..." in args or "<its overrides>" in args:
                continue
            found.append((f"{path.relative_to(REPO)}: python run.py {args}".strip(), args))
    return found


def first_values(overrides: list[str]) -> list[str]:
    """A sweep override reduced to its first value (`noise=0.2,0.5` -> `noise=0.2`)."""
    out = []
    for text, parsed in zip(overrides, OverridesParser.create().parse_overrides(overrides)):
        if parsed.is_sweep_override():
            first = next(iter(parsed.sweep_string_iterator()))
            out.append(f"{parsed.get_key_element()}={first}")
        else:
            out.append(text)
    return out


# Each study script and its parts (the `usage` line lists them); `all` repeats the others.
SCRIPT_PARTS = re.compile(r"^\s*\*\) usage (?P<parts>[a-z0-9_ ]+?)\s*;;", re.M)


def script_commands() -> list[tuple[str, str]]:
    found = []
    for script in sorted((REPO / "sweeps").glob("*.sh")):
        usage = SCRIPT_PARTS.search(script.read_text())
        if usage is None:
            continue
        for part in usage["parts"].split():
            env = dict(os.environ, DRY_RUN="1")
            out = subprocess.run(["bash", str(script), part], env=env, capture_output=True, text=True, check=True)
            for line in out.stdout.splitlines():
                if " run.py " in line:
                    args = line.split(" run.py ", 1)[1]
                    found.append((f"{script.relative_to(REPO)} {part}: python run.py {args}", args))
    return found


COMMANDS = documented_commands() + script_commands()


def test_the_docs_have_commands_to_check():
    assert len(COMMANDS) > 20  # the collector finds them (a broken regex would pass every line vacuously)
    scripts = {where.split(" ", 1)[0] for where, _ in script_commands()}
    assert {"sweeps/study_cpu.sh", "sweeps/study_ratio.sh", "sweeps/ade_redocred.sh"} <= scripts


@pytest.mark.parametrize("where,args", COMMANDS, ids=[c[0][:90] for c in COMMANDS])
def test_a_documented_command_composes(where, args):
    words = [re.sub(r"<[^>]+>", "placeholder", w) for w in shlex.split(args)]
    config_dir, config_name, overrides = REPO / "conf", "config", []
    words = iter(words)
    for word in words:
        if word in ("-m", "--multirun"):
            continue
        if word == "--config-dir":
            config_dir = REPO / next(words)
        elif word == "--config-name":
            config_name = next(words)
        elif word.startswith("--"):
            pytest.fail(f"{where}: an option this test does not know: {word}")
        else:
            overrides.append(word)
    register_resolvers()
    GlobalHydra.instance().clear()
    # run.py's conf/ stays on the search path beside a --config-dir, as @hydra.main keeps it
    search = [f"hydra.searchpath=[file://{REPO / 'conf'}]"] if config_dir != REPO / "conf" else []
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name, overrides=first_values(overrides) + search, return_hydra_config=True)
    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    OmegaConf.to_container(job, resolve=True)  # every interpolation of the job resolves
