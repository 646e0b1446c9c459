"""Device-correctness checks that need no GPU: run code on the ``meta`` device under a
mode that fails every torch call mixing devices.

A tensor made without ``device=`` lands on the CPU; on a GPU, the first operation that
combines it with the model's tensors fails. On ``meta`` some such mixes pass silently
(``meta @ cpu`` of batched matrices returns a CPU tensor), so :class:`strict_devices`
checks every call itself: its tensor arguments must all be on one device, except 0-d CPU
tensors (which PyTorch lets a GPU tensor combine with) and the calls that move data
between devices (``.to``, ``.cpu``, ``copy_``, indexing). A meta tensor moved to the CPU
comes back as zeros of its shape, so code ending in ``.cpu()`` or ``.numpy()`` runs too.
A generator is not checked: there is no meta generator (the loader makes its own on the
data's device).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

META = torch.device("meta")

_MOVES = {torch.Tensor.to, torch.Tensor.cpu, torch.Tensor.cuda, torch.Tensor.copy_, torch.Tensor.type_as,
          torch.Tensor.__getitem__, torch.Tensor.__setitem__, torch.Tensor.new_tensor,
          torch._has_compatible_shallow_copy_type}  # nn.Module.to asks this of CPU and meta tensors
_TO_CPU = {torch.Tensor.to, torch.Tensor.cpu}


def _devices(args, kwargs) -> set[str]:
    tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
    return {str(t.device) for t in tensors if not (t.device.type == "cpu" and t.dim() == 0)}


class strict_devices(TorchFunctionMode):
    """``with strict_devices(): ...``: raises ``AssertionError`` on a call that mixes devices."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _TO_CPU and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            copied = meta_copy_out(func, args, kwargs)
            if copied is not None:
                return copied
        if func not in _MOVES:
            devices = _devices(args, kwargs)
            assert len(devices) <= 1, f"{getattr(func, '__name__', func)} mixes devices {sorted(devices)}"
        return func(*args, **kwargs)


def meta_copy_out(func, args, kwargs) -> torch.Tensor | None:
    """``func`` (``Tensor.to``/``Tensor.cpu``) on a meta tensor: zeros of its shape on the CPU."""
    source = args[0]
    if func is torch.Tensor.cpu:
        return torch.zeros(source.shape, dtype=source.dtype)
    device, dtype, _, _ = torch._C._nn._parse_to(*args[1:], **kwargs)
    if device is not None and device.type != "meta":
        return torch.zeros(source.shape, dtype=dtype or source.dtype, device=device)
    return None  # a move within meta (or a dtype change): the real call does it


def on_meta(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` with its parameters and buffers on the meta device (shapes kept, no data)."""
    return module.to(META)


@contextmanager
def strict_meta(monkeypatch: pytest.MonkeyPatch) -> Iterator[torch.device]:
    """Within: :class:`strict_devices`, and ``torch.autocast("meta", ...)`` does nothing (autocast
    has no meta device; the models turn it off around their geometry). Yields the meta device."""
    real = torch.autocast

    def autocast(device_type, *args, **kwargs):
        return nullcontext() if device_type == "meta" else real(device_type, *args, **kwargs)

    monkeypatch.setattr(torch, "autocast", autocast)
    with strict_devices():
        yield META
