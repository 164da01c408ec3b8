import pytest

from atlantis.data.datamodule import RelationDataModule
from atlantis.data.examples import RelationExample
from atlantis.data.inspect_tokens import print_examples, token_roles
from atlantis.data.prompts import PromptBuilder
from atlantis.data.splits import build_splits
from atlantis.data.synthetic import SyntheticReader
from atlantis.data.tokenization import IGNORE_INDEX, encode_example
from atlantis.models.loading import load_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("builtin")


def datamodule(tokenizer, kind, **kwargs):
    splits = build_splits(SyntheticReader([20, 10, 10]), seed=0)
    dm = RelationDataModule(splits, tokenizer, kind, batch_size=4, **kwargs)
    dm.setup()
    return dm


def roles_text(rows, tokenizer, role, part="input"):
    return tokenizer.convert_tokens_to_string([t for p, t, r in rows if r == role and p == part])


@pytest.mark.parametrize("kind", ["seq2seq", "causal"])
def test_masking_only_the_target_is_trained(tokenizer, kind):
    dm = datamodule(tokenizer, kind)
    batch = next(iter(dm.train_dataloader()))
    examples = {e.id: e for e in dm.splits.train}
    for row, example_id in enumerate(batch["ids"]):
        rows = token_roles(batch, tokenizer, kind, row)
        label = examples[example_id].label
        part = "decoder" if kind == "seq2seq" else "input"
        assert roles_text(rows, tokenizer, "target", part).strip() == label + tokenizer.eos_token
        prompt = roles_text(rows, tokenizer, "prompt")
        assert examples[example_id].head in prompt and label not in prompt.split("Relation:")[-1]
        # Padding is never a target, and pad positions carry -100 labels.
        labels = batch["labels"][row]
        assert all(
            labels[i] == IGNORE_INDEX
            for i, (p, _, r) in enumerate(rows)
            if r == "pad" and p == "input" and kind == "causal"
        )
    assert batch["weight"].tolist() == [1.0] * len(batch["ids"])
    assert len(batch["ids"]) == batch["input_ids"].shape[0]


def test_printout_shows_roles(tokenizer):
    text = print_examples(datamodule(tokenizer, "causal"), n=1)
    assert "[input/prompt:" in text and "[input/target:" in text
    per_token = print_examples(datamodule(tokenizer, "seq2seq"), n=1, per_token=True)
    assert "decoder  target" in per_token and "input    prompt" in per_token


@pytest.mark.parametrize("kind", ["seq2seq", "causal"])
def test_truncation_cuts_the_sentence_never_the_target(tokenizer, kind):
    long_text = "The <e1>storm</e1> caused the <e2>damage</e2>" + " and the long story goes on" * 40 + "."
    example = RelationExample("x", long_text, "storm", "damage", "Cause-Effect", "Cause-Effect")
    builder = PromptBuilder(kind, ["Cause-Effect", "Other"], tokenizer)
    feature = encode_example(example, tokenizer, builder, max_length=64, max_target_length=16)
    assert feature["truncated"]
    assert len(feature["input_ids"]) <= 64
    target = [t for t in feature["labels"] if t != IGNORE_INDEX]
    assert tokenizer.decode(target).strip() == "Cause-Effect" + tokenizer.eos_token
    assert tokenizer.decode(feature["prompt_ids"]).rstrip("</s>").endswith("Relation:")


def test_examples_without_room_for_the_target_are_dropped_and_counted(tokenizer):
    from atlantis.data.tokenization import encode_examples, target_ids

    builder = PromptBuilder("causal", ["Other", "Content-Container"], tokenizer)
    short = len(target_ids(tokenizer, builder, "Other"))
    assert len(target_ids(tokenizer, builder, "Content-Container")) > short
    examples = [
        RelationExample(str(i), "A <e1>key</e1> in a <e2>box</e2>.", "key", "box", label, label)
        for i, label in enumerate(["Other", "Content-Container", "Other"])
    ]
    encoded = encode_examples(examples, tokenizer, builder, max_length=128, max_target_length=short)
    assert encoded.n_dropped == 1 and encoded.dropped_ids == ["1"]
    assert [f["id"] for f in encoded.features] == ["0", "2"]
    with pytest.raises(ValueError, match="every example was dropped"):
        datamodule(tokenizer, "seq2seq", max_target_length=1)


def test_tokenizer_without_pad_token_is_rejected(tokenizer):
    import copy

    no_pad = copy.deepcopy(tokenizer)
    no_pad.pad_token = None
    with pytest.raises(ValueError, match="has no pad token"):
        datamodule(no_pad, "causal")


@pytest.mark.parametrize("name", ["qwen2.5-tokenizer", "smollm2-135m-instruct-gguf"])
def test_chat_template_masking_real_tokenizer(models_dir, name):
    tok = load_tokenizer(str(models_dir / name))
    dm = datamodule(tok, "causal")
    batch = next(iter(dm.train_dataloader()))
    rows = token_roles(batch, tok, "causal", 0)
    target = roles_text(rows, tok, "target")
    label = {e.id: e for e in dm.splits.train}[batch["ids"][0]].label
    assert target == label + tok.eos_token
    assert roles_text(rows, tok, "prompt").endswith("assistant\n")


def test_t5_tokenizer_gets_bracket_markers(models_dir):
    tok = load_tokenizer(str(models_dir / "t5-tokenizer"))
    dm = datamodule(tok, "seq2seq")
    batch = next(iter(dm.train_dataloader()))
    rows = token_roles(batch, tok, "seq2seq", 0)
    prompt = roles_text(rows, tok, "prompt")
    assert "[E1]" in prompt and "[/E2]" in prompt and tok.unk_token not in prompt


def test_length_grouped_batches_cover_every_example_once_and_pad_less():
    import random

    from atlantis.data.sampling import GlobalBatches

    rng = random.Random(0)
    lengths = [rng.randint(20, 200) for _ in range(1000)]
    sampler = GlobalBatches(1000, batch_size=16, seed=1, lengths=lengths)
    sampler.group = 10
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert list(sampler) == batches  # the order is the epoch's, however often it is read
    sampler.set_epoch(1)
    assert list(sampler) != batches  # another epoch, another order

    def padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    random_batches = [list(range(i, min(i + 16, 1000))) for i in range(0, 1000, 16)]
    assert padding(batches) < 0.2 * padding(random_batches)


def test_a_prompt_starts_as_the_tokenizers_own_encoding_does():
    """Gemma's tokenizer puts <bos> first and its model needs it; Qwen2/SmolLM2/the builtin BPE put nothing."""
    from atlantis.data.builtin_tokenizer import build_builtin_tokenizer
    from atlantis.data.tokenization import leading_ids

    class WithBos:  # the builtin BPE, encoding as a Gemma-style tokenizer does: <bos> first
        def __init__(self, inner):
            self.inner, self.bos_token_id = inner, inner.convert_tokens_to_ids("<unk>")

        def __call__(self, text, add_special_tokens=True):
            ids = self.inner(text, add_special_tokens=False)["input_ids"]
            return {"input_ids": ([self.bos_token_id] if add_special_tokens else []) + ids}

    plain = build_builtin_tokenizer()
    with_bos = WithBos(plain)
    assert list(leading_ids(plain)) == [] and list(leading_ids(with_bos)) == [with_bos.bos_token_id]
