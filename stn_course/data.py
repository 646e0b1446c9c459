"""Datasets as uint8 tensors: MNIST, CIFAR-10, their errors, and a photograph for figures.

Every dataset is decoded once into an :class:`ImageTensors` (``images`` uint8
``(N, C, H, W)``, ``labels`` int64 ``(N,)``) and, where decoding costs anything, cached
(:mod:`stn_course.cache`). Training then draws batches straight from those tensors with
:class:`stn_course.loader.BatchLoader`; augmentations (:mod:`stn_course.augment`) are
batched tensor operations, not per-sample PIL transforms. GTSRB, with the metadata of its
photographs, is read by :mod:`stn_course.gtsrb`.

Sources
-------
* MNIST: ``torchvision.datasets.MNIST(root, download=True)`` (reads ``<root>/MNIST/raw``);
  a damaged IDX file is named as such (:func:`check_mnist_files`), not reported missing.
* CIFAR-10: ``<root>/CIFAR10/{train,test}/<class>/*`` (one folder per class) read with
  ``torchvision.datasets.ImageFolder`` when present, else
  ``torchvision.datasets.CIFAR10(root, download=True)``.
"""
from __future__ import annotations

import contextlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .cache import cache_file, code_version, files_identity, load_cached, save_cached
from .errors import CourseError
from .utils import data_root

MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
MNIST_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)


class DatasetNotFoundError(CourseError, FileNotFoundError):
    """A dataset is neither on disk nor downloadable; the message says how to fix it."""


@dataclass(frozen=True)
class ImageTensors:
    """A decoded image classification dataset.

    Attributes:
        images: uint8 ``(N, C, H, W)``.
        labels: int64 ``(N,)``.
        classes: class names, index = label.
        mean, std: per-channel statistics of the dataset in ``[0, 1]`` units, used to
            normalise inside the models and to un-normalise when plotting.
        name: e.g. ``"mnist-train"``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must have shape ({self.images.shape[0]},), got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, count: int | None) -> "ImageTensors":
        """``count`` samples spread evenly over the dataset (all classes kept), or all if None."""
        if count is None or count >= len(self):
            return self
        index = torch.from_numpy(spread_indices(len(self), count))
        return replace(self, images=self.images[index], labels=self.labels[index],
                       name=f"{self.name}[:{count}]")

    def examples(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` samples spread evenly over the dataset (class-sorted sources show every
        class), as float images ``(count, C, H, W)`` in [0, 1] and labels ``(count,)``."""
        chosen = self.subset(count)
        return chosen.images.float() / 255.0, chosen.labels

    def to(self, device: torch.device | str) -> "ImageTensors":
        """The same dataset with its tensors on ``device``."""
        return replace(self, images=self.images.to(device), labels=self.labels.to(device))


def spread_indices(total: int, count: int) -> np.ndarray:
    """``count`` indices into ``total`` samples, int64 ``(count,)``, evenly spaced rather than
    the first ``count``: class-sorted sources keep every class."""
    return np.linspace(0, total - 1, count).round().astype(np.int64)


#: how a learner points the course at a datasets folder, in each place the course runs
SET_DATA_ROOT = (
    "  In a notebook (also on Colab): run `%env STN_COURSE_DATA=/path/to/datasets` in a cell, then this cell again.\n"
    "  In a terminal: `export STN_COURSE_DATA=/path/to/datasets`, then start `jupyter lab` or "
    "`python -m stn_course` from that terminal.\n"
    "  On Colab the files must be on the runtime first: upload them (Files panel) or mount Google Drive "
    "and use its path, e.g. /content/drive/MyDrive/datasets.")


