"""mask_labels: hide labels of a fully labeled table, stratified and seeded."""

import numpy as np
import pytest

from selftrain import mask_labels

Y = np.repeat([0, 1, 2], [60, 30, 10])


def test_fraction_keeps_that_share_of_every_class():
    masked = mask_labels(Y, labeled=0.2, random_state=0)
    kept = masked != -1
    assert np.bincount(Y[kept]).tolist() == [12, 6, 2]
    np.testing.assert_array_equal(masked[kept], Y[kept])
    assert masked.shape == Y.shape and Y.min() == 0  # the input is untouched


def test_count_keeps_that_many_per_class():
    masked = mask_labels(Y, labeled=5, random_state=0)
    assert np.bincount(Y[masked != -1]).tolist() == [5, 5, 5]


def test_count_larger_than_a_class_keeps_the_whole_class():
    masked = mask_labels(Y, labeled=20, random_state=0)
    assert np.bincount(Y[masked != -1]).tolist() == [20, 20, 10]


def test_tiny_fraction_still_keeps_one_label_per_class():
    masked = mask_labels(Y, labeled=0.001, random_state=0)
    assert np.bincount(Y[masked != -1]).tolist() == [1, 1, 1]


def test_same_seed_same_mask_other_seed_other_mask():
    first = mask_labels(Y, labeled=0.3, random_state=7)
    np.testing.assert_array_equal(first, mask_labels(Y, labeled=0.3, random_state=7))
    assert not np.array_equal(first, mask_labels(Y, labeled=0.3, random_state=8))


def test_fraction_one_keeps_everything():
    np.testing.assert_array_equal(mask_labels(Y, labeled=1.0, random_state=0), Y)


def test_string_labels_become_object_with_minus_one():
    y = np.array(["a", "b"] * 10)
    masked = mask_labels(y, labeled=0.5, random_state=0)
    assert masked.dtype == object
    assert set(masked.tolist()) == {"a", "b", -1}


def test_custom_unlabeled_value():
    masked = mask_labels(Y.astype(float), labeled=0.5, random_state=0, unlabeled_value=np.nan)
    assert np.isnan(masked).sum() == 50


@pytest.mark.parametrize(
    ("labeled", "message"),
    [(0.0, r"labeled=0.0 is invalid"), (1.5, r"labeled=1.5 is invalid"),
     (-0.2, r"labeled=-0.2 is invalid"), (0, r"labeled=0 is invalid"),
     (-3, r"labeled=-3 is invalid")],
)
def test_bad_labeled_names_the_value(labeled, message):
    with pytest.raises(ValueError, match=message):
        mask_labels(Y, labeled=labeled)


@pytest.mark.parametrize("y", [np.array([]), np.zeros((3, 2))], ids=["empty", "2d"])
def test_bad_y_names_its_shape(y):
    with pytest.raises(ValueError, match=r"y must be a non-empty 1-D array, got shape"):
        mask_labels(y)
