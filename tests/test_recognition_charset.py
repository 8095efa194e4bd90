"""Charset codec: round trips, conventions, filtering reasons, TF decoding eager and inside Dataset.map."""

import numpy as np
import pytest
import tensorflow as tf

from tfls.recognition.charset import PRINTABLE_CHARACTERS, Charset, decode_ids_tf


def test_round_trip_and_case_folding():
    cs = Charset(max_length=6)
    ids = cs.encode("Ab9")
    np.testing.assert_array_equal(ids, [11, 12, 10, 0, 0, 0, 0])
    assert cs.decode(ids) == "ab9"
    for word in ["", "a", "zz", "0123a9"]:
        assert cs.decode(cs.encode(word)) == word


def test_case_sensitive_94():
    cs = Charset(PRINTABLE_CHARACTERS, max_length=25, case_sensitive=True)
    assert cs.num_characters == 94 and cs.num_classes == 95 and cs.go_token == 95
    assert cs.decode(cs.encode("Hello,World!")) == "Hello,World!"


def test_ctc_decode_merges_repeats_and_blanks():
    cs = Charset(max_length=5)
    a, b = cs.encode("a")[0], cs.encode("b")[0]
    assert cs.decode_ctc([0, a, a, 0, a, b, b, 0]) == "aab"


def test_invalid_labels_are_named():
    cs = Charset(max_length=3)
    assert cs.invalid_reason("abcd") == "label longer than 3 characters"
    assert "'#'" in cs.invalid_reason("a#")
    with pytest.raises(ValueError, match="abcd"):
        cs.encode("abcd")
    with pytest.raises(ValueError, match="upper-case"):
        Charset("aB")


def test_decode_ids_tf_eager_and_in_dataset_map():
    cs = Charset(max_length=4)
    table = cs.lookup_table()
    a, b = cs.encode("a")[0], cs.encode("b")[0]
    ids = tf.constant([[a, b, 0, a, 0], [a, a, 0, a, b]])
    att, _ = decode_ids_tf(ids, table, ctc=False)
    ctc, _ = decode_ids_tf(ids, table, ctc=True)
    assert att.numpy().tolist() == [b"ab", b"aa"]
    assert ctc.numpy().tolist() == [b"aba", b"aab"]
    ds = tf.data.Dataset.from_tensors(ids).map(lambda x: decode_ids_tf(x, table, ctc=True)[0])
    assert next(iter(ds)).numpy().tolist() == [b"aba", b"aab"]
