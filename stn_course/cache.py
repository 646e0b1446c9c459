"""A cache of decoded tensors, so that an image is decoded once, ever.

Cache files live under :func:`stn_course.utils.cache_dir`, one per dataset split and
everything that made it (:func:`cache_file`). A cache file records its key (dataset, split,
limit and every generation parameter, :func:`save_cached`); one that is damaged or holds
something else is rebuilt with a :class:`CacheWarning` (:func:`load_cached`).
"""
from __future__ import annotations

from pathlib import Path

import torch

from .files import save_atomically
from .utils import cache_dir

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