def missing_data_error(dataset: str, root: Path, layouts: str, fix: str | None = None) -> DatasetNotFoundError:
    """The error for a dataset that is neither under ``root`` (where it looked: ``layouts``)
    nor downloadable, naming the data root and how to fix it (default fix: download or
    point STN_COURSE_DATA at a copy), and how to set STN_COURSE_DATA in a notebook, a
    terminal and on Colab (:data:`SET_DATA_ROOT`)."""
    from .utils import NEW_DATA_ROOTS, has_repository

    env = os.environ.get("STN_COURSE_DATA")
    if env:
        env_text = f"STN_COURSE_DATA={env}" + (" (a folder that did not exist: is the name right?)"
                                               if Path(env).expanduser().resolve() in NEW_DATA_ROOTS else "")
    else:
        where = "the repository's data/" if has_repository() else "data/ in the current folder (no repository here)"
        env_text = f"STN_COURSE_DATA is not set, so the default {root} is used ({where})"
    fix = fix or ("run once with internet access (torchvision downloads it into the data root), or point "
                  "STN_COURSE_DATA at a folder that holds it")
    return DatasetNotFoundError(
        f"{dataset} was not found under the data root {root} and could not be downloaded "
        f"(no network?).\n  Data root: {env_text}.\n  Looked for: {layouts}.\n  To fix: {fix}.\n{SET_DATA_ROOT}"
    )


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """Swallow torchvision's download chatter; failures are reported by our own error."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def load_mnist(train: bool = True, root: str | Path | None = None, limit: int | None = None) -> ImageTensors:
    """MNIST as uint8 ``(N, 1, 28, 28)`` tensors (60,000 train / 10,000 test).

    The IDX files already hold raw uint8 pixels, so reading them *is* the decoding:
    no separate cache is needed.

    Args:
        train: training split if True, else the test split.
        root: data root; default :func:`stn_course.utils.data_root`.
        limit: keep only this many samples, spread evenly (quick runs).
    """
    from torchvision.datasets import MNIST

    root = Path(root) if root is not None else data_root()
    check_mnist_files(root)  # a damaged file is named as such, not reported missing
    try:
        with quietly():
            source = MNIST(str(root), train=train, download=True)
    except Exception:  # urllib, HTTP and checksum errors all mean: not available
        raise missing_data_error("MNIST", root, f"{root / 'MNIST' / 'raw'} (the four IDX files)") from None
    labels = source.targets.to(torch.int64)
    if len(labels) and not (0 <= labels.min() and labels.max() <= 9):  # else an IndexError after a whole epoch
        path = root / "MNIST" / "raw" / f"{'train' if train else 't10k'}-labels-idx1-ubyte"
        raise DatasetCorruptError(f"The MNIST file {path} is corrupt: it holds labels from {labels.min().item()} to "
                                  f"{labels.max().item()}, outside 0-9. Delete it (or copy it again) and run once "
                                  f"with internet access, or point STN_COURSE_DATA at intact MNIST files.")
    data = ImageTensors(
        images=source.data.unsqueeze(1).contiguous(),
        labels=labels,
        classes=MNIST_CLASSES,
        mean=MNIST_MEAN,
        std=MNIST_STD,
        name="mnist-train" if train else "mnist-test",
    )
    return data.subset(limit)


def load_cifar10(train: bool = True, root: str | Path | None = None, limit: int | None = None) -> ImageTensors:
    """CIFAR-10 as uint8 ``(N, 3, 32, 32)`` tensors (50,000 train / 10,000 test).

    Reads the ImageFolder layout ``<root>/CIFAR10/{train,test}/<class>/`` when present,
    else torchvision's ``CIFAR10(root, download=True)``. Decoded tensors are cached in
    :func:`stn_course.utils.cache_dir`, so images are decoded once, ever.

    Args:
        train: training split if True, else the test split.
        root: data root; default :func:`stn_course.utils.data_root`.
        limit: keep only this many samples, spread evenly over the classes; only those
            are decoded (quick runs).
    """
    root = Path(root) if root is not None else data_root()
    split = "train" if train else "test"
    folder = root / "CIFAR10" / split
    source = "imagefolder" if folder.is_dir() else "torchvision"
    key = _cifar10_key(root, source, split, limit)
    cached = load_cached(cache_file(f"cifar10-{source}-{split}-{limit or 'all'}", key), key)
    if cached is not None:
        images, labels = cached["images"], cached["labels"]
    else:
        if source == "imagefolder":
            images, labels = _decode_image_folder(folder, limit)
        else:
            images, labels = _download_cifar10(root, train, limit)
        key = _cifar10_key(root, source, split, limit)  # the files as decoded (a download adds them)
        save_cached(cache_file(f"cifar10-{source}-{split}-{limit or 'all'}", key), key,
                    {"images": images, "labels": labels})
    return ImageTensors(images=images, labels=labels, classes=CIFAR10_CLASSES,
                        mean=CIFAR10_MEAN, std=CIFAR10_STD, name=f"cifar10-{split}")


def _cifar10_key(root: Path, source: str, split: str, limit: int | None) -> dict:
    """What a cache of CIFAR-10 depends on: split, limit, the decoding code and the source
    files (path, size and modification time of every image, or of torchvision's batches)."""
    files = root / "CIFAR10" / split if source == "imagefolder" else root / "cifar-10-batches-py"
    return {"dataset": "cifar10", "source": source, "split": split, "limit": limit,
            "code": code_version(*_CIFAR10_CODE[source]), "files": files_identity(files)}


def _image_folder_samples(folder: Path) -> list[tuple[str, int]]:
    """``(path, label)`` of every image under ``folder`` (one folder per CIFAR-10 class, in
    ImageFolder's order); :class:`DatasetCorruptError` naming an extra, missing or empty folder."""
    from torchvision.datasets import ImageFolder
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

    found = sorted(entry.name for entry in folder.iterdir() if entry.is_dir())
    extra, missing = sorted(set(found) - set(CIFAR10_CLASSES)), sorted(set(CIFAR10_CLASSES) - set(found))
    fix = "Copy the CIFAR10 folder again, or point STN_COURSE_DATA at an intact copy."
    if extra or missing:
        raise DatasetCorruptError(
            f"The CIFAR-10 folder {folder} must hold exactly one folder per class {', '.join(CIFAR10_CLASSES)}; "
            + "; ".join(([f"it has the extra folder(s) {', '.join(str(folder / name) for name in extra)}"] if extra else [])
                        + ([f"it lacks {', '.join(missing)}"] if missing else [])) + f". Remove the extra folders. {fix}")
    for name in CIFAR10_CLASSES:
        if not any(has_file_allowed_extension(file.name, IMG_EXTENSIONS) for file in (folder / name).iterdir()):
            raise DatasetCorruptError(f"The CIFAR-10 class folder {folder / name} holds no image. {fix}")
    return ImageFolder(str(folder)).samples


def _decode_image_folder(folder: Path, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image

    samples = _image_folder_samples(folder)
    if limit is not None and limit < len(samples):
        samples = [samples[i] for i in spread_indices(len(samples), limit)]

    def decode(path: str) -> np.ndarray:
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
        except (OSError, ValueError) as error:  # not an image, truncated (PIL's errors are OSErrors)
            raise DatasetCorruptError(f"The CIFAR-10 image {path} cannot be read ({error}). Replace it with an "
                                      f"intact copy or delete it.") from error
        if pixels.shape != (32, 32, 3):
            raise DatasetCorruptError(f"The CIFAR-10 image {path} is {pixels.shape[1]}x{pixels.shape[0]} pixels, "
                                      f"not 32x32. Replace it with an intact copy or delete it.")
        return pixels

    # PIL releases the GIL while decoding, so threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        pixels = np.stack(list(pool.map(decode, [path for path, _ in samples], chunksize=256)))
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)
    return images, labels


def _download_cifar10(root: Path, train: bool, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import CIFAR10

    try:
        with quietly():
            source = CIFAR10(str(root), train=train, download=True)
    except Exception:
        raise missing_data_error(
            "CIFAR-10", root,
            f"{root / 'CIFAR10' / ('train' if train else 'test')}/<class>/ (ImageFolder layout) "
            f"or {root / 'cifar-10-batches-py'} (torchvision's download)",
        ) from None
    images = torch.from_numpy(source.data).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor(source.targets, dtype=torch.int64)
    if limit is not None and limit < len(labels):
        keep = torch.from_numpy(spread_indices(len(labels), limit))
        images, labels = images[keep], labels[keep]
    return images, labels


#: the code that makes a CIFAR-10 cache, per source (its version is part of the cache's key)
_CIFAR10_CODE = {"imagefolder": (_image_folder_samples, _decode_image_folder, spread_indices),
                 "torchvision": (_download_cifar10, spread_indices)}


class DatasetCorruptError(CourseError, ValueError):
    """A dataset file is present but damaged; the message names it and says how to fix it."""


#: MNIST's raw IDX files (in ``<root>/MNIST/raw``) and their number of dimensions
MNIST_RAW_FILES = {"train-images-idx3-ubyte": 3, "train-labels-idx1-ubyte": 1,
                   "t10k-images-idx3-ubyte": 3, "t10k-labels-idx1-ubyte": 1}


def check_mnist_files(root: Path) -> None:
    """Raise :class:`DatasetCorruptError` naming the first MNIST IDX file under ``root`` that is
    present but not a complete file (e.g. truncated by an interrupted copy); missing files are
    left to the download. Reads only the headers and sizes."""
    for name, ndim in MNIST_RAW_FILES.items():
        path = root / "MNIST" / "raw" / name
        if path.exists():
            problem = idx_file_problem(path, ndim)
            if problem:
                raise DatasetCorruptError(
                    f"The MNIST file {path} is corrupt: {problem}. Delete it (or copy it again) and run "
                    f"once with internet access so that torchvision downloads it, or point STN_COURSE_DATA "
                    f"at a folder with intact MNIST files.")


def idx_file_problem(path: Path, ndim: int) -> str | None:
    """What is wrong with an uncompressed IDX file of uint8 with ``ndim`` dimensions, or None:
    the header is ``00 00 08 <ndim>`` then ``ndim`` big-endian int32 sizes, then the data."""
    import struct

    header_size = 4 + 4 * ndim
    with path.open("rb") as file:
        header = file.read(header_size)
    if len(header) < header_size or header[:3] != b"\x00\x00\x08" or header[3] != ndim:
        return f"it does not start with the header of an IDX file of uint8 with {ndim} dimension(s)"
    expected = header_size + int(np.prod(struct.unpack(f">{ndim}i", header[4:]), dtype=np.int64))
    size = path.stat().st_size
    if size != expected:
        return f"it has {size:,} bytes where its header promises {expected:,} ({'truncated' if size < expected else 'extra data'})"
    return None


def sample_photo(size: int | None = 256) -> np.ndarray:
    """A photograph that ships with matplotlib (Grace Hopper), float32 ``(H, W, 3)`` in [0, 1].

    Args:
        size: side of the square centre crop, resized; None keeps the original image.
    """
    from matplotlib.cbook import get_sample_data
    from PIL import Image

    with get_sample_data("grace_hopper.jpg") as file, Image.open(file) as image:
        image = image.convert("RGB")
        if size is not None:
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
        return np.asarray(image, dtype=np.float32) / 255.0
