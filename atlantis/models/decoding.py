"""Reading a model's answer: every candidate label's sequence log-prob (prompt encoded once), or greedy ids."""

from __future__ import annotations

import torch

from atlantis.models.loss import IGNORE_INDEX, token_nll


def pad_candidates(candidate_ids: list[list[int]], pad_token_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """[C, T] candidate ids (right-padded) and their label tensor with -100 on padding."""
    width = max(len(c) for c in candidate_ids)
    ids = torch.full((len(candidate_ids), width), pad_token_id, dtype=torch.long, device=device)
    labels = torch.full_like(ids, IGNORE_INDEX)
    for i, c in enumerate(candidate_ids):
        ids[i, : len(c)] = torch.tensor(c, device=device)
        labels[i, : len(c)] = ids[i, : len(c)]
    return ids, labels


def score_candidates(model, kind: str, batch: dict, candidate_ids: list[list[int]], pad_token_id: int) -> torch.Tensor:
    """[B, C] sequence log-probs of every candidate label for a collated batch, seq2seq or decoder-only."""
    if kind == "seq2seq":
        return score_candidates_seq2seq(
            model, batch["input_ids"], batch["attention_mask"], candidate_ids, pad_token_id
        )
    return score_candidates_causal(
        model, batch["prompt_ids"], batch["prompt_attention_mask"], candidate_ids, pad_token_id
    )


@torch.no_grad()
def score_candidates_seq2seq(model, input_ids, attention_mask, candidate_ids, pad_token_id) -> torch.Tensor:
    """[B, C] sequence log-probs of every candidate; each prompt goes through the encoder once."""
    batch, n_cand = input_ids.shape[0], len(candidate_ids)
    cand, cand_labels = pad_candidates(candidate_ids, pad_token_id, input_ids.device)
    encoder_out = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
    hidden = encoder_out.last_hidden_state.repeat_interleave(n_cand, dim=0)
    labels = cand_labels.repeat(batch, 1)
    out = model(
        encoder_outputs=(hidden,),
        attention_mask=attention_mask.repeat_interleave(n_cand, dim=0),
        labels=labels,
        use_cache=False,
    )
    return -token_nll(out.logits, labels).sum(dim=-1).view(batch, n_cand)


@torch.no_grad()
def score_candidates_causal(model, prompt_ids, prompt_mask, candidate_ids, pad_token_id) -> torch.Tensor:
    """[B, C] sequence log-probs of every candidate after a left-padded prompt, encoded once (KV cache)."""
    batch, n_cand = prompt_ids.shape[0], len(candidate_ids)
    cand, cand_labels = pad_candidates(candidate_ids, pad_token_id, prompt_ids.device)
    positions = (prompt_mask.cumsum(dim=1) - 1).clamp(min=0)
    # Only the last prompt position's logits are needed (it predicts each candidate's first token).
    out = model(
        input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=positions, use_cache=True, logits_to_keep=1
    )
    cache = out.past_key_values
    cache.batch_repeat_interleave(n_cand)
    # The last prompt position predicts each candidate's first token.
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1).repeat_interleave(n_cand, dim=0)
    cand_ids = cand.repeat(batch, 1)
    labels = cand_labels.repeat(batch, 1)
    first_logprob = first.gather(1, cand_ids[:, :1]).squeeze(1)
    if cand_ids.shape[1] == 1:
        return first_logprob.view(batch, n_cand)
    mask = torch.cat([prompt_mask.repeat_interleave(n_cand, dim=0), (labels != IGNORE_INDEX).long()], dim=1)
    start = positions[:, -1:].repeat_interleave(n_cand, dim=0) + 1
    cand_positions = start + torch.arange(cand_ids.shape[1], device=cand_ids.device)
    rest = model(
        input_ids=cand_ids[:, :-1],
        attention_mask=mask[:, :-1],
        position_ids=cand_positions[:, :-1],
        past_key_values=cache,
        use_cache=True,
    )
    rest_logprob = -token_nll(rest.logits, labels[:, 1:]).sum(dim=-1)
    return (first_logprob + rest_logprob).view(batch, n_cand)


@torch.no_grad()
def generate_ids(model, kind: str, batch: dict, max_new_tokens: int, pad_token_id: int, eos_token_id: int):
    """Greedy continuation ids (prompt removed) for a batch."""
    if kind == "seq2seq":
        input_ids, mask = batch["input_ids"], batch["attention_mask"]
    else:
        input_ids, mask = batch["prompt_ids"], batch["prompt_attention_mask"]
    out = model.generate(
        input_ids=input_ids,
        attention_mask=mask,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=pad_token_id,
        eos_token_id=eos_token_id,
    )
    return out if kind == "seq2seq" else out[:, input_ids.shape[1] :]
