"""A cache of decoded tensors, so that an image is decoded once, ever.

Cache files live under :func:`stn_course.utils.cache_dir`, one per key (:func:`cache_file`).
A key holds everything that determines the cached tensors: dataset, split, limit, seed, the
generator's parameters, a version of the generating code (:func:`code_version`) and the
identity of the source files (:func:`files_identity`: path, size and modification time), so
that other parameters, changed code, another data root or edited data files never reuse a
cache. A cache file records its key (:func:`save_cached`); one that is damaged or holds
something else is rebuilt with a :class:`CacheWarning` (:func:`load_cached`).
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
from pathlib import Path

import torch

from .files import save_atomically
from .utils import cache_dir

class CacheWarning(UserWarning):
    """A cache file was corrupt or held other data, and is being rebuilt."""


#: version of the cache files' layout ({"key": ..., tensors}); part of their file names, so
#: files of an older layout are never read (nor warned about): they are rebuilt once
CACHE_FORMAT = 2


def cache_file(stem: str, key: dict | None = None) -> Path:
    """``<cache dir>/<stem>-<digest of key>.v<CACHE_FORMAT>.pt`` (:func:`stn_course.utils.cache_dir`):
    one file per key, so that caches of other data (e.g. another data root) never share one."""
    digest = "" if key is None else "-" + _digest(json.dumps(key, sort_keys=True, default=str))[:12]
    return cache_dir() / f"{stem}{digest}.v{CACHE_FORMAT}.pt"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def files_identity(*paths: Path) -> str:
    """A fingerprint of the source files under ``paths`` (a folder is walked, in sorted order):
    every file's path, size and modification time, and every folder's path (so that an emptied
    folder counts too). A missing path counts as missing. It changes when a file is added,
    deleted, replaced or edited, or when the paths are another data root's."""
    entries = []
    for path in map(Path, paths):
        entries.append(f"root {path.resolve()} {'folder' if path.is_dir() else 'file' if path.exists() else 'missing'}")
        if path.is_file():
            stat = path.stat()
            entries.append(f"{path.name} {stat.st_size} {stat.st_mtime_ns}")
        for folder, folders, files in os.walk(path):
            folders.sort()
            entries.append(f"dir {os.path.relpath(folder, path)}")
            for name in sorted(files):
                stat = os.stat(os.path.join(folder, name))
                entries.append(f"{os.path.relpath(os.path.join(folder, name), path)} {stat.st_size} {stat.st_mtime_ns}")
    return _digest("\n".join(entries))[:16]


def code_version(*code: object) -> str:
    """A fingerprint of the source code of ``code`` (functions or modules) and of the functions'
    signatures (their default parameters): it changes when the generating code does."""
    parts = []
    for item in code:
        parts.append(inspect.getsource(item))
        if callable(item) and not inspect.ismodule(item):
            parts.append(str(inspect.signature(item)))
    return _digest("\n".join(parts))[:16]


def save_cached(path: Path, key: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Cache ``tensors`` (e.g. ``images`` uint8 ``(N, C, H, W)``, ``labels`` int64 ``(N,)``) at
    ``path`` with ``key``: everything that made them (dataset, split, limit, seed, every
    generation parameter, :func:`code_version` of the generating code and :func:`files_identity`
    of the source files; plain str / int / float / bool / None values), checked by :func:`load_cached`."""
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
