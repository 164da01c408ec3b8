"""What trains, side by side: one SFT training step of SmolLM2-135M on the same SemEval batches with
full / top-8 blocks / LoRA r=8 / sparse 1 % (SPEFT), and the same step in HF `Trainer` (the peer a user
would pick instead; full and LoRA). Each variant runs in its own process so its peak memory is its own.

    python -m benchmarks.params_step [--steps 10] [--batch-size 8] [--model smollm2|gemma3] [--only VARIANT...]

Per variant: mean step time after warm-up (Lightning `StepTimer` resp. a `TrainerCallback`, both around
forward + backward + clipping + AdamW step), peak resident memory of the process during training (the
high-water mark is reset after the model is loaded, so GGUF dequantisation is not counted) and its rise
over the loaded model, trainable parameters, optimizer-state bytes (the AdamW moments actually held).
Real SmolLM2-135M-Instruct weights when ATLANTIS_MODELS_DIR has them, else random weights at that shape;
`--model gemma3`: Gemma-3-270M (`make models`; its top 8 of 18 blocks). Real SemEval sentences when
ATLANTIS_DATA_DIR has them, else the built-in set. Results: benchmarks/results/cpu.json, key params_step
(params_step_only with --only; a `_gemma3` suffix for Gemma).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import (
    RESULTS,
    build_shape,
    fit_steps,
    merge_results,
    parse_sized,
    peak_rss_mb,
    reset_peak_rss,
)

LR = 4e-4
VARIANTS = {
    "full": {"_target_": "atlantis.methods.params.FullParams"},
    "top-8 blocks": {"_target_": "atlantis.methods.params.TopLayers", "n": 8},
    "top-8, frozen outputs cached": {"_target_": "atlantis.methods.params.TopLayers", "n": 8, "cache_lower": True},
    "LoRA r=8": {"_target_": "atlantis.methods.params.LoRA", "r": 8, "alpha": 16, "dropout": 0.0},
    "sparse 1 %": {"_target_": "atlantis.methods.params.Sparse", "density": 0.01, "score_batches": 4},
}
PEERS = ("HF Trainer, full", "HF Trainer + peft LoRA r=8")


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_smollm2():
    """(model, tokenizer, batches' source description): real weights when present, else the shape."""
    from atlantis.models.loading import load_pretrained, load_tokenizer

    models_dir = Path(os.environ.get("ATLANTIS_MODELS_DIR", "-")) / "smollm2-135m-instruct-gguf"
    if models_dir.is_dir():
        cache = os.environ.get("ATLANTIS_CACHE_DIR", ".cache/atlantis")
        model = load_pretrained("causal", str(models_dir), "SmolLM2-135M-Instruct.Q4_1.gguf", cache)
        return model.float(), load_tokenizer(str(models_dir)), "real SmolLM2-135M-Instruct (GGUF, dequantised)"
    return build_shape("smollm2-135m"), load_tokenizer("builtin"), "random weights, SmolLM2-135M shape"


def load_gemma3():
    """Gemma-3-270M from `make models` (its GGUF dequantised once into the cache, then the plain copy)."""
    from atlantis.models.loading import load_pretrained, load_tokenizer
    from benchmarks.gemma_step import GGUF, gemma_dir

    folder = gemma_dir(None)
    model = load_pretrained("causal", str(folder), GGUF, os.environ.get("ATLANTIS_CACHE_DIR", ".cache/atlantis"))
    return model.float(), load_tokenizer(str(folder / "tokenizer")), "real Gemma-3-270M (GGUF, dequantised)"


LOADERS = {"smollm2": load_smollm2, "gemma3": load_gemma3}


def semeval_batches(tokenizer, steps: int, batch_size: int):
    from atlantis.data.datamodule import RelationDataModule
    from atlantis.data.semeval import SemEvalReader
    from atlantis.data.splits import build_splits
    from atlantis.data.synthetic import SyntheticReader

    data_dir = os.environ.get("ATLANTIS_DATA_DIR")
    if data_dir and (Path(data_dir) / "semeval2010_task8").is_dir():
        splits, data = SemEvalReader(directed=False).load(0), "SemEval-2010 Task 8 training sentences"
    else:
        splits, data = build_splits(SyntheticReader([steps * batch_size, 10, 10]), seed=0), "built-in examples"
    splits.train = splits.train[: steps * batch_size]
    dm = RelationDataModule(splits, tokenizer, "causal", batch_size=batch_size, eval_batch_size=batch_size)
    dm.setup()
    features = dm.features["train"]
    batches = [dm.collator(features[i : i + batch_size]) for i in range(0, len(features), batch_size)]
    return batches, dm, data


def optimizer_state_bytes(optimizer) -> int:
    return sum(
        v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)
    )


def run_atlantis(name: str, model, tokenizer, batches, dm) -> dict:
    from atlantis.data.tokenization import target_ids
    from atlantis.models.module import RelationLM

    module = RelationLM(
        model={"name_or_path": "smollm2-135m"},
        kind="causal",
        tokenizer="builtin",
        labels=dm.labels,
        label_token_ids=[target_ids(tokenizer, dm.builder, label) for label in dm.labels],
        lr=LR,
        warmup_ratio=0.1,
        params=VARIANTS[name],
        tokenizer_object=tokenizer,
        model_object=model,
    )
    reset_peak_rss()
    start = time.perf_counter()
    module.params_policy.prepare(module, batches)  # sparse: the salience pass that picks the mask
    if getattr(module.params_policy, "cache_lower", False):  # the first epoch fills the cache; time the later ones
        with torch.no_grad():
            for batch in batches:
                module.params_policy.example_nll(module.model, module.kind, batch)
    prepare_s, prepare_peak_mb = time.perf_counter() - start, peak_rss_mb()
    loaded_mb = current_rss_mb()
    reset_peak_rss()
    timer, trainer = fit_steps(module, batches, skip=2)
    return {
        "step_s": timer.mean(),
        "peak_rss_mb": peak_rss_mb(),
        "rise_mb": peak_rss_mb() - loaded_mb,
        "trainable": sum(p.numel() for p in module.model.parameters() if p.requires_grad),
        "optimizer_state_bytes": optimizer_state_bytes(trainer.optimizers[0]),
        "prepare_s": prepare_s,
        "prepare_peak_rss_mb": prepare_peak_mb,
    }


