"""Datasets as uint8 tensors, and a batch loader that never decodes an image twice.

Every dataset is decoded once into an :class:`ImageTensors` (``images`` uint8
``(N, C, H, W)``, ``labels`` int64 ``(N,)``) and, where decoding costs anything, cached
under :func:`stn_course.utils.cache_dir`. Training then draws batches straight from
those tensors (on the GPU when one is used) with :class:`BatchLoader`; augmentations
are batched tensor operations, not per-sample PIL transforms. A cache file records its key
(dataset, split, limit and every generation parameter, :func:`save_cached`); one that is
damaged or holds something else is rebuilt with a :class:`CacheWarning` (:func:`load_cached`).

Batches come out as floats in ``[0, 1]``, *not* normalised: the models normalise
after their spatial transformer, so that zero padding while sampling means "black
background", as it does in the raw image (see pytorch/tutorials#1117).

Sources
-------
* MNIST: ``torchvision.datasets.MNIST(root, download=True)`` (reads ``<root>/MNIST/raw``).
* CIFAR-10: ``<root>/CIFAR10/{train,test}/<class>/*`` (one folder per class) read with
  ``torchvision.datasets.ImageFolder`` when present, else
  ``torchvision.datasets.CIFAR10(root, download=True)``.
* GTSRB: ``<root>/GTSRB/gtsrb32.npz`` (32x32) when present, else (and at other sizes)
  ``torchvision.datasets.GTSRB(root, split, download=True)``, resized and cached.
"""
from __future__ import annotations

import contextlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .errors import CourseError
from .utils import cache_dir, data_root, write_atomically

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
        index = torch.from_numpy(_spread_indices(len(self), count))
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


def _spread_indices(total: int, count: int) -> np.ndarray:
    # Evenly spaced rather than the first `count`: class-sorted sources keep every class.
    return np.linspace(0, total - 1, count).round().astype(np.int64)


def _missing_data_error(dataset: str, root: Path, layouts: str, fix: str | None = None) -> DatasetNotFoundError:
    env = os.environ.get("STN_COURSE_DATA")
    env_text = f"STN_COURSE_DATA={env}" if env else "STN_COURSE_DATA is not set, so the default <repository>/data is used"
    fix = fix or ("run once with internet access (torchvision downloads it into the data root), or point "
                  "STN_COURSE_DATA at a folder that holds it, e.g. `export STN_COURSE_DATA=../shared/datasets`")
    return DatasetNotFoundError(
        f"{dataset} was not found under the data root {root} and could not be downloaded "
        f"(no network?).\n  Data root: {env_text}.\n  Looked for: {layouts}.\n  To fix: {fix}."
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
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
        with _quiet():
            source = MNIST(str(root), train=train, download=True)
    except Exception:  # urllib, HTTP and checksum errors all mean: not available
        raise _missing_data_error("MNIST", root, f"{root / 'MNIST' / 'raw'} (the four IDX files)") from None
    data = ImageTensors(
        images=source.data.unsqueeze(1).contiguous(),
        labels=source.targets.to(torch.int64),
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
    path = cache_file(f"cifar10-{source}-{split}-{limit or 'all'}")
    key = {"dataset": "cifar10", "source": source, "split": split, "limit": limit}
    cached = load_cached(path, key)
    if cached is not None:
        images, labels = cached["images"], cached["labels"]
    else:
        if source == "imagefolder":
            images, labels = _decode_image_folder(folder, limit)
        else:
            images, labels = _download_cifar10(root, train, limit)
        save_cached(path, key, {"images": images, "labels": labels})
    return ImageTensors(images=images, labels=labels, classes=CIFAR10_CLASSES,
                        mean=CIFAR10_MEAN, std=CIFAR10_STD, name=f"cifar10-{split}")


def _decode_image_folder(folder: Path, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image
    from torchvision.datasets import ImageFolder

    index = ImageFolder(str(folder))
    if tuple(index.classes) != CIFAR10_CLASSES:
        raise ValueError(f"{folder} must hold one folder per CIFAR-10 class {CIFAR10_CLASSES}, found {index.classes}")
    samples = index.samples
    if limit is not None and limit < len(samples):
        samples = [samples[i] for i in _spread_indices(len(samples), limit)]

    def decode(path: str) -> np.ndarray:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))

    # PIL releases the GIL while decoding, so threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        pixels = np.stack(list(pool.map(decode, [path for path, _ in samples], chunksize=256)))
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)
    return images, labels


