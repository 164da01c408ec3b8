"""`python -m atlantis.report.wandb --entity E --project P [--group G]`: the sweep's W&B dashboard, built by code.

One specification (`dashboard_spec`, plain JSON: sections of panels) is turned into a W&B workspace and, with
`--report`, a W&B report, through `wandb-workspaces` (W&B's Workspace and Report API). `--dry-run` prints the
specification and touches no network. The panels read what `atlantis.experiment.wandb` logs:

- test official F1 by method, mean ± sd over seeds, one bar panel per noise rate (each run also logs its score
  under `by_noise/<rate>/test_f1_official`, because a workspace panel cannot filter runs by itself);
- validation F1 against epoch, by method (mean ± sd band);
- the weights' ESS/N and detection AUROC (clean vs corrupted) by method;
- the multirun's summary run: its report table (`report/table`) and plot.

The noise rates come from a local sweep folder (`--sweep DIR`), from `--noise`, or else from the runs in W&B.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

GROUP_BY = "method"
METRIC = "test/f1_official"


def dashboard_spec(entity: str, project: str, group: str | None, noise_rates: list[float]) -> dict:
    """The workspace's sections and panels, as plain data (what --dry-run prints, what the builders read)."""
    bar = {"type": "bar", "groupby": GROUP_BY, "aggregate": "mean", "range": "stddev"}
    test_panels = [
        dict(bar, title=f"test official F1, noise {rate} (mean ± sd over seeds)",
             metrics=[f"by_noise/{rate}/test_f1_official"], noise=rate)
        for rate in sorted(noise_rates)
    ]  # fmt: skip
    return {
        "entity": entity,
        "project": project,
        "name": f"atlantis: {group}" if group else f"atlantis: {project}",
        "filter": {"group": group} if group else {},
        "groupby": [GROUP_BY],
        "sections": [
            {"name": "Test F1 by method, per noise rate", "panels": test_panels},
            {
                "name": "Validation",
                "panels": [
                    {
                        "type": "line",
                        "title": "validation F1 by method",
                        "x": "epoch",
                        "y": ["val/f1"],
                        "groupby": GROUP_BY,
                        "aggregate": "mean",
                        "range": "stddev",
                    },
                ],  # fmt: skip
            },
            {
                "name": "Weights",
                "panels": [
                    dict(bar, title="ESS/N of the weights by method", metrics=["weights/ess_fraction"]),
                    dict(
                        bar,
                        title="detection AUROC (clean vs corrupted) by method",
                        metrics=["weights/auroc_clean_vs_noisy"],
                    ),
                ],  # fmt: skip
            },
            {
                "name": "Report (the multirun's summary run)",
                "panels": [
                    {"type": "table", "title": "report table", "key": "report/table"},
                    {"type": "media", "title": "report plot", "key": "report/plot"},
                ],
            },
        ],
    }


# ---- the W&B objects ------------------------------------------------------------------------------
def panel(spec: dict):
    """One wandb-workspaces panel from a panel's specification."""
    import wandb_workspaces.reports.v2 as wr

    groupby = wr.Config(spec["groupby"]) if spec.get("groupby") else None
    grouping = {"groupby": groupby, "groupby_aggfunc": spec.get("aggregate"), "groupby_rangefunc": spec.get("range")}
    if spec["type"] == "bar":
        return wr.BarPlot(title=spec["title"], metrics=spec["metrics"], orientation="v", **grouping)
    if spec["type"] == "line":
        return wr.LinePlot(title=spec["title"], x=spec["x"], y=spec["y"], **grouping)
    if spec["type"] == "table":
        return wr.WeavePanelSummaryTable(table_name=spec["key"])
    if spec["type"] == "media":
        return wr.MediaBrowser(title=spec["title"], media_keys=[spec["key"]])
    raise ValueError(f"unknown panel type {spec['type']!r} in the dashboard specification")


