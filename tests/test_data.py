"""MNIST and CIFAR-10 as tensors: shapes, label order, subsets, and a clear error for a missing or damaged file."""
import os
import socket

import pytest
import torch

from stn_course import data
from stn_course.data import DatasetNotFoundError, load_cifar10, load_mnist
from stn_course.errors import CourseError
from stn_course.utils import data_root

from .markers import requires_cifar_folder, requires_mnist


@requires_mnist
def test_mnist_shapes_dtypes_and_order():
    train = load_mnist(train=True)
    test = load_mnist(train=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert train.labels.bincount().min() > 5000


@requires_mnist
def test_subset_keeps_every_class():
    small = load_mnist(train=False, limit=100)
    assert len(small) == 100 and set(small.labels.tolist()) == set(range(10))


@requires_cifar_folder
def test_examples_show_every_class_as_floats():
    images, labels = load_cifar10(train=False, limit=200).examples(10)
    assert images.shape == (10, 3, 32, 32) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1 and images.max() > 0.5
    assert sorted(labels.tolist()) == list(range(10))


@requires_cifar_folder
def test_cifar10_from_image_folder_shapes_and_label_order():
    test = load_cifar10(train=False, limit=200)
    assert test.images.shape == (200, 3, 32, 32) and test.images.dtype == torch.uint8
    assert test.labels.dtype == torch.int64
    assert test.classes[0] == "airplane" and test.classes[9] == "truck"
    # Evenly spread over class-sorted folders: 20 of each class, in label order.
    assert test.labels.bincount().tolist() == [20] * 10
    assert test.labels.tolist() == sorted(test.labels.tolist())


@requires_cifar_folder
def test_cifar10_is_decoded_once_then_read_from_the_cache(monkeypatch):
    first = load_cifar10(train=False, limit=50)

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(data, "_decode_image_folder", must_not_decode)
    second = load_cifar10(train=False, limit=50)
    assert torch.equal(first.images, second.images)


def test_cifar10_download_source(monkeypatch, tmp_path):
    """Without the ImageFolder copy, torchvision's CIFAR10 class is the source."""
    import numpy as np
    import torchvision

    class FakeCIFAR10:
        def __init__(self, root, train, download):
            assert download is True
            self.data = np.full((7, 32, 32, 3), 9, dtype=np.uint8)
            self.targets = list(range(7))

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    monkeypatch.setenv("STN_COURSE_CACHE", str(tmp_path / "cache"))
    loaded = load_cifar10(train=True, root=tmp_path)
    assert loaded.images.shape == (7, 3, 32, 32) and loaded.images.dtype == torch.uint8
    assert loaded.labels.tolist() == list(range(7))


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("loader, name", [(load_mnist, "MNIST"), (load_cifar10, "CIFAR-10")])
def test_missing_data_gives_one_clear_error(loader, name, tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("STN_COURSE_DATA", str(tmp_path))
    monkeypatch.setenv("STN_COURSE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError) as caught:
        loader(train=False)
    message = str(caught.value)
    assert name in message and str(tmp_path) in message and "STN_COURSE_DATA" in message
    assert "To fix" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_missing_data_says_what_to_do_in_a_notebook_a_terminal_and_on_colab(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("STN_COURSE_DATA", str(tmp_path / "datsets"))  # mistyped: no such folder
    monkeypatch.setenv("STN_COURSE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError) as caught:
        load_mnist(train=False)
    message = str(caught.value)
    assert "did not exist" in message, "a mistyped folder is named as new"
    assert "%env STN_COURSE_DATA=" in message and "export STN_COURSE_DATA=" in message
    assert "Colab" in message and "../shared" not in message


# --- a corrupt raw data file is named as corrupt, not missing ------------------------------

@pytest.fixture
def mnist_copy(tmp_path):
    """A data root whose MNIST files link to the real ones (never modified)."""
    from stn_course.data import MNIST_RAW_FILES

    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_RAW_FILES:
        (raw / name).symlink_to(data_root() / "MNIST" / "raw" / name)
    return tmp_path / "data"


@requires_mnist
@pytest.mark.parametrize("damage", ["truncated", "empty", "random", "extra"])
def test_a_corrupt_mnist_file_is_reported_as_corrupt_with_its_path(mnist_copy, damage, monkeypatch):
    from stn_course.data import DatasetCorruptError, load_mnist

    monkeypatch.setattr("socket.socket.connect", lambda *args: (_ for _ in ()).throw(OSError("no network")))
    path = mnist_copy / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    original = path.resolve().read_bytes()
    path.unlink()
    path.write_bytes({"truncated": original[:5000], "empty": b"", "random": bytes(range(256)) * 40,
                      "extra": original + b"\0"}[damage])
    with pytest.raises(DatasetCorruptError, match=f"The MNIST file {path} is corrupt: .*Delete it") as caught:
        load_mnist(train=True, root=mnist_copy)
    assert "not found" not in str(caught.value)
    assert isinstance(caught.value, CourseError)


@requires_mnist
def test_intact_mnist_files_pass_the_check(mnist_copy):
    from stn_course.data import check_mnist_files, load_mnist

    check_mnist_files(mnist_copy)
    assert len(load_mnist(train=False, root=mnist_copy, limit=10)) == 10


# --- a CIFAR-10 cache belongs to the files it was decoded from ------------------------------

def _cifar_folder(root, per_class=2):
    """A CIFAR10/test ImageFolder under ``root``: ``per_class`` 32x32 PNGs per class, image
    ``i`` of class ``c`` filled with ``10 * c + i``."""
    import numpy as np
    from PIL import Image

    from stn_course.data import CIFAR10_CLASSES

    for label, name in enumerate(CIFAR10_CLASSES):
        folder = root / "CIFAR10" / "test" / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((32, 32, 3), 10 * label + i, np.uint8)).save(folder / f"{i}.png")
    return root / "CIFAR10" / "test"


def test_a_cifar_cache_of_one_data_root_is_not_used_for_another(empty_cache, tmp_path):
    from stn_course.data import DatasetCorruptError

    good = _cifar_folder(tmp_path / "good")
    assert len(load_cifar10(train=False, root=tmp_path / "good")) == 20
    bad = _cifar_folder(tmp_path / "bad")
    (bad / "cat" / "0.png").write_bytes(b"not a png")
    with pytest.raises(DatasetCorruptError, match=f"image {bad / 'cat' / '0.png'} cannot be read"):
        load_cifar10(train=False, root=tmp_path / "bad")
    (bad / "cat" / "0.png").unlink()
    (bad / "cat" / "1.png").unlink()  # an empty class folder
    with pytest.raises(DatasetCorruptError, match=f"class folder {bad / 'cat'} holds no image"):
        load_cifar10(train=False, root=tmp_path / "bad")
    assert good.is_dir()


def test_a_cifar_cache_is_rebuilt_when_images_are_deleted_or_replaced(empty_cache, tmp_path):
    import numpy as np
    from PIL import Image

    folder = _cifar_folder(tmp_path, per_class=4)
    assert len(load_cifar10(train=False, root=tmp_path)) == 40
    for name in ("airplane", "bird", "cat"):
        for i in range(3):
            (folder / name / f"{i}.png").unlink()  # 9 deleted
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(folder / "airplane" / "0new.png")  # 1 new
    reloaded = load_cifar10(train=False, root=tmp_path)
    assert len(reloaded) == 40 - 9 + 1
    assert reloaded.images[0].unique().tolist() == [200]
    Image.fromarray(np.full((32, 32, 3), 201, np.uint8)).save(folder / "airplane" / "0new.png")  # replaced
    os.utime(folder / "airplane" / "0new.png", ns=(1, 1))  # same size: the time tells
    assert load_cifar10(train=False, root=tmp_path).images[0].unique().tolist() == [201]


@pytest.mark.parametrize("damage", ["not an image", "wrong size", "extra class folder", "empty class folder"])
def test_a_bad_cifar_folder_is_one_error_naming_the_file_or_folder(empty_cache, tmp_path, damage):
    import numpy as np
    from PIL import Image

    from stn_course.data import DatasetCorruptError

    folder = _cifar_folder(tmp_path)
    named = {"not an image": folder / "dog" / "1.png", "wrong size": folder / "dog" / "1.png",
             "extra class folder": folder / "zebra", "empty class folder": folder / "frog"}[damage]
    if damage == "not an image":
        named.write_text("hello")
    elif damage == "wrong size":
        Image.fromarray(np.zeros((28, 30, 3), np.uint8)).save(named)
    elif damage == "extra class folder":
        named.mkdir()
    else:
        for file in named.iterdir():
            file.unlink()
    with pytest.raises(DatasetCorruptError, match=str(named)) as caught:
        load_cifar10(train=False, root=tmp_path)
    assert isinstance(caught.value, CourseError)
    if damage == "wrong size":
        assert "30x28 pixels, not 32x32" in str(caught.value)


@requires_mnist
def test_mnist_labels_outside_0_to_9_are_named_before_training(mnist_copy):
    from stn_course.data import DatasetCorruptError

    path = mnist_copy / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels = bytearray(path.resolve().read_bytes())
    labels[8 + 3] = 12  # the fourth label
    path.unlink()
    path.write_bytes(bytes(labels))
    with pytest.raises(DatasetCorruptError, match=f"The MNIST file {path} is corrupt: it holds labels from 0 to 12, "
                                                  "outside 0-9"):
        load_mnist(train=False, root=mnist_copy)
    assert len(load_mnist(train=True, root=mnist_copy, limit=10)) == 10
