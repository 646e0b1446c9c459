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
