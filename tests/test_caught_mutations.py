"""Tests written for mutations that once left the whole suite green (issue #23, items 14-15)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stn_course import train
from stn_course.data import BatchLoader, ImageTensors
from stn_course.models import SpatialTransformer


def _shifted_transformer(padding_mode: str) -> SpatialTransformer:
    """An affine transformer whose identity bias is replaced by a shift of half the image."""
    localisation = nn.Sequential(nn.Flatten(), nn.Linear(16, 6))
    transformer = SpatialTransformer(localisation, padding_mode=padding_mode, align_corners=False)
    with torch.no_grad():
        localisation[1].bias.copy_(torch.tensor([1.0, 0.0, 0.6, 0.0, 1.0, 0.0]))
    return transformer


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_spatial_transformer_samples_with_its_own_padding_mode(padding_mode):
    images = torch.rand(2, 1, 4, 4) + 0.5  # no zero pixels: zeros padding is visible
    theta = torch.tensor([[1.0, 0.0, 0.6], [0.0, 1.0, 0.0]]).expand(2, 2, 3)
    grid = F.affine_grid(theta, [2, 1, 4, 4], align_corners=False)
    expected = F.grid_sample(images, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    output = _shifted_transformer(padding_mode)(images)
    torch.testing.assert_close(output, expected)
    others = {"zeros", "border", "reflection"} - {padding_mode}
    for other in others:  # the modes really differ on this input, so the test can tell them apart
        assert not torch.allclose(expected, F.grid_sample(images, grid, padding_mode=other, align_corners=False))


class _RecordingLoader(BatchLoader):
    """A BatchLoader that remembers the order of labels it yielded in each epoch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.orders: list[tuple[int, list[int]]] = []

    def __iter__(self):
        seen = []
        for images, labels in super().__iter__():
            seen.extend(labels.tolist())
            yield images, labels
        self.orders.append((self.epoch, seen))


def test_every_epoch_draws_a_new_shuffle():
    count = 64
    data = ImageTensors(images=torch.zeros(count, 1, 4, 4, dtype=torch.uint8), labels=torch.arange(count) % 10,
                        classes=tuple(str(i) for i in range(10)), mean=(0.5,), std=(0.5,), name="toy")
    train_loader = _RecordingLoader(data, 16, shuffle=True, seed=0)
    test_loader = BatchLoader(data, 64)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    train.fit(model, optimizer, train_loader, test_loader, epochs=3, progress=False, log_interval=1000)
    epochs = [epoch for epoch, _ in train_loader.orders]
    assert epochs == [1, 2, 3], f"the training loop must call set_epoch(epoch): saw epochs {epochs}"
    orders = [order for _, order in train_loader.orders]
    assert orders[0] != orders[1] != orders[2]
