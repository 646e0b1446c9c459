"""The NumPy reference's argument checks (stn_course.array_checks): each names the argument.
(The sampler's and the parameterisation's own tests check them through the public functions.)"""
import numpy as np
import pytest

from stn_course import array_checks


def test_checks_pass_good_arguments_through():
    theta = np.zeros((2, 2, 3))
    assert array_checks.as_float_array(theta, "theta") is theta
    assert array_checks.check_matrices(theta, "theta", rows=2) is theta
    assert array_checks.check_size([2, 1, np.int64(3), 4]) == (2, 1, 3, 4)
    images, grid = array_checks.check_input_and_grid(np.zeros((2, 1, 3, 3)), np.full((2, 4, 4, 2), np.nan))
    assert images.shape == (2, 1, 3, 3) and grid.shape == (2, 4, 4, 2)
    array_checks.check_sampling_options("nearest", "reflection")


@pytest.mark.parametrize("call, error, match", [
    (lambda: array_checks.as_float_array([1, 2], "theta"), TypeError, "theta must be a floating-point"),
    (lambda: array_checks.check_finite(np.array([np.inf]), "angle"), ValueError, "angle contains NaN or inf"),
    (lambda: array_checks.check_shape(np.zeros((2, 3)), "theta", (2, 3), "(N, 2, 3)"), ValueError, r"\(N, 2, 3\)"),
    (lambda: array_checks.check_choice("cubic", "mode", ("bilinear",)), ValueError, "mode must be one of 'bilinear'"),
    (lambda: array_checks.check_size(5), TypeError, "size must be a sequence"),
    (lambda: array_checks.check_size((1, True, 3, 3)), TypeError, "integers"),
    (lambda: array_checks.check_batch(2, 3, "theta"), ValueError, r"size\[0\] \(batch\) is 2 but theta has batch size 3"),
    (lambda: array_checks.check_sampling_options("bilinear", "wrap"), ValueError, "padding_mode"),
])
def test_checks_name_what_is_wrong(call, error, match):
    with pytest.raises(error, match=match):
        call()
