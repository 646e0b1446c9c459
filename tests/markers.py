"""Skip markers for tests that need a dataset under the data root."""
import pytest

from stn_course.utils import data_root


def _has_mnist() -> bool:
    return (data_root() / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists()


def _has_cifar_folder() -> bool:
    return (data_root() / "CIFAR10" / "test").is_dir()


requires_mnist = pytest.mark.skipif(not _has_mnist(), reason="MNIST not under the data root (set STN_COURSE_DATA)")
requires_cifar_folder = pytest.mark.skipif(not _has_cifar_folder(),
                                           reason="CIFAR-10 ImageFolder copy not under the data root (set STN_COURSE_DATA)")