def build_workspace(spec: dict):
    """The W&B workspace (saved with `.save()`): the specification's sections, runs filtered and grouped."""
    import wandb_workspaces.workspaces as ws

    filters = [ws.Metric("Group") == spec["filter"]["group"]] if spec["filter"].get("group") else []
    return ws.Workspace(
        entity=spec["entity"],
        project=spec["project"],
        name=spec["name"],
        sections=[
            ws.Section(name=s["name"], panels=[panel(p) for p in s["panels"]], is_open=True) for s in spec["sections"]
        ],
        runset_settings=ws.RunsetSettings(filters=filters, groupby=[ws.Config(k) for k in spec["groupby"]]),
    )


def build_report(spec: dict):
    """A W&B report of the same panels; each noise rate's panel reads only that rate's runs."""
    import wandb_workspaces.reports.v2 as wr

    group = spec["filter"].get("group")

    def runset(noise=None):
        conditions = ([f"Group == '{group}'"] if group else []) + ([f"Config('noise') == {noise}"] if noise else [])
        return wr.Runset(entity=spec["entity"], project=spec["project"], filters=" and ".join(conditions),
                         groupby=[f"config.{k}" for k in spec["groupby"]])  # fmt: skip

    blocks = [wr.H1(text=spec["name"])]
    for section in spec["sections"]:
        blocks.append(wr.H2(text=section["name"]))
        by_noise = [p for p in section["panels"] if "noise" in p]
        for p in by_noise:  # the report's runset filters by noise: the plain test score
            blocks.append(wr.PanelGrid(runsets=[runset(p["noise"])], panels=[panel(dict(p, metrics=[METRIC]))]))
        if rest := [p for p in section["panels"] if "noise" not in p]:
            blocks.append(wr.PanelGrid(runsets=[runset()], panels=[panel(p) for p in rest]))
    return wr.Report(entity=spec["entity"], project=spec["project"], title=spec["name"][:128], blocks=blocks)


def sweep_group_name(sweep_dir: str | Path) -> str:
    """A multirun's W&B group (what `logger.group` defaults to): its folder's last two parts
    (`2026-12-02_13-40-00_123ab`)."""
    parts = Path(sweep_dir).resolve().parts
    return "_".join(parts[-2:])


# ---- where the noise rates come from -------------------------------------------------------------
def sweep_noise_rates(sweep_dir: str | Path) -> list[float]:
    """The noise rates of the jobs under a local sweep folder (their metrics.json)."""
    rates = set()
    for path in Path(sweep_dir).rglob("metrics.json"):
        noise = json.loads(path.read_text()).get("noise") or {}
        if noise.get("rate") is not None:
            rates.add(float(noise["rate"]))
    if not rates:
        raise ValueError(f"{sweep_dir}: no job's metrics.json under it names a noise rate (is it a sweep folder?)")
    return sorted(rates)


def wandb_noise_rates(entity: str, project: str, group: str | None) -> list[float]:
    """The noise rates of the project's (group's) runs, asked of W&B."""
    import wandb

    filters = {"group": group} if group else {}
    runs = wandb.Api().runs(f"{entity}/{project}", filters=filters)
    return sorted({float(run.config["noise"]) for run in runs if run.config.get("noise") is not None})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entity", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--group", default=None, help="one multirun's W&B group (default: every run of the project)")
    parser.add_argument("--sweep", default=None, help="a local sweep folder: its noise rates (and its group)")
    parser.add_argument("--noise", default=None, help="noise rates, comma-separated (default: --sweep's, or W&B's)")
    parser.add_argument("--report", action="store_true", help="also save a W&B report of the same panels")
    parser.add_argument("--dry-run", action="store_true", help="print the specification as JSON; no network")
    args = parser.parse_args(argv)
    group = args.group
    if group is None and args.sweep:
        group = sweep_group_name(args.sweep)
    if args.noise:
        rates = [float(r) for r in args.noise.split(",")]
    elif args.sweep:
        rates = sweep_noise_rates(args.sweep)
    elif args.dry_run:
        parser.error("--dry-run reads no W&B: give --sweep DIR or --noise RATES")
    else:
        rates = wandb_noise_rates(args.entity, args.project, group)
    spec = dashboard_spec(args.entity, args.project, group, rates)
    if args.dry_run:
        print(json.dumps(spec, indent=2))
        return 0
    workspace = build_workspace(spec).save()
    print(f"workspace: {workspace.url}")
    if args.report:
        report = build_report(spec).save()
        print(f"report: {report.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
