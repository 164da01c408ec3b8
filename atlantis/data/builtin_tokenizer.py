"""A small byte-level BPE tokenizer trained in memory, so tiny models need no download."""

from __future__ import annotations

from functools import lru_cache

from atlantis.data import conll04, semeval, synthetic
from atlantis.data.prompts import DEFAULT_TEMPLATE

SPECIAL_TOKENS = ["<pad>", "</s>", "<unk>"]


def _corpus() -> list[str]:
    # Repeated so the prompt's fixed words become single tokens.
    lines = [DEFAULT_TEMPLATE] * 50 + list(semeval.DIRECTED_LABELS) * 10 + list(conll04.label_inventory(True)) * 10
    for label, templates in synthetic.TEMPLATES.items():
        heads, tails = synthetic.WORDS[label]
        lines += [t.format(a=a, b=b) for t in templates for a in heads for b in tails]
    lines += ["The quick brown fox jumps over the lazy dog; 0123456789 (e1,e2) (e2,e1)."]
    return lines


@lru_cache(maxsize=1)
def build_builtin_tokenizer(vocab_size: int = 1024):
    """A deterministic byte-level BPE tokenizer (any text encodes) with <pad>, </s> and <unk>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
