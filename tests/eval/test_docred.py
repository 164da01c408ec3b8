"""DocRED F1 and Ign F1 on a hand-made two-document case."""

import pytest

from atlantis.eval.docred import docred_scores, train_name_facts


def mention(name):
    return {"name": name, "type": "PER", "sent_id": 0, "pos": [0, 1]}


TRAIN = [
    {
        "title": "T",
        "vertexSet": [[mention("Ada Lovelace")], [mention("London")], [mention("England")]],
        "labels": [{"h": 0, "t": 1, "r": "P19"}, {"h": 1, "t": 2, "r": "P17"}],
    }
]
TEST = [
    {  # entity 0 has an alias mention "Lovelace"; its fact (Lovelace, London, P19) is not in train by that name
        "title": "A",
        "vertexSet": [[mention("Ada"), mention("Ada Lovelace")], [mention("London")], [mention("Paris")]],
        "labels": [{"h": 0, "t": 1, "r": "P19"}, {"h": 2, "t": 1, "r": "P17"}],
    },
    {
        "title": "B",
        "vertexSet": [[mention("London")], [mention("England")], [mention("Bob")]],
        "labels": [{"h": 0, "t": 1, "r": "P17"}, {"h": 2, "t": 0, "r": "P551"}],
    },
]


def test_hand_computed_f1_and_ign_f1():
    facts = train_name_facts(TRAIN)
    predicted = [
        ("A", 0, 1, "P19"),  # correct; alias "Ada Lovelace" -> "London" P19 is a training fact: ignored
        ("A", 0, 1, "P19"),  # duplicate: counts once
        ("A", 2, 1, "P17"),  # correct, new
        ("B", 0, 1, "P17"),  # correct; London -> England P17 is in train: ignored
        ("B", 1, 0, "P17"),  # wrong (direction); England -> London is not a train fact anyway
        ("B", 0, 1, "P19"),  # wrong relation
        ("Z", 0, 1, "P17"),  # unknown title: wrong
    ]
    scores = docred_scores(predicted, TEST, facts)
    # 6 distinct predictions, 3 correct, 4 gold; 2 correct ones are in train
    assert scores["precision"] == pytest.approx(3 / 6) and scores["recall"] == pytest.approx(3 / 4)
    assert scores["f1"] == pytest.approx(2 * 0.5 * 0.75 / 1.25)
    p_ign = (3 - 2) / (6 - 2 + 1e-5)
    assert scores["precision_ign"] == pytest.approx(p_ign)
    assert scores["f1_ign"] == pytest.approx(2 * p_ign * 0.75 / (p_ign + 0.75))
    assert scores["n_correct_in_train"] == 2


def test_a_wrong_prediction_matching_a_train_fact_is_not_ignored():
    facts = train_name_facts(TRAIN)
    # B: "London" -> "England" P17 is a train fact; predicting it for the wrong pair (Bob, England) stays wrong
    wrong = docred_scores([("B", 2, 1, "P17")], TEST, facts)
    assert wrong["n_correct"] == 0 and wrong["precision_ign"] == 0.0 and wrong["n_correct_in_train"] == 0
    # Recall does not change with Ign: same predictions, with and without training facts
    with_ign = docred_scores([("A", 0, 1, "P19"), ("B", 0, 1, "P17")], TEST, facts)
    without = docred_scores([("A", 0, 1, "P19"), ("B", 0, 1, "P17")], TEST, set())
    assert with_ign["recall"] == without["recall"] == 0.5 and without["f1_ign"] == pytest.approx(without["f1"], 1e-4)


def test_no_predictions_score_zero_and_say_so():
    scores = docred_scores([], TEST, set())
    assert scores["empty"] and scores["f1"] == 0.0 == scores["f1_ign"]
