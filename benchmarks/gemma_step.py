"""Gemma-3-270M (the large model of model=smollm2_gemma3) on the CPU: load times, one training step of the top 8
blocks with logits only at the target positions vs full logits, one no-grad scoring pass, and a look at the
weights (a continuation, the loss on a plain sentence).

    python -m benchmarks.gemma_step [--batch-size 8] [--prompt-tokens 100] [--target-tokens 3] [--steps 4]
                                    [--score-n 32] [--fresh] [--skip-gguf-tokenizer]

Needs `make models` (the GGUF and its tokenizer folder under $ATLANTIS_FETCHED_MODELS_DIR, default models/).
The batches are SemEval-like: every row is <bos> + (prompt tokens - 1) tokens cut from the framework's own
SemEval prompts (the built-in examples without ATLANTIS_DATA_DIR) + a relation label of `target-tokens`
tokens, no padding, so every row has exactly the asked shape. A training step is forward + backward + AdamW
(lr 1e-4) with the top 8 of 18 blocks and the final norm trainable (`freeze_lower_layers`; the tied
262,144 x 640 embedding / LM head stays frozen); its time is the mean after one warm-up step. "target
logits": the decoder's hidden states (`model.model`) and the LM head on the target positions only
(`atlantis.models.forward.nll_from_last_hidden`; exact for Gemma 3, whose final_logit_softcapping is None);
"full logits": `model(...).logits` at every position, then the same NLL. Both give the same loss (checked).
The load average (`os.getloadavg`, as `uptime` shows it) is recorded before and after: another process on
these 2 cores slows every number here.

Results: benchmarks/results/cpu.json, key gemma_step (gemma_step_threads<N> with --threads N).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import RESULTS, machine, merge_results, parse_sized, peak_rss_mb, reset_peak_rss

GGUF = "gemma-3-270m-q4_k_m.gguf"
PLAIN_SENTENCE = "The committee published its annual report on Tuesday, and the findings surprised many economists."
PROMPT = "The capital of France is"


def gemma_dir(models_dir: str | None) -> Path:
    root = Path(models_dir or os.environ.get("ATLANTIS_FETCHED_MODELS_DIR", "models"))
    folder = root / "gemma-3-270m"
    if not ((folder / GGUF).is_file() and (folder / "tokenizer" / "tokenizer.json").is_file()):
        raise SystemExit(f"Gemma-3-270M not found in {root}: run `make models`")
    return folder


def since(start: float) -> float:
    return time.perf_counter() - start


def load(folder: Path, cache_dir: str, gguf_tokenizer: bool) -> tuple[object, object, dict]:
    from transformers import AutoTokenizer

    from atlantis.models.loading import _plain_copy_dir, load_pretrained, load_tokenizer

    times = {}
    start = time.perf_counter()
    tokenizer = load_tokenizer(str(folder / "tokenizer"))
    times["tokenizer_folder_s"] = since(start)
    if gguf_tokenizer:
        start = time.perf_counter()
        AutoTokenizer.from_pretrained(str(folder), gguf_file=GGUF)
        times["tokenizer_from_gguf_s"] = since(start)
    cached = (_plain_copy_dir(str(folder), GGUF, cache_dir) / "model.safetensors").is_file()
    start = time.perf_counter()
    model = load_pretrained("causal", str(folder), GGUF, cache_dir)
    times["model_cached_s" if cached else "model_first_s"] = since(start)
    if not cached:  # the framework's later loads: the plain copy it just saved
        del model
        start = time.perf_counter()
        model = load_pretrained("causal", str(folder), GGUF, cache_dir)
        times["model_cached_s"] = since(start)
    return model, tokenizer, times


@torch.no_grad()
def sanity(model, tokenizer) -> dict:
    """Greedy continuation of PROMPT and the mean NLL per token of PLAIN_SENTENCE, with and without <bos>."""
    model.eval()
    out = {}
    for bos in (True, False):
        ids = tokenizer(PROMPT, add_special_tokens=bos, return_tensors="pt").input_ids
        generated = model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        continuation = tokenizer.decode(generated[0, ids.shape[1] :])
        next_logp = torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)
        top = next_logp.topk(5)
        next_tokens = {tokenizer.decode([int(i)]): round(float(v.exp()), 4) for v, i in zip(top.values, top.indices)}
        ids = tokenizer(PLAIN_SENTENCE, add_special_tokens=bos, return_tensors="pt").input_ids
        labels = ids.clone()
        if not bos:  # the first token has nothing to be predicted from: score the same tokens both ways
            labels[:, 0] = -100
        loss = model(input_ids=ids, labels=labels).loss.item()
        key = "with_bos" if bos else "without_bos"
        out[key] = {
            "continuation": continuation,
            "next_token_top5": next_tokens,
            "sentence_nll": loss,
            "sentence_ppl": float(torch.tensor(loss).exp()),
        }
    return out


def batches(tokenizer, n_rows: int, prompt_tokens: int, target_tokens: int) -> tuple[list[dict], str]:
    """Rows of exactly <bos> + prompt + target: each row's prompt is the end of the framework's SemEval prompts
    up to and including one example's (so it ends in "Relation:"), its target that example's label when the
    label has `target_tokens` tokens, else one that has."""
    from atlantis.data.datamodule import RelationDataModule
    from atlantis.data.semeval import SemEvalReader
    from atlantis.data.splits import build_splits
    from atlantis.data.synthetic import SyntheticReader

    data_dir = os.environ.get("ATLANTIS_DATA_DIR")
    if data_dir and (Path(data_dir) / "semeval2010_task8").is_dir():
        splits, data = SemEvalReader(directed=False).load(0), "SemEval-2010 Task 8 prompts"
    else:
        splits, data = build_splits(SyntheticReader([4 * n_rows, 10, 10]), seed=0), "built-in examples"
    splits.train = splits.train[: 4 * n_rows]
    dm = RelationDataModule(splits, tokenizer, "causal", batch_size=8, eval_batch_size=8)
    dm.setup()
    features = dm.features["train"]
    labels = [[t for t in f["labels"] if t != -100][:-1] for f in features]  # the label's tokens, EOS dropped
    fitting = [ids for ids in labels if len(ids) == target_tokens] or [(labels[0] * target_tokens)[:target_tokens]]
    body, context, rows = prompt_tokens - 1, [], []
    for f, label in zip(features, labels):
        context = (context + f["prompt_ids"])[-body:]
        if len(context) < body:
            continue
        target = label if len(label) == target_tokens else fitting[len(rows) % len(fitting)]
        prompt = [tokenizer.bos_token_id] + context
        rows.append({"input_ids": prompt + target, "labels": [-100] * len(prompt) + target})
        if len(rows) == n_rows:
            break
    return rows, data


def collate(rows: list[dict]) -> dict:
    ids = torch.tensor([r["input_ids"] for r in rows])
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": torch.tensor([r["labels"] for r in rows]),
    }


def target_logits_nll(model, batch) -> torch.Tensor:
    from atlantis.models.forward import nll_from_last_hidden

    hidden = model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
    nll, mask = nll_from_last_hidden(model, hidden.last_hidden_state, batch["labels"])
    return nll.sum() / mask.sum()


def full_logits_nll(model, batch) -> torch.Tensor:
    from atlantis.models.loss import IGNORE_INDEX, shift_for_causal, token_nll

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    logits, targets = shift_for_causal(logits, batch["labels"])
    mask = targets != IGNORE_INDEX
    return token_nll(logits, targets)[mask].mean()


PATHS = {"target logits": target_logits_nll, "full logits": full_logits_nll}


def train_steps(model, batch, loss_fn, steps: int) -> dict:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    reset_peak_rss()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = loss_fn(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(since(start))
    timed = times[1:] or times
    return {"step_s": sum(timed) / len(timed), "steps_s": times, "peak_rss_mb": peak_rss_mb()}


@torch.no_grad()
def score(model, rows: list[dict], batch_size: int, loss_fn) -> dict:
    model.eval()
    reset_peak_rss()
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        for i in range(0, len(rows), batch_size):
            loss_fn(model, collate(rows[i : i + batch_size]))
        best = min(best, since(start))
    return {"pass_s": best, "peak_rss_mb": peak_rss_mb()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models-dir", help="default: $ATLANTIS_FETCHED_MODELS_DIR, else models/")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=100)
    parser.add_argument("--target-tokens", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="training steps per path (the first one untimed)")
    parser.add_argument("--top", type=int, default=8, help="trainable top blocks")
    parser.add_argument("--score-n", type=int, default=32)
    parser.add_argument("--score-batch-size", type=int, default=32)
    parser.add_argument("--fresh", action="store_true", help="time the first load too (a new, temporary cache)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own, the cores)")
    parser.add_argument("--skip-gguf-tokenizer", action="store_true", help="do not time the GGUF tokenizer (~35 s)")
    args = parse_sized(parser, argv, batch_size=2, steps=2, score_n=4, score_batch_size=2, skip_gguf_tokenizer=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    from atlantis.methods.params import freeze_lower_layers

    folder = gemma_dir(args.models_dir)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="gemma-cache-") as fresh:
        cache = fresh if args.fresh else os.environ.get("ATLANTIS_CACHE_DIR", ".cache/atlantis")
        model, tokenizer, load_times = load(folder, cache, not args.skip_gguf_tokenizer)
    print(f"loaded: {load_times}", flush=True)
    look = sanity(model, tokenizer)
    for key, value in look.items():
        print(
            f"{key}: {PROMPT!r} -> {value['continuation']!r} (next token: {value['next_token_top5']}); "
            f"sentence NLL {value['sentence_nll']:.3f}",
            flush=True,
        )

    rows, data = batches(tokenizer, max(args.batch_size, args.score_n), args.prompt_tokens, args.target_tokens)
    batch = collate(rows[: args.batch_size])
    model.eval()
    with torch.no_grad():
        losses = {name: fn(model, batch).item() for name, fn in PATHS.items()}
    n_blocks = freeze_lower_layers(model, args.top)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    train = {}
    for name, fn in PATHS.items():
        train[name] = train_steps(model, batch, fn, args.steps)
        print(f"train, {name}: {train[name]['step_s']:.2f} s per step ({train[name]['steps_s']})", flush=True)
    scoring = {name: score(model, rows[: args.score_n], args.score_batch_size, fn) for name, fn in PATHS.items()}
    result = {
        "what": "Gemma-3-270M (GGUF Q4_K_M, dequantised to fp32), CPU: load, one top-k training step, one scoring pass",
        "data": data,
        "shape": {"batch": args.batch_size, "prompt_tokens": args.prompt_tokens, "target_tokens": args.target_tokens},
        "blocks": n_blocks,
        "top_blocks_trained": args.top,
        "trainable": trainable,
        "params": sum(p.numel() for p in model.parameters()),
        "load": load_times,
        "loss_at_start": losses,
        "train": train,
        "score": {"n": args.score_n, "batch_size": args.score_batch_size, **scoring},
        "sanity": look,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "machine": machine(),
    }
    key = f"gemma_step_threads{args.threads}" if args.threads else "gemma_step"
    merge_results(RESULTS / "cpu.json", key, result)
    t, s = train, scoring
    print(f"\nGemma-3-270M, {data}; batch {args.batch_size} x ({args.prompt_tokens} + {args.target_tokens}) tokens; "
          f"top {args.top} of {n_blocks} blocks trained ({trainable:,} parameters); load average "
          f"{load_before[0]:.2f} before, {result['loadavg_after'][0]:.2f} after")  # fmt: skip
    print("| | target logits | full logits | full / target |")
    print("|---|---:|---:|---:|")
    for label, a, b in (
        ("training step, s", t["target logits"]["step_s"], t["full logits"]["step_s"]),
        ("training peak RSS, MB", t["target logits"]["peak_rss_mb"], t["full logits"]["peak_rss_mb"]),
        (f"scoring {args.score_n} prompts, s", s["target logits"]["pass_s"], s["full logits"]["pass_s"]),
        ("scoring peak RSS, MB", s["target logits"]["peak_rss_mb"], s["full logits"]["peak_rss_mb"]),
        ("target NLL before training", losses["target logits"], losses["full logits"]),
    ):
        print(f"| {label} | {a:.3f} | {b:.3f} | {b / a:.2f} |")
    return result


if __name__ == "__main__":
    main()
