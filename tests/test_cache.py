"""Caches carry their key: a cache file of other data, or a damaged one, is named and rebuilt."""
import warnings

import pytest


@pytest.fixture
def fake_cifar10(monkeypatch):
    """torchvision's CIFAR10 replaced by 7 images of 1s (train) or 2s (test)."""
    import numpy as np
    import torchvision

    class FakeCIFAR10:
        def __init__(self, root, train, download):
            self.data = np.full((7, 32, 32, 3), 1 if train else 2, dtype=np.uint8)
            self.targets = list(range(7))

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)


def test_a_cifar_training_cache_copied_over_the_test_cache_is_detected_and_rebuilt(empty_cache, tmp_path, fake_cifar10):
    from stn_course.cache import CacheWarning
    from stn_course.data import load_cifar10

    with warnings.catch_warnings():  # normal operation: building and reading caches warns nothing
        warnings.simplefilter("error")
        assert load_cifar10(train=True, root=tmp_path).images.unique().tolist() == [1]
        assert load_cifar10(train=False, root=tmp_path).images.unique().tolist() == [2]
        assert load_cifar10(train=False, root=tmp_path).images.unique().tolist() == [2]
    train_file, test_file = (next(empty_cache.glob(f"cifar10-*-{split}-all*.pt")) for split in ("train", "test"))
    test_file.write_bytes(train_file.read_bytes())
    with pytest.warns(CacheWarning, match=rf"{test_file} holds .*'split': 'train'.*rebuilding it"):
        assert load_cifar10(train=False, root=tmp_path).images.unique().tolist() == [2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_cifar10(train=False, root=tmp_path).images.unique().tolist() == [2]  # rebuilt for good


@pytest.mark.parametrize("damage", ["truncated", "empty", "random", "bare tensor"])
def test_a_corrupt_cache_file_is_named_and_rebuilt(empty_cache, tmp_path, fake_cifar10, damage):
    import torch

    from stn_course.cache import CacheWarning
    from stn_course.data import load_cifar10

    load_cifar10(train=False, root=tmp_path, limit=5)
    path = next(empty_cache.glob("cifar10-*.pt"))
    if damage == "bare tensor":  # what the old distorted-test cache held: no key
        torch.save(torch.zeros(5, 3, 32, 32, dtype=torch.uint8), path)
    else:
        path.write_bytes({"truncated": path.read_bytes()[:150], "empty": b"", "random": bytes(range(256)) * 9}[damage])
    with pytest.warns(CacheWarning, match=f"{path} .*rebuilding it"):
        assert load_cifar10(train=False, root=tmp_path, limit=5).images.unique().tolist() == [2]


def test_files_identity_changes_with_any_file_or_folder(tmp_path):
    import os

    from stn_course.cache import files_identity

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"12345")
    first = files_identity(tmp_path)
    assert files_identity(tmp_path) == first
    (tmp_path / "b").mkdir()  # an empty folder counts
    second = files_identity(tmp_path)
    (tmp_path / "a" / "x.png").write_bytes(b"54321")  # same size, another time
    os.utime(tmp_path / "a" / "x.png", ns=(1, 1))
    third = files_identity(tmp_path)
    assert len({first, second, third}) == 3
    assert files_identity(tmp_path / "a") != files_identity(tmp_path / "b")  # another root
    assert files_identity(tmp_path / "missing") != files_identity(tmp_path / "b")


def test_code_version_changes_with_the_code_and_its_defaults(monkeypatch):
    from stn_course import distortions
    from stn_course.cache import code_version

    rotation = code_version(distortions.random_rotation)
    assert code_version(distortions.random_rotation) == rotation
    assert code_version(distortions.random_rts) != rotation
    monkeypatch.setattr(distortions.random_rotation, "__defaults__", (10.0,))
    assert code_version(distortions.random_rotation) != rotation
