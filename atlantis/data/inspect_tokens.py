"""Show what a model is trained on: each token of a few examples with its role (prompt / target / pad)."""

from __future__ import annotations

from atlantis.data.tokenization import IGNORE_INDEX


def token_roles(batch: dict, tokenizer, kind: str, row: int) -> list[tuple[str, str, str]]:
    """[(part, token, role)] for one batch row; part is 'input' or (seq2seq) 'decoder'."""
    rows = []
    ids, mask, labels = batch["input_ids"][row], batch["attention_mask"][row], batch["labels"][row]
    for position, token_id in enumerate(ids.tolist()):
        if mask[position] == 0:
            role = "pad"
        elif kind == "causal" and labels[position] != IGNORE_INDEX:
            role = "target"
        else:
            role = "prompt"
        rows.append(("input", tokenizer.convert_ids_to_tokens(token_id), role))
    if kind == "seq2seq":
        for token_id in labels.tolist():
            if token_id == IGNORE_INDEX:
                rows.append(("decoder", "-", "pad"))
            else:
                rows.append(("decoder", tokenizer.convert_ids_to_tokens(token_id), "target"))
    return rows


def format_token_roles(rows: list[tuple[str, str, str]], example_id: str) -> str:
    lines = [f"example {example_id}", f"{'pos':>4}  {'part':<8} {'role':<7} token"]
    lines += [f"{i:>4}  {part:<8} {role:<7} {token!r}" for i, (part, token, role) in enumerate(rows)]
    return "\n".join(lines)


def format_segments(rows: list[tuple[str, str, str]], tokenizer, example_id: str) -> str:
    """Runs of consecutive tokens with the same role, as text: one screen per example."""
    lines = [f"== example {example_id} =="]
    run: list[str] = []
    for i, (part, token, role) in enumerate(rows):
        run.append(token)
        last = i + 1 == len(rows) or rows[i + 1][:1] + rows[i + 1][2:] != (part, role)
        if last:
            text = "" if role == "pad" else tokenizer.convert_tokens_to_string(run)
            lines.append(f"[{part}/{role}: {len(run)} tokens] {text!r}")
            run = []
    return "\n".join(lines)


def print_examples(datamodule, split: str = "train", n: int = 2, per_token: bool = False) -> str:
    """Text of the first `n` examples of `split`, token by token with roles."""
    datamodule.setup()
    features = datamodule.features[split][:n]
    batch = datamodule.collator(features)
    out = []
    for row, feature in enumerate(features):
        rows = token_roles(batch, datamodule.tokenizer, datamodule.kind, row)
        if per_token:
            out.append(format_token_roles(rows, feature["id"]))
        else:
            out.append(format_segments(rows, datamodule.tokenizer, feature["id"]))
    return "\n\n".join(out)
