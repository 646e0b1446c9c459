"""Augmentations: batched tensor operations that keep the batch's shape and range."""
import torch

from stn_course.augment import random_affine, random_crop_flip


def test_random_crop_flip_shifts_and_mirrors_whole_images():
    generator = torch.Generator().manual_seed(0)
    image = torch.arange(1.0, 17.0).view(1, 1, 4, 4).repeat(64, 1, 1, 1)
    out = random_crop_flip(image, generator, padding=1)
    assert out.shape == image.shape
    # Every output is the image shifted by at most one pixel, mirrored or not:
    # its non-zero pixels keep rows of consecutive values.
    flipped = sum(bool((row[row > 0].diff() < 0).any()) for row in out[:, 0, 1])
    assert 10 < flipped < 54
    centre = out[:, 0, 1:3, 1:3]
    assert (centre > 0).all()


def test_random_affine_keeps_shape_and_range_and_moves_pixels():
    images = torch.rand(8, 3, 32, 32)
    out = random_affine(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, images)
    identity = random_affine(images, torch.Generator().manual_seed(0), degrees=0, scale=(1, 1), shift=0)
    assert torch.allclose(identity, images, atol=1e-5)


def test_augmentations_run_on_the_images_device(meta):
    images = torch.zeros(4, 3, 32, 32, device=meta)
    for augment in (random_crop_flip, random_affine):
        out = augment(images, torch.Generator().manual_seed(0))
        assert out.device == meta and out.shape == images.shape, augment.__name__


def test_brightness_contrast_draws_its_factors_from_the_generator_within_the_strength():
    from stn_course.augment import brightness_contrast

    grey = torch.full((200, 3, 8, 8), 0.5)  # uniform: contrast changes nothing, brightness scales it
    out = brightness_contrast(grey, torch.Generator().manual_seed(0), strength=0.3)
    levels = out[:, 0, 0, 0]
    assert out.shape == grey.shape and torch.allclose(out, levels.view(-1, 1, 1, 1).expand_as(out))
    assert 0.35 <= levels.min() < 0.4 and 0.6 < levels.max() <= 0.65, "factors spread over 1 ± 0.3"
    again = brightness_contrast(grey, torch.Generator().manual_seed(0), strength=0.3)
    assert torch.equal(out, again) and not torch.equal(out, brightness_contrast(grey, torch.Generator().manual_seed(1)))
    images = torch.rand(4, 3, 8, 8)
    assert torch.allclose(brightness_contrast(images, torch.Generator().manual_seed(0), strength=0.0), images, atol=1e-6)
    bright = brightness_contrast(images, torch.Generator().manual_seed(0), strength=0.9)
    assert bright.min() >= 0 and bright.max() <= 1, "clipped to [0, 1]"


def test_per_image_standardisation_undoes_brightness_and_contrast_when_nothing_clips():
    from stn_course.augment import brightness_contrast
    from stn_course.traffic_sign_models import ImageStandardize

    images = 0.35 + 0.2 * torch.rand(16, 3, 8, 8)  # at most 0.55 x 1.2 x 1.2 < 1: nothing clips
    out = brightness_contrast(images, torch.Generator().manual_seed(0), strength=0.2)
    assert not torch.allclose(out, images, atol=1e-2)
    standardize = ImageStandardize(eps=0)
    assert torch.allclose(standardize(out), standardize(images), atol=1e-4)


def test_with_brightness_contrast_runs_the_augmentation_first_from_the_same_generator():
    from stn_course.augment import brightness_contrast, with_brightness_contrast

    images = torch.rand(4, 3, 16, 16)
    both = with_brightness_contrast(random_affine, 0.3)(images, torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(both, brightness_contrast(random_affine(images, generator), generator, 0.3))
    alone = with_brightness_contrast(None, 0.3)(images, torch.Generator().manual_seed(0))
    assert torch.equal(alone, brightness_contrast(images, torch.Generator().manual_seed(0), 0.3))


def test_random_affine_draws_its_theta_as_recorded_runs_did():
    """The draws' order is pinned: a recorded run resumed, or repeated, sees the same jitter."""
    from stn_course.augment import random_affine_theta, warp_affine

    theta = random_affine_theta(2, torch.Generator().manual_seed(0))
    assert torch.allclose(theta, torch.tensor([[[1.0896852, 0.0014239, -0.0385154], [-0.0014239, 1.0896852, -0.0019813]],
                                               [[1.0747125, -0.1009172, 0.0268157], [0.1009172, 1.0747125, 0.0792890]]]),
                          atol=1e-6)
    images = torch.rand(2, 3, 8, 8)
    assert torch.equal(random_affine(images, torch.Generator().manual_seed(0)), warp_affine(images, theta))
