
import pytest
import torch

from stn_course import distortions
from stn_course.distortions import DISTORTIONS, distorted_mnist_test, distortion

from .markers import requires_mnist


def _digits(count=8):
    """Bright off-centre blobs: their moments show where and how big they end up."""
    images = torch.zeros(count, 1, 28, 28)
    images[:, :, 8:20, 10:16] = 1.0
    return images


@pytest.mark.parametrize("kind", sorted(DISTORTIONS))
def test_shape_range_and_determinism(kind):
    generate, side, _ = DISTORTIONS[kind]
    images = _digits()
    first = generate(images, torch.Generator().manual_seed(3))
    again = generate(images, torch.Generator().manual_seed(3))
    other = generate(images, torch.Generator().manual_seed(4))
    assert first.shape == (8, 1, side, side)
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert (first.flatten(1).sum(1) > 0).all(), "the digit never disappears"


def test_rotation_by_90_degrees_turns_the_image():
    images = _digits(1)
    rotated = distortions.place_affine(images, torch.tensor([90.0]), torch.ones(1), torch.zeros(1, 2), 28)
    assert torch.allclose(rotated, torch.rot90(images, k=1, dims=(2, 3)), atol=1e-5) or \
        torch.allclose(rotated, torch.rot90(images, k=-1, dims=(2, 3)), atol=1e-5)


def test_rts_scale_and_shift_move_the_mass_as_asked():
    images = torch.zeros(1, 1, 28, 28)
    images[:, :, 12:16, 12:16] = 1.0  # centred square, 16 pixels of mass
    out = distortions.place_affine(images, torch.zeros(1), torch.tensor([0.5]), torch.tensor([[6.0, -4.0]]), 42)
    mass = out[0, 0]
    assert mass.sum().item() == pytest.approx(16 * 0.25, rel=0.02)
    ys, xs = torch.meshgrid(torch.arange(42.0), torch.arange(42.0), indexing="ij")
    centre = ((xs * mass).sum() / mass.sum(), (ys * mass).sum() / mass.sum())
    assert centre[0].item() == pytest.approx(20.5 + 6, abs=0.05)
    assert centre[1].item() == pytest.approx(20.5 - 4, abs=0.05)


def test_clutter_keeps_the_whole_digit():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(16, 1, 28, 28)
    out = distortions.translated_clutter(images, generator)
    # Somewhere in each canvas the full digit appears (clutter only adds, by maximum).
    windows = out.unfold(2, 28, 1).unfold(3, 28, 1)  # (B, 1, 33, 33, 28, 28)
    found = (windows >= images.view(16, 1, 1, 1, 28, 28) - 1e-6).flatten(4).all(-1).flatten(1).any(1)
    assert found.all()
    assert (out.flatten(1).gt(0).sum(1) > images.flatten(1).gt(0).sum(1)).all(), "clutter was added"


def test_unknown_distortion():
    with pytest.raises(ValueError, match="unknown distortion"):
        distortion("swirl")


@requires_mnist
def test_test_set_is_fixed_by_its_seed():
    first = distorted_mnist_test("rts", seed=0, limit=64)
    again = distorted_mnist_test("rts", seed=0, limit=64)
    assert first.images.shape == (64, 1, 42, 42) and first.images.dtype == torch.uint8
    assert torch.equal(first.images, again.images)
    assert torch.equal(first.labels, again.labels)


@requires_mnist
def test_two_digit_canvas_holds_both_digits_and_its_label_names_them():
    from stn_course.data import load_mnist
    from stn_course.distortions import two_digit_mnist

    pairs = two_digit_mnist(train=False, limit=50)
    digits = load_mnist(train=False, limit=50)
    assert pairs.images.shape == (50, 1, 32, 64) and len(pairs.classes) == 100
    first, second = pairs.labels // 10, pairs.labels % 10
    assert torch.equal(first, digits.labels)
    # The left digit sits whole in the left half, each pixel as in MNIST.
    for i in range(5):
        left = pairs.images[i, 0, :, :32]
        assert left.sum() == digits.images[i].sum()
    assert (pairs.images[:, 0, :, 32:].flatten(1).sum(1) > 0).all() and set(second.tolist()) <= set(range(10))


