"""Few-shot prompting: which demonstrations a query sees, and how the prompt shows them."""

import pytest

from atlantis.data.demonstrations import Demonstrations, demo_pool
from atlantis.data.examples import RelationExample
from atlantis.data.prompts import PromptBuilder

LABELS = ["Cause-Effect", "Other", "Member-Collection"]


def example(i, label, text=None, clean=None):
    return RelationExample(
        f"t{i}", text or f"<e1>a{i}</e1> and <e2>b{i}</e2>", f"a{i}", f"b{i}", label, clean or label
    )


POOL = [example(i, LABELS[i % 3]) for i in range(12)]


def test_stratified_is_one_per_class_seeded_and_never_the_query_itself():
    demos = Demonstrations(POOL, LABELS, shots=1, seed=0)
    shown = demos(example(99, "Other"))
    assert sorted(d.label for d in shown) == sorted(LABELS)
    assert [d.id for d in shown] == [d.id for d in Demonstrations(POOL, LABELS, shots=1, seed=0)(example(99, "Other"))]
    for query in shown:  # a demonstration asked about itself gets its class's spare instead
        again = demos(query)
        assert query.id not in [d.id for d in again] and sorted(d.label for d in again) == sorted(LABELS)
    assert len(Demonstrations(POOL, LABELS, shots=2, seed=0)(example(99, "Other"))) == 6


def test_knn_puts_the_most_similar_sentence_last():
    pool = [
        example(1, "Other", "<e1>rain</e1> fell on the <e2>roof</e2> today"),
        example(2, "Cause-Effect", "the <e1>virus</e1> caused a <e2>fever</e2> in the patient"),
        example(3, "Other", "a <e1>cat</e1> sat near the <e2>door</e2>"),
    ]
    query = example(9, "Cause-Effect", "the <e1>bacteria</e1> caused a high <e2>fever</e2> in the patient")
    shown = Demonstrations(pool, LABELS, shots=2, selection="knn")(query)
    assert len(shown) == 2 and shown[-1].id == "t2"


def test_clean_seed_pool_uses_clean_labels():
    noisy_val = [example(1, "Other", clean="Cause-Effect")]
    assert demo_pool([], noisy_val, "clean_seed")[0].label == "Cause-Effect"
    with pytest.raises(ValueError, match="demo_pool"):
        demo_pool([], noisy_val, "everything")


def test_plain_prompt_shows_solved_demonstrations_before_the_question():
    demos = [example(1, "Cause-Effect")]
    builder = PromptBuilder("causal", LABELS, None, "{sentence} ->", demonstrations=lambda q: demos)
    text = builder.prompt(example(2, "Other"))
    assert text == "<e1>a1</e1> and <e2>b1</e2> -> Cause-Effect\n\n<e1>a2</e1> and <e2>b2</e2> ->"


def test_chat_prompt_shows_demonstrations_as_earlier_turns():
    class ChatTokenizer:
        chat_template = "yes"
        unk_token_id = None

        def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
            return "|".join(f"{m['role']}:{m['content']}" for m in messages)

    builder = PromptBuilder(
        "causal", LABELS, ChatTokenizer(), "{sentence}", demonstrations=lambda q: [example(1, "Other")]
    )
    text = builder.prompt(example(2, "Other"))
    assert text == "user:<e1>a1</e1> and <e2>b1</e2>|assistant:Other|user:<e1>a2</e1> and <e2>b2</e2>"