def _download_cifar10(root: Path, train: bool, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import CIFAR10

    try:
        with _quiet():
            source = CIFAR10(str(root), train=train, download=True)
    except Exception:
        raise _missing_data_error(
            "CIFAR-10", root,
            f"{root / 'CIFAR10' / ('train' if train else 'test')}/<class>/ (ImageFolder layout) "
            f"or {root / 'cifar-10-batches-py'} (torchvision's download)",
        ) from None
    images = torch.from_numpy(source.data).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor(source.targets, dtype=torch.int64)
    if limit is not None and limit < len(labels):
        keep = torch.from_numpy(_spread_indices(len(labels), limit))
        images, labels = images[keep], labels[keep]
    return images, labels


def save_atomically(obj: object, path: Path) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (:func:`stn_course.utils.write_atomically`)."""
    write_atomically(path, lambda tmp: torch.save(obj, tmp))


class CacheWarning(UserWarning):
    """A cache file was corrupt or held other data, and is being rebuilt."""


#: version of the cache files' layout ({"key": ..., tensors}); part of their file names, so
#: files of an older layout are never read (nor warned about): they are rebuilt once
CACHE_FORMAT = 2


def cache_file(stem: str) -> Path:
    """``<cache dir>/<stem>.v<CACHE_FORMAT>.pt`` (:func:`stn_course.utils.cache_dir`)."""
    return cache_dir() / f"{stem}.v{CACHE_FORMAT}.pt"


def save_cached(path: Path, key: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Cache ``tensors`` (e.g. ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)``) at
    ``path`` with ``key``: everything that made them (dataset, split, limit, seed and every
    generation parameter; plain str / int / float / bool / None values), checked by :func:`load_cached`."""
    save_atomically({"key": dict(key), **tensors}, path)


def load_cached(path: Path, key: dict, count: int | None = None) -> dict[str, torch.Tensor] | None:
    """The tensors cached at ``path`` by :func:`save_cached` under ``key``, or None if there
    are none to use: no file (silently), or a file that cannot be read, holds another key, or
    holds no uint8 ``(N, C, H, W)`` images (and int64 ``(N,)`` labels), or not ``count`` of them.
    Those warn (:class:`CacheWarning`, naming the file) and the caller rebuilds it: it is only a cache."""
    if not path.exists():
        return None
    try:
        cached = torch.load(path, weights_only=True)
    except Exception as error:  # truncated, empty or not a torch file: torch's errors vary
        problem = f"cannot be read ({type(error).__name__})"
    else:
        problem = _cache_problem(cached, key, count)
        if problem is None:
            return {name: value for name, value in cached.items() if name != "key"}
    import warnings

    warnings.warn(f"The cache file {path} {problem}; rebuilding it (it is only a cache).", CacheWarning, stacklevel=2)
    return None


def _cache_problem(cached: object, key: dict, count: int | None) -> str | None:
    """What is wrong with a loaded cache file, or None."""
    if not isinstance(cached, dict) or not isinstance(cached.get("key"), dict):
        return "does not record what it holds"
    if cached["key"] != key:
        return f"holds {cached['key']}, not {key}"
    images, labels = cached.get("images"), cached.get("labels", None)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        return "holds no uint8 (N, C, H, W) images"
    if count is not None and len(images) != count:
        return f"holds {len(images)} images, not {count}"
    if "labels" in cached and (not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64
                               or labels.shape != (len(images),)):
        return f"holds no int64 ({len(images)},) labels"
    return None


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


Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


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
            floats in ``[0, 1]`` (e.g. :func:`random_crop_flip` or a distortion).
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


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Random crop after zero padding, and random horizontal flip, for a whole batch.

    Args:
        images: float ``(B, C, H, W)``.
        generator: source of randomness (same device as ``images``).
        padding: pixels of zero padding on each side before cropping back to ``H x W``.
    Returns:
        float ``(B, C, H, W)``.
    """
    batch, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
    offset_y = torch.randint(0, 2 * padding + 1, (batch, 1, 1), generator=generator, device=images.device)
    offset_x = torch.randint(0, 2 * padding + 1, (batch, 1, 1), generator=generator, device=images.device)
    rows = (torch.arange(height, device=images.device).view(1, height, 1) + offset_y).expand(batch, height, width)
    cols = (torch.arange(width, device=images.device).view(1, 1, width) + offset_x).expand(batch, height, width)
    flip = torch.rand(batch, 1, 1, generator=generator, device=images.device) < 0.5
    cols = torch.where(flip, 2 * offset_x + (width - 1) - cols, cols)  # mirror inside the crop
    batch_index = torch.arange(batch, device=images.device).view(batch, 1, 1)
    return padded[batch_index, :, rows, cols].permute(0, 3, 1, 2).contiguous()



# --------------------------------------------------------------------------------------
# GTSRB: German Traffic Sign Recognition Benchmark (IJCNN 2011), 43 classes.
# --------------------------------------------------------------------------------------

#: the official class names, index = class id
GTSRB_CLASSES = (
    "speed limit 20", "speed limit 30", "speed limit 50", "speed limit 60", "speed limit 70",
    "speed limit 80", "end of speed limit 80", "speed limit 100", "speed limit 120", "no passing",
    "no passing over 3.5 t", "right of way at next intersection", "priority road", "yield", "stop",
    "no vehicles", "over 3.5 t prohibited", "no entry", "general caution", "curve left",
    "curve right", "double curve", "bumpy road", "slippery road", "road narrows right",
    "road work", "traffic signals", "pedestrians", "children crossing", "bicycles crossing",
    "ice / snow", "wild animals", "end of all limits", "turn right ahead", "turn left ahead",
    "ahead only", "straight or right", "straight or left", "keep right", "keep left",
    "roundabout", "end of no passing", "end of no passing over 3.5 t",
)
#: per-channel statistics of the 32x32 training images (for plotting; the traffic-sign models
#: standardise every image by its own statistics instead, see traffic_sign_models)
GTSRB_MEAN = (0.3398, 0.3117, 0.3210)
GTSRB_STD = (0.2755, 0.2647, 0.2712)
#: columns of :attr:`GTSRBData.meta`
GTSRB_META_COLUMNS = ("track", "width", "height", "roi_x1", "roi_y1", "roi_x2", "roi_y2")


@dataclass(frozen=True)
class GTSRBData:
    """GTSRB images and, per image, the metadata of the original photograph.

    Attributes:
        data: the images, uint8 ``(N, 3, 32, 32)``, and labels.
        meta: int64 ``(N, 7)``, columns :data:`GTSRB_META_COLUMNS`: the track id (30 frames
            of one physical sign share a track *within a class*; -1 in the test set), the
            original width and height, and the sign's box ``x1, y1, x2, y2`` in original pixels.
    """

    data: ImageTensors
    meta: torch.Tensor

    def column(self, name: str) -> torch.Tensor:
        """One metadata column ``(N,)`` by name."""
        return self.meta[:, GTSRB_META_COLUMNS.index(name)]

    @property
    def track_keys(self) -> torch.Tensor:
        """``(N,)`` one id per physical sign: class * 1000 + track (track ids repeat across classes)."""
        return self.data.labels * 1000 + self.column("track")

    def select(self, index: torch.Tensor, name: str) -> "GTSRBData":
        """The images at ``index`` (int64 ``(M,)``), renamed ``name``."""
        data = replace(self.data, images=self.data.images[index], labels=self.data.labels[index], name=name)
        return GTSRBData(data, self.meta[index])


def load_gtsrb(train: bool = True, root: str | Path | None = None, limit: int | None = None,
               size: int = 32) -> GTSRBData:
    """GTSRB as uint8 ``(N, 3, size, size)`` (39,209 train / 12,630 test) with metadata.

    At 32x32, reads ``<root>/GTSRB/gtsrb32.npz`` (the official split rescaled to 32x32;
    arrays ``{train,test}_{images,labels,meta}``) if present. Otherwise (or at another
    size, e.g. 48 as Moodstocks) it reads the original photographs from torchvision's
    ``GTSRB(root, split, download=True)`` (downloaded where a network allows), resizes
    them to ``size`` and caches the tensors (:func:`load_gtsrb_originals`).

    Args:
        train: training split if True, else the official final test set.
        root: data root; default :func:`stn_course.utils.data_root`.
        limit: keep only this many samples, spread evenly (the files are class-sorted,
            so every class is kept).
        size: side of the square images.
    """
    root = Path(root) if root is not None else data_root()
    path = root / "GTSRB" / "gtsrb32.npz"
    if size != 32 or not path.exists():
        return load_gtsrb_originals(train, root, limit, size)
    split = "train" if train else "test"
    with np.load(path) as archive:
        images = torch.from_numpy(archive[f"{split}_images"]).permute(0, 3, 1, 2).contiguous()
        labels = torch.from_numpy(archive[f"{split}_labels"].astype(np.int64))
        meta = torch.from_numpy(archive[f"{split}_meta"].astype(np.int64))
    data = ImageTensors(images=images, labels=labels, classes=GTSRB_CLASSES, mean=GTSRB_MEAN,
                        std=GTSRB_STD, name=f"gtsrb-{split}")
    full = GTSRBData(data, meta)
    if limit is None or limit >= len(labels):
        return full
    return full.select(torch.from_numpy(_spread_indices(len(labels), limit)), f"gtsrb-{split}[:{limit}]")


def load_gtsrb_originals(train: bool, root: Path, limit: int | None, size: int) -> GTSRBData:
    """GTSRB from torchvision's download of the originals under ``<root>/gtsrb`` (fetched
    if missing and a network allows), each photograph resized to ``(size, size)`` (PIL,
    bilinear with antialiasing), with :data:`GTSRB_META_COLUMNS` from its CSV files (the
    track from a training file's name ``<track>_<frame>.ppm``). Cached: decoded once."""
    split = "train" if train else "test"
    path = cache_file(f"gtsrb{size}-torchvision-{split}-{limit or 'all'}")
    key = {"dataset": "gtsrb", "source": "torchvision", "split": split, "size": size, "limit": limit}
    cached = load_cached(path, key)
    if cached is None:
        files, labels, meta = _gtsrb_index(_download_gtsrb(root, train, size), train)
        if limit is not None and limit < len(files):
            keep = _spread_indices(len(files), limit)
            files, labels, meta = [files[i] for i in keep], labels[keep], meta[keep]
        cached = {"images": _decode_resized(files, size), "labels": torch.from_numpy(labels),
                  "meta": torch.from_numpy(meta)}
        save_cached(path, key, cached)
    data = ImageTensors(images=cached["images"], labels=cached["labels"], classes=GTSRB_CLASSES,
                        mean=GTSRB_MEAN, std=GTSRB_STD, name=f"gtsrb{size}-{split}")
    return GTSRBData(data, cached["meta"])


def _download_gtsrb(root: Path, train: bool, size: int) -> Path:
    """``<root>/gtsrb``, with the split's originals in it (torchvision downloads them if missing)."""
    from torchvision.datasets import GTSRB

    try:
        with _quiet():
            GTSRB(str(root), split="train" if train else "test", download=True)
    except Exception:  # urllib, HTTP and checksum errors all mean: not available
        folder = root / "gtsrb"
        raise _missing_data_error(
            f"GTSRB at {size}x{size}", root,
            f"{folder / 'GTSRB' / 'Training'} (training photographs and GT-<class>.csv per class) and "
            f"{folder / 'GTSRB' / 'Final_Test' / 'Images'} with {folder / 'GT-final_test.csv'} "
            f"(torchvision's GTSRB layout of the original photographs)",
            fix=f"run once with internet access: torchvision's GTSRB(root, split, download=True) fetches the "
                f"originals into {folder}; or copy that folder from a machine that has it. Offline, the 32x32 "
                f"copy {root / 'GTSRB' / 'gtsrb32.npz'} serves the dataset `gtsrb` (32x32 inputs)") from None
    return root / "gtsrb"


def _gtsrb_index(folder: Path, train: bool) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """``(files, labels int64 (N,), meta int64 (N, 7))`` from the CSV files of torchvision's
    GTSRB folder, training files in class order."""
    import csv

    if train:
        tables = sorted((folder / "GTSRB" / "Training").glob("*/GT-*.csv"))
    else:
        tables = [folder / "GT-final_test.csv"]
    files, labels, meta = [], [], []
    for table in tables:
        images = table.parent if train else folder / "GTSRB" / "Final_Test" / "Images"
        with open(table, newline="") as file:
            for row in csv.DictReader(file, delimiter=";", skipinitialspace=True):
                track = int(row["Filename"].split("_")[0]) if train else -1
                files.append(images / row["Filename"])
                labels.append(int(row["ClassId"]))
                meta.append([track] + [int(row[name]) for name in
                                       ("Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2")])
    return files, np.asarray(labels, dtype=np.int64), np.asarray(meta, dtype=np.int64).reshape(-1, 7)


def _decode_resized(files: list[Path], size: int) -> torch.Tensor:
    """uint8 ``(N, 3, size, size)``: each image file read as RGB and resized."""
    from PIL import Image

    def decode(path: Path) -> np.ndarray:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # PIL releases the GIL
        pixels = np.stack(list(pool.map(decode, files, chunksize=256)))
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()


def split_tracks(data: GTSRBData, fraction: float = 0.1, seed: int = 0) -> tuple[GTSRBData, GTSRBData]:
    """Hold out whole tracks: ``(train, validation)`` with about ``fraction`` of each class's
    tracks (at least one) in validation. Random images would put near-duplicate frames of one
    sign on both sides and overstate the validation accuracy."""
    keys = data.track_keys.numpy()
    labels = data.data.labels.numpy()
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for label in np.unique(labels):
        tracks = np.unique(keys[labels == label])
        count = max(1, round(fraction * len(tracks)))
        held.extend(rng.choice(tracks, size=count, replace=False).tolist())
    in_validation = torch.from_numpy(np.isin(keys, held))
    return (data.select(torch.nonzero(~in_validation).flatten(), f"{data.data.name}-train-tracks"),
            data.select(torch.nonzero(in_validation).flatten(), f"{data.data.name}-validation-tracks"))


def random_affine(images: torch.Tensor, generator: torch.Generator, degrees: float = 10.0,
                  scale: tuple[float, float] = (0.9, 1.1), shift: float = 0.1) -> torch.Tensor:
    """A small random affine map per image (rotation, scale, shift), for a whole batch.

    Args:
        images: float ``(B, C, H, W)`` in [0, 1].
        generator: source of randomness (same device as ``images``).
        degrees: rotation drawn uniformly in ``[-degrees, degrees]``.
        scale: zoom factor range (above 1 enlarges the sign).
        shift: translation in each direction, as a fraction of the half-side (0.1: 1.6 px at 32).
    Returns:
        float ``(B, C, H, W)``; borders are repeated (``padding_mode="border"``) rather than
        black, since a photograph continues beyond its frame.
    """
    batch, device = images.shape[0], images.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(batch, generator=generator, device=device)

    angle = uniform(-degrees, degrees) * (np.pi / 180)
    zoom = uniform(*scale)
    # θ maps output to input coordinates: zooming in by s samples a region 1/s as large.
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, uniform(-shift, shift)], dim=1),
                         torch.stack([sin, cos, uniform(-shift, shift)], dim=1)], dim=1)
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    return torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                                           align_corners=False)


def gtsrb_splits(validation: bool, train_limit: int | None = None,
                 test_limit: int | None = None, size: int = 32) -> tuple[ImageTensors, ImageTensors]:
    """``(train, test)`` images ``(N, 3, size, size)`` of GTSRB for training: the whole training
    set and the official test set, or (``validation``) the training set split by
    :func:`split_tracks` into training tracks and held-out validation tracks. Limits keep
    that many samples, spread evenly."""
    train = load_gtsrb(train=True, size=size)
    if validation:
        train, test = split_tracks(train)
    else:
        test = load_gtsrb(train=False, size=size)
    return train.data.subset(train_limit), test.data.subset(test_limit)