def run_peer(name: str, model, batches) -> dict:
    """HF Trainer on the same batches: its model computes the loss (full logits, token-mean cross-entropy)."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    if "LoRA" in name:
        from peft import LoraConfig, get_peft_model

        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets))
    times = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *args, **kwargs):
            self.start = time.perf_counter()

        def on_step_end(self, *args, **kwargs):
            times.append(time.perf_counter() - self.start)

    class SameBatches(Trainer):
        def get_train_dataloader(self):  # our collated batches, in our order (no re-tokenisation, no shuffle)
            keep = ("input_ids", "attention_mask", "labels")
            return torch.utils.data.DataLoader(
                [{k: b[k] for k in keep} for b in batches], batch_size=None, collate_fn=lambda b: b
            )

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            max_steps=len(batches),
            learning_rate=LR,
            warmup_steps=int(0.1 * len(batches)),
            weight_decay=0.0,
            max_grad_norm=1.0,
            per_device_train_batch_size=len(batches[0]["input_ids"]),
            logging_strategy="no",
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        trainer = SameBatches(model=model, args=args, callbacks=[Timer()])
        loaded_mb = current_rss_mb()
        reset_peak_rss()
        trainer.train()
        return {
            "step_s": sum(times[2:]) / len(times[2:]),
            "peak_rss_mb": peak_rss_mb(),
            "rise_mb": peak_rss_mb() - loaded_mb,
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "optimizer_state_bytes": optimizer_state_bytes(trainer.optimizer),
            "prepare_s": 0.0,
            "prepare_peak_rss_mb": None,
        }


def one(name: str, steps: int, batch_size: int, model_name: str = "smollm2") -> dict:
    torch.manual_seed(0)
    model, tokenizer, weights = LOADERS[model_name]()
    batches, dm, data = semeval_batches(tokenizer, steps, batch_size)
    model.train()
    result = run_peer(name, model, batches) if name in PEERS else run_atlantis(name, model, tokenizer, batches, dm)
    tokens = sum(int(b["attention_mask"].sum()) for b in batches) / len(batches)
    return dict(result, variant=name, weights=weights, data=data, tokens_per_batch=tokens)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10, help="training steps per variant (the first 2 untimed)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="+", help="these variants only (their results: key params_step_only)")
    parser.add_argument("--model", choices=sorted(LOADERS), default="smollm2", help="the model trained")
    args = parse_sized(parser, argv, steps=3, batch_size=2)
    if args.one:  # a child process: one variant, its result as JSON
        Path(args.out).write_text(json.dumps(one(args.one, args.steps, args.batch_size, args.model)))
        return {}
    runs = []
    for name in args.only or [*VARIANTS, *PEERS]:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [sys.executable, "-m", "benchmarks.params_step", "--one", name, "--out", out.name]
            command += ["--steps", str(args.steps), "--batch-size", str(args.batch_size), "--model", args.model]
            print(f"-- {name}", flush=True)
            subprocess.run(command, check=True)
            runs.append(json.loads(Path(out.name).read_text()))
    by_name = {r["variant"]: r for r in runs}
    reference = by_name.get("full") or runs[0]
    for r in runs:
        r["step_vs_full"] = r["step_s"] / reference["step_s"]
        r["peak_vs_full"] = r["peak_rss_mb"] / reference["peak_rss_mb"]
    ratios = {
        name: by_name[name]["step_s"] / by_name[peer]["step_s"]
        for name, peer in (("full", PEERS[0]), ("LoRA r=8", PEERS[1]))
        if name in by_name and peer in by_name
    }
    result = {
        "what": "one SFT training step per variant, same batches, fp32 CPU; step time after 2 warm-up steps",
        "steps": args.steps,
        "batch_size": args.batch_size,
        "runs": runs,
        "atlantis_over_peer": ratios,
    }
    key = ("params_step_only" if args.only else "params_step") + ("" if args.model == "smollm2" else f"_{args.model}")
    merge_results(RESULTS / "cpu.json", key, result)
    print(f"\n{runs[0]['weights']}; {runs[0]['data']}; batch {args.batch_size}, {args.steps} steps, "
          f"~{runs[0]['tokens_per_batch']:.0f} tokens per batch")  # fmt: skip
    print(
        f"| variant | step s | × {reference['variant']} | peak RSS MB | rise MB | × its peak | trainable | "
        "optimizer state MB | mask pass |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in runs:
        print(
            f"| {r['variant']} | {r['step_s']:.3f} | {r['step_vs_full']:.2f} | {r['peak_rss_mb']:.0f} | "
            f"{r['rise_mb']:.0f} | {r['peak_vs_full']:.2f} | {r['trainable']:,} | "
            f"{r['optimizer_state_bytes'] / 1e6:.1f} | "
            + (f"{r['prepare_s']:.1f} s, peak {r['prepare_peak_rss_mb']:.0f} MB |" if r["prepare_s"] > 0.05 else "- |")
        )
    for name, ratio in ratios.items():
        print(f"atlantis / peer step time, {name}: {ratio:.2f} (goal <= 1.0)")
    return result


if __name__ == "__main__":
    main()
