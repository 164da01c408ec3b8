"""Prompt and target text for seq2seq and decoder-only models."""

from __future__ import annotations

import re
from collections.abc import Sequence

from atlantis.data.examples import RelationExample

_BRACKETS = re.compile(r"<(/?)(e[12])>")


def _cannot_spell(tokenizer, text: str) -> bool:
    unk = tokenizer.unk_token_id
    return unk is not None and unk in tokenizer(text, add_special_tokens=False)["input_ids"]


DEFAULT_TEMPLATE = (
    "Classify the relation between the marked entities.\n"
    "Sentence: {sentence}\n"
    "Head: {head}\nTail: {tail}\n"
    "{options}Relation:"
)


class PromptBuilder:
    """Turns an example into (prompt text, target text) for one model kind.

    Decoder-only models get the tokenizer's chat template when it has one (and `use_chat_template`
    is not False); the target then ends with the tokenizer's EOS, which the tokenisation adds.
    """

    def __init__(
        self,
        kind: str,
        labels: Sequence[str],
        tokenizer=None,
        template: str = DEFAULT_TEMPLATE,
        list_labels: bool = False,
        use_chat_template: bool | None = None,
        entity_markers: str = "auto",
        demonstrations=None,
    ):
        if kind not in ("seq2seq", "causal"):
            raise ValueError(f"model kind must be 'seq2seq' or 'causal', got {kind!r}")
        self.kind = kind
        self.labels = list(labels)
        self.template = template
        self.list_labels = list_labels
        has_template = tokenizer is not None and getattr(tokenizer, "chat_template", None)
        self.tokenizer = tokenizer
        self.chat = bool(has_template) and kind == "causal" and use_chat_template is not False
        if entity_markers not in ("auto", "xml", "brackets"):
            raise ValueError(f"entity_markers must be auto, xml or brackets, got {entity_markers!r}")
        if entity_markers == "auto":
            entity_markers = "brackets" if tokenizer is not None and _cannot_spell(tokenizer, "<") else "xml"
        self.entity_markers = entity_markers
        self.demonstrations = demonstrations  # callable(example) -> examples shown before it, or None

    def sentence(self, example: RelationExample) -> str:
        """The marked sentence, with <e1> markers rewritten as [E1] for tokenizers that lack '<' (T5)."""
        if self.entity_markers == "xml":
            return example.text
        return _BRACKETS.sub(lambda m: f"[{m.group(1).upper()}{m.group(2).upper()}]", example.text)

    def question(self, example: RelationExample, sentence: str | None = None) -> str:
        """One example's prompt text, without demonstrations or chat formatting."""
        options = f"Options: {', '.join(self.labels)}\n" if self.list_labels else ""
        return self.template.format(
            sentence=self.sentence(example) if sentence is None else sentence,
            head=example.head,
            tail=example.tail,
            options=options,
        )

    def prompt(self, example: RelationExample, sentence: str | None = None) -> str:
        """The prompt; `sentence` replaces the example's text (used to truncate it). Demonstrations come first:
        as earlier user/assistant turns with a chat template, else as solved questions separated by a blank line."""
        demos = self.demonstrations(example) if self.demonstrations is not None else []
        text = self.question(example, sentence)
        if self.chat:
            messages = []
            for demo in demos:
                messages += [
                    {"role": "user", "content": self.question(demo)},
                    {"role": "assistant", "content": demo.label},
                ]
            messages.append({"role": "user", "content": text})
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        solved = [self.question(demo) + " " + self.target(demo.label).lstrip() for demo in demos]
        return "\n\n".join([*solved, text])

    def target(self, label: str) -> str:
        # Without a chat template the label follows "Relation:" and needs its own leading space.
        return label if self.kind == "seq2seq" or self.chat else " " + label
