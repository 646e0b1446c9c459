"""Mini-batches drawn straight from decoded uint8 tensors, on the device that trains.

The whole dataset (:class:`stn_course.data.ImageTensors`) is moved to the device once;
every batch is then an index into it, so no image is decoded twice and no worker process
is needed. Augmentations (:mod:`stn_course.augment`) are batched tensor operations.

Batches come out as floats in ``[0, 1]``, *not* normalised: the models normalise
after their spatial transformer, so that zero padding while sampling means "black
background", as it does in the raw image (see pytorch/tutorials#1117).
"""
from __future__ import annotations

from typing import Iterator

import torch

from .augment import Augmentation
from .data import ImageTensors


class BatchLoader:
    """Mini-batches drawn from an :class:`ImageTensors` held on ``device``.

    Yields ``(images, labels)``: float32 ``(B, C, H, W)`` in ``[0, 1]`` and int64 ``(B,)``.
    Shuffling and augmentation draw from a generator seeded by ``(seed, epoch)``, so an
    epoch is the same whether or not the run was interrupted before it (call
    :meth:`set_epoch` at the start of each epoch, as the training loop does).

    Args:
        data: the dataset.
        batch_size: samples per batch; the last batch may be smaller.
        shuffle: draw a new permutation every epoch.
        augment: ``augment(images, generator) -> images``, a batched tensor operation on
            floats in ``[0, 1]`` (e.g. :func:`stn_course.augment.random_crop_flip` or a distortion).
        device: where batches live; the whole dataset is moved there once.
        seed: base seed for shuffling and augmentation.
        channels_last: yield images in ``torch.channels_last`` memory format (same shape),
            for a model converted with ``model.to(memory_format=torch.channels_last)``.
    """

    def __init__(self, data: ImageTensors, batch_size: int, shuffle: bool = False,
                 augment: Augmentation | None = None, device: torch.device | str = "cpu",
                 seed: int = 0, channels_last: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.data = data.to(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.device = torch.device(device)
        self.seed = seed
        self.channels_last = channels_last
        self.epoch = 0

    @property
    def num_samples(self) -> int:
        return len(self.data)

    def __len__(self) -> int:
        return -(-self.num_samples // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _generator(self) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        generator.manual_seed(self.seed * 1_000_003 + self.epoch)
        return generator

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = self._generator()
        if self.shuffle:
            order = torch.randperm(self.num_samples, generator=generator, device=self.device)
        else:
            order = torch.arange(self.num_samples, device=self.device)
        for start in range(0, self.num_samples, self.batch_size):
            index = order[start:start + self.batch_size]
            images = self.data.images[index].float().div_(255.0)
            if self.augment is not None:
                images = self.augment(images, generator)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, self.data.labels[index]
