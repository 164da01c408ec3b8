from collections import Counter

import pytest

from atlantis.data.examples import DatasetFormatError
from atlantis.data.semeval import (
    COLLAPSED_LABELS,
    DIRECTED_LABELS,
    SemEvalReader,
    parse_release_file,
    read_distribution_file,
)
from atlantis.data.splits import build_splits
from atlantis.data.synthetic import SyntheticReader

GOOD_RECORD = '1\t"The <e1>child</e1> was wrapped into the <e2>cradle</e2>."\r\nOther\r\nComment:\r\n\r\n'


def write(tmp_path, text, name="TRAIN_FILE.TXT"):
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def test_real_files_counts_match_the_release(semeval_dir):
    train = parse_release_file(semeval_dir / "TRAIN_FILE.TXT")
    test = parse_release_file(semeval_dir / "TEST_FILE_FULL.TXT")
    assert (len(train), len(test)) == (8000, 2717)
    assert set(e.label for e in train) == set(DIRECTED_LABELS)
    collapsed = Counter(e.label for e in parse_release_file(semeval_dir / "TRAIN_FILE.TXT", directed=False))
    assert dict(collapsed) == read_distribution_file(semeval_dir / "TRAIN_DISTRIB.TXT")
    assert sum(collapsed.values()) == 8000 and set(collapsed) == set(COLLAPSED_LABELS)
    # The derived directed key agrees with the labels parsed from TEST_FILE_FULL.TXT.
    key = dict(line.split("\t") for line in (semeval_dir / "TEST_FILE_KEY_DIRECTED.TXT").read_text().splitlines())
    assert all(key[e.id] == e.label for e in test)
    first = train[0]
    assert (first.head, first.tail, first.label) == ("configuration", "elements", "Component-Whole(e2,e1)")


def test_validation_split_is_seeded_and_disjoint(semeval_dir):
    a = SemEvalReader(data_dir=str(semeval_dir), val_size=500).load(seed=1)
    b = SemEvalReader(data_dir=str(semeval_dir), val_size=500).load(seed=1)
    c = SemEvalReader(data_dir=str(semeval_dir), val_size=500).load(seed=2)
    assert [e.id for e in a.validation] == [e.id for e in b.validation]
    assert [e.id for e in a.validation] != [e.id for e in c.validation]
    assert len(a.train) == 7500 and len(a.validation) == 500
    assert not {e.id for e in a.train} & {e.id for e in a.validation}


def test_crlf_and_lf_parse_alike(tmp_path):
    crlf = parse_release_file(write(tmp_path, GOOD_RECORD))
    lf = parse_release_file(write(tmp_path, GOOD_RECORD.replace("\r\n", "\n"), "lf.txt"))
    assert crlf == lf and crlf[0].head == "child"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('1 "no tab"\nOther\nComment:\n\n', r"TRAIN_FILE.TXT:1: expected `<id>\\t"),
        ('1\t"The child was there."\nOther\nComment:\n\n', "TRAIN_FILE.TXT:1 \\(id 1\\): expected exactly one <e1>"),
        ('1\t"<e1>a</e1> <e1>b</e1> <e2>c</e2>"\nOther\nComment:\n\n', "found 2"),
        (
            '1\t"<e1>a</e1> <e2>c</e2>"\nFriend-Of(e1,e2)\nComment:\n\n',
            "TRAIN_FILE.TXT:2 \\(id 1\\): unknown label 'Friend-Of",
        ),
        ('1\t"<e1>a</e1> <e2>c</e2>"\nOther\nNo comment\n\n', "TRAIN_FILE.TXT:3: expected a `Comment:`"),
        ("\n\n", "the file is empty"),
        (GOOD_RECORD + GOOD_RECORD, "id 1 appears twice"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path, text, expected):
    with pytest.raises(DatasetFormatError, match=expected):
        parse_release_file(write(tmp_path, text))


def test_rate_outside_range_is_rejected():
    with pytest.raises(ValueError, match=r"noise rate must be a number in \[0, 1\)"):
        build_splits(SyntheticReader(), noise_rate=1.0)
