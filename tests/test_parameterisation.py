"""θ from readable parameters and back (stn_course.parameterisation)."""
import numpy as np
import pytest

from stn_course.parameterisation import params_from_theta, theta_from_params


def test_theta_from_params_known_cases():
    np.testing.assert_array_equal(theta_from_params(angle=90), [[0, -1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(theta_from_params(angle=-90), [[0, 1, 0], [-1, 0, 0]])
    np.testing.assert_array_equal(theta_from_params(angle=180), [[-1, 0, 0], [0, -1, 0]])
    np.testing.assert_array_equal(theta_from_params(), np.eye(2, 3))
    np.testing.assert_array_equal(theta_from_params(scale=(0.5, 2.0), translation=(0.25, -1.0)),
                                  [[0.5, 0, 0.25], [0, 2.0, -1.0]])
    np.testing.assert_array_equal(theta_from_params(scale=3.0), [[3, 0, 0], [0, 3, 0]])
    np.testing.assert_array_equal(theta_from_params(shear=0.5, scale=(1, 2)), [[1, 1, 0], [0, 2, 0]])
    c, s = np.cos(np.deg2rad(30)), np.sin(np.deg2rad(30))
    np.testing.assert_allclose(theta_from_params(angle=30, scale=(2, 3), shear=0.5),
                               [[2 * c, (0.5 * c - s) * 3, 0], [2 * s, (0.5 * s + c) * 3, 0]], atol=1e-15)
    assert theta_from_params(angle=90).dtype == np.float64


def test_params_round_trip():
    rng = np.random.default_rng(9)
    for _ in range(50):
        params = {
            "angle": float(rng.uniform(-179.9, 180)),
            "scale": (float(rng.uniform(0.1, 3)), float(rng.uniform(-3, 3))),
            "shear": float(rng.uniform(-2, 2)),
            "translation": (float(rng.uniform(-2, 2)), float(rng.uniform(-2, 2))),
        }
        back = params_from_theta(theta_from_params(**params))
        assert back.keys() == params.keys()
        assert isinstance(back["scale"], tuple) and isinstance(back["translation"], tuple)
        for key in params:
            np.testing.assert_allclose(back[key], params[key], rtol=1e-10, atol=1e-10)
    # θ -> params -> θ for any θ, reflections (negative determinant) included.
    thetas = rng.standard_normal((20, 2, 3))
    np.testing.assert_allclose(theta_from_params(**params_from_theta(thetas)), thetas, atol=1e-12)


def test_params_batch():
    angle = np.array([0.0, 90.0, -45.0])
    theta = theta_from_params(angle=angle, scale=(np.array([1.0, 2.0, 0.5]), 1.5), translation=(0.1, angle / 100))
    assert theta.shape == (3, 2, 3)
    for k in range(3):
        single = theta_from_params(angle=angle[k], scale=([1.0, 2.0, 0.5][k], 1.5), translation=(0.1, angle[k] / 100))
        np.testing.assert_array_equal(theta[k], single)
    params = params_from_theta(theta)
    np.testing.assert_allclose(params["angle"], angle, atol=1e-12)
    np.testing.assert_allclose(params["scale"][0], [1.0, 2.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(params["translation"][1], angle / 100, atol=1e-15)


def test_params_of_singular_theta_are_finite():
    params = params_from_theta(np.zeros((2, 3)))
    assert params == {"angle": 0.0, "scale": (0.0, 0.0), "shear": 0.0, "translation": (0.0, 0.0)}
    params = params_from_theta(theta_from_params(angle=30, scale=(2, 0), shear=0.7))
    assert params["shear"] == 0.0 and params["angle"] == pytest.approx(30)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: params_from_theta(np.ones((3, 3))), ValueError, "theta"),
        (lambda: params_from_theta(np.ones((2, 3), int)), TypeError, "theta"),
        (lambda: params_from_theta(np.full((2, 3), np.nan)), ValueError, "theta"),
        (lambda: theta_from_params(angle=np.nan), ValueError, "angle"),
        (lambda: theta_from_params(scale=(1, 2, 3)), ValueError, "scale"),
        (lambda: theta_from_params(translation=(0.0, np.inf)), ValueError, "translation"),
    ],
)
def test_validation_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_zoom_from_theta_is_two_for_a_zoom_in_by_two():
    from stn_course.parameterisation import zoom_from_theta

    assert zoom_from_theta(theta_from_params(scale=0.5)) == 2.0  # zoom in x2: the central half, twice as large
    assert zoom_from_theta(theta_from_params(scale=2.0)) == 0.5
    assert zoom_from_theta(np.eye(2, 3)) == 1.0
    # rotation, shear and translation keep the size; a batch gives an array
    batch = theta_from_params(angle=[30.0, -90.0], shear=[0.5, 0.0], translation=(0.3, -0.2), scale=0.25)
    np.testing.assert_allclose(zoom_from_theta(batch), [4.0, 4.0])
    assert zoom_from_theta(np.zeros((2, 3))) == np.inf
    with pytest.raises(ValueError, match="shape"):
        zoom_from_theta(np.zeros((3, 3)))