# --- each distorted set is cached under everything that made it ----------------------------

@requires_mnist
def test_two_digit_mnist_caches_each_jitter_apart(empty_cache):
    from stn_course.distortions import two_digit_mnist

    jittered = two_digit_mnist(False, limit=50)
    plain = two_digit_mnist(False, limit=50, jitter=0)
    assert jittered.image_shape == (1, 32, 64) and plain.image_shape == (1, 28, 56)
    assert two_digit_mnist(False, limit=50, jitter=0).images.equal(plain.images)


@requires_mnist
def test_a_distorted_test_cache_of_another_seed_is_detected(empty_cache):
    from stn_course.cache import CacheWarning
    from stn_course.distortions import distorted_mnist_test

    seed0, seed1 = distorted_mnist_test("rot", seed=0, limit=40), distorted_mnist_test("rot", seed=1, limit=40)
    assert not seed0.images.equal(seed1.images)
    file0, file1 = (next(empty_cache.glob(f"mnist-rot-test-s{seed}-40*.pt")) for seed in (0, 1))
    file0.write_bytes(file1.read_bytes())
    with pytest.warns(CacheWarning, match=f"{file0} holds"):
        assert distorted_mnist_test("rot", seed=0, limit=40).images.equal(seed0.images)


@pytest.mark.parametrize("kind", sorted(DISTORTIONS))
def test_each_distortion_runs_on_the_images_device(meta, kind):
    images = torch.zeros(4, 1, 28, 28, device=meta)
    out = distortion(kind)(images, torch.Generator().manual_seed(0))  # no meta generator: a CPU one
    assert out.device == meta and out.shape[:2] == (4, 1)


def test_place_affine_and_moving_digit_run_on_the_digits_device(meta):
    digit = torch.zeros(1, 1, 28, 28, device=meta)
    placed = distortions.place_affine(digit.expand(3, -1, -1, -1), torch.zeros(3, device=meta),
                                      torch.ones(3, device=meta), torch.zeros(3, 2, device=meta), 42)
    assert placed.device == meta and placed.shape == (3, 1, 42, 42)
    frames, params = distortions.moving_digit(digit, frames=4)
    assert frames.device == meta and frames.shape == (4, 1, 42, 42)
    assert {value.device.type for value in params.values()} == {"cpu"}  # ready to plot


@requires_mnist
def test_a_changed_default_of_a_distortion_is_not_served_from_the_old_cache(empty_cache, monkeypatch):
    import torch

    from stn_course import distortions
    from stn_course.data import load_mnist

    wide = distorted_mnist_test_images("rot")
    monkeypatch.setattr(distortions.random_rotation, "__defaults__", (10.0,))  # max_angle 90 → 10
    narrow = distorted_mnist_test_images("rot")
    digits = load_mnist(train=False, limit=40).images.float() / 255
    expected = distortions.random_rotation(digits, torch.Generator().manual_seed(0), max_angle=10.0)
    assert not narrow.equal(wide)
    assert narrow.equal(expected.mul(255).round().clamp(0, 255).to(torch.uint8))


def distorted_mnist_test_images(kind):
    from stn_course.distortions import distorted_mnist_test

    return distorted_mnist_test(kind, seed=0, limit=40).images


@requires_mnist
def test_distorted_caches_depend_on_the_mnist_files_they_were_made_from(empty_cache, tmp_path, monkeypatch):
    from stn_course.data import MNIST_RAW_FILES
    from stn_course.utils import data_root

    before = distorted_mnist_test_images("rot")
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_RAW_FILES:  # another data root: the test digits in reverse order
        original = (data_root() / "MNIST" / "raw" / name).read_bytes()
        header = 16 if "images" in name else 8
        if name.startswith("t10k"):
            size = 784 if "images" in name else 1
            items = [original[i:i + size] for i in range(header, len(original), size)]
            original = original[:header] + b"".join(reversed(items))
        (raw / name).write_bytes(original)
    monkeypatch.setenv("STN_COURSE_DATA", str(tmp_path / "data"))
    assert not distorted_mnist_test_images("rot").equal(before)
