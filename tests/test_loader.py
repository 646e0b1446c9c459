"""The batch loader: floats in [0, 1], every sample once per epoch, epochs repeatable by seed."""
import pytest
import torch

from stn_course.data import ImageTensors
from stn_course.loader import BatchLoader


def _tiny_dataset(count=10):
    images = torch.arange(count, dtype=torch.uint8).view(count, 1, 1, 1).expand(count, 1, 4, 4).contiguous()
    return ImageTensors(images=images, labels=torch.arange(count), classes=tuple("0123456789"),
                        mean=(0.5,), std=(0.5,), name="tiny")


def test_batch_loader_yields_floats_and_covers_every_sample_once():
    loader = BatchLoader(_tiny_dataset(), batch_size=3, shuffle=True, seed=1)
    batches = list(loader)
    assert len(batches) == len(loader) == 4
    images, labels = batches[0]
    assert images.dtype == torch.float32 and images.shape == (3, 1, 4, 4)
    assert images.max() <= 1.0
    seen = torch.cat([labels for _, labels in batches])
    assert sorted(seen.tolist()) == list(range(10))
    # The image really belongs to its label.
    for images, labels in batches:
        assert torch.allclose(images[:, 0, 0, 0] * 255, labels.float())


def test_batch_loader_epochs_repeat_by_seed_and_differ_between_epochs():
    loader = BatchLoader(_tiny_dataset(), batch_size=10, shuffle=True, seed=1)
    loader.set_epoch(1)
    first = next(iter(loader))[1]
    loader.set_epoch(2)
    second = next(iter(loader))[1]
    loader.set_epoch(1)
    again = next(iter(loader))[1]
    assert torch.equal(first, again) and not torch.equal(first, second)


def test_batch_loader_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(_tiny_dataset(), batch_size=0)
