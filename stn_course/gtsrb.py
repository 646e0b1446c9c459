"""GTSRB: the German Traffic Sign Recognition Benchmark (IJCNN 2011), 43 classes.

Images come with the metadata of their original photograph (:class:`GTSRBData`): the track
(30 frames of one physical sign), the photograph's size and the sign's box, so that a
validation split can hold out whole tracks (:func:`split_tracks`).

Source: ``<root>/GTSRB/gtsrb32.npz`` (32x32) when present, else (and at other sizes)
``torchvision.datasets.GTSRB(root, split, download=True)``, resized and cached
(:mod:`stn_course.cache`).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .cache import cache_file, code_version, files_identity, load_cached, save_cached
from .data import DatasetCorruptError, ImageTensors, missing_data_error, quietly, spread_indices
from .utils import data_root

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
    images, labels, meta = _read_npz(path, split)
    data = ImageTensors(images=images, labels=labels, classes=GTSRB_CLASSES, mean=GTSRB_MEAN,
                        std=GTSRB_STD, name=f"gtsrb-{split}")
    full = GTSRBData(data, meta)
    if limit is None or limit >= len(labels):
        return full
    return full.select(torch.from_numpy(spread_indices(len(labels), limit)), f"gtsrb-{split}[:{limit}]")


def _read_npz(path: Path, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(images uint8 (N, 3, 32, 32), labels int64 (N,), meta int64 (N, 7))`` of ``split`` from
    ``gtsrb32.npz``; :class:`~stn_course.data.DatasetCorruptError` naming the file and what is
    wrong with it (not a complete npz, an array missing, of the wrong type or shape, a label
    outside 0-42)."""
    import zipfile

    fix = (f"Copy {path.name} again, or delete it: then the original photographs are read instead "
           f"(downloaded where a network allows)")
    names = [f"{split}_{part}" for part in ("images", "labels", "meta")]
    try:
        with np.load(path) as archive:
            missing = [name for name in names if name not in archive.files]
            if missing:
                raise DatasetCorruptError(f"The GTSRB file {path} lacks the array(s) {', '.join(missing)}. {fix}.")
            images, labels, meta = (archive[name] for name in names)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:  # truncated, not a zip, not an npz
        raise DatasetCorruptError(f"The GTSRB file {path} cannot be read ({type(error).__name__}: {error}): it is "
                                  f"truncated or not an npz archive. {fix}.") from error
    count = len(images)
    problem = None
    if images.dtype != np.uint8 or images.shape[1:] != (32, 32, 3):
        problem = f"{names[0]} is {images.dtype} {images.shape}, not uint8 (N, 32, 32, 3)"
    elif labels.shape != (count,) or meta.shape != (count, 7) or labels.dtype.kind not in "iu" or meta.dtype.kind not in "iu":
        problem = f"{names[1]} {labels.dtype} {labels.shape} and {names[2]} {meta.dtype} {meta.shape} must be integers ({count},) and ({count}, 7)"
    elif count and not (0 <= labels.min() and labels.max() < len(GTSRB_CLASSES)):
        problem = f"{names[1]} holds labels from {labels.min()} to {labels.max()}, outside 0-{len(GTSRB_CLASSES) - 1}"
    if problem:
        raise DatasetCorruptError(f"The GTSRB file {path} is corrupt: {problem}. {fix}.")
    return (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels.astype(np.int64)),
            torch.from_numpy(meta.astype(np.int64)))


def load_gtsrb_originals(train: bool, root: Path, limit: int | None, size: int) -> GTSRBData:
    """GTSRB from torchvision's download of the originals under ``<root>/gtsrb`` (fetched
    if missing and a network allows), each photograph resized to ``(size, size)`` (PIL,
    bilinear with antialiasing), with :data:`GTSRB_META_COLUMNS` from its CSV files (the
    track from a training file's name ``<track>_<frame>.ppm``). Cached: decoded once."""
    split = "train" if train else "test"
    def key() -> dict:  # the code and the source files too (path, size and modification time)
        return {"dataset": "gtsrb", "source": "torchvision", "split": split, "size": size, "limit": limit,
                "code": code_version(*_GTSRB_CODE),
                "files": files_identity(root / "gtsrb")}

    stem, first_key = f"gtsrb{size}-torchvision-{split}-{limit or 'all'}", key()
    cached = load_cached(cache_file(stem, first_key), first_key)
    if cached is None:
        files, labels, meta = _gtsrb_index(_download_gtsrb(root, train, size), train)
        if limit is not None and limit < len(files):
            keep = spread_indices(len(files), limit)
            files, labels, meta = [files[i] for i in keep], labels[keep], meta[keep]
        cached = {"images": _decode_resized(files, size), "labels": torch.from_numpy(labels),
                  "meta": torch.from_numpy(meta)}
        final_key = key()  # the files as decoded (a download adds them)
        save_cached(cache_file(stem, final_key), final_key, cached)
    data = ImageTensors(images=cached["images"], labels=cached["labels"], classes=GTSRB_CLASSES,
                        mean=GTSRB_MEAN, std=GTSRB_STD, name=f"gtsrb{size}-{split}")
    return GTSRBData(data, cached["meta"])


def _download_gtsrb(root: Path, train: bool, size: int) -> Path:
    """``<root>/gtsrb``, with the split's originals in it (torchvision downloads them if missing)."""
    from torchvision.datasets import GTSRB

    try:
        with quietly():
            GTSRB(str(root), split="train" if train else "test", download=True)
    except Exception:  # urllib, HTTP and checksum errors all mean: not available
        folder = root / "gtsrb"
        raise missing_data_error(
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


#: the code that makes a cache of the originals (its version is part of the cache's key)
_GTSRB_CODE = (_gtsrb_index, _decode_resized, spread_indices)


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
