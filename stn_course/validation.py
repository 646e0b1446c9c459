"""Allowed values of settings, checked when a setting is made, with one clear message.

A run's settings (:class:`stn_course.recipes.RunConfig`) are checked when the config is
built, before any data is loaded: a negative ``max_grad_norm`` would reverse the gradients
and ``test_limit=0`` would fail only after a whole epoch, so neither may reach training.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from .errors import CourseError


class InvalidSettingError(CourseError, ValueError):
    """A setting outside its allowed values; the message names it and what is allowed."""


@dataclass(frozen=True)
class Allowed:
    """The values one setting may take.

    Attributes:
        kind: ``bool``, ``int``, ``float`` (an int is accepted too) or ``str``.
        low, high: bounds for numbers (None: unbounded); ``low_open``/``high_open`` exclude them.
        optional: None is allowed; ``none_means`` says what it means.
        choices: the allowed strings (a callable, so registries filled later are seen).
    """

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    none_means: str = ""
    choices: Callable[[], Iterable[str]] | None = None

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is allowed (a bool is never a number here, nor NaN or inf)."""
        if value is None:
            return self.optional
        if self.kind is bool or isinstance(value, bool):
            return self.kind is bool and isinstance(value, bool)
        if self.kind is str:
            return isinstance(value, str) and (self.choices is None or value in self.choices())
        allowed_types = (int,) if self.kind is int else (int, float)
        if not isinstance(value, allowed_types) or not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or (value < self.high or (not self.high_open and value == self.high))

    def describe(self) -> str:
        """``"a finite number > 0, or none (no clipping)"``, ``"one of 'adamw', 'sgd'"`` …"""
        if self.kind is bool:
            text = "true or false"
        elif self.kind is str:
            text = "one of " + ", ".join(repr(choice) for choice in self.choices()) if self.choices else "a string"
        else:
            text = "an integer" if self.kind is int else "a finite number"
            if self.low is not None and self.high is not None:
                text += (f" in {'(' if self.low_open else '['}{_number(self.low)}, {_number(self.high)}"
                         f"{')' if self.high_open else ']'}")
            elif self.low is not None:
                text += f" {'>' if self.low_open else '>='} {_number(self.low)}"
            elif self.high is not None:
                text += f" {'<' if self.high_open else '<='} {_number(self.high)}"
        if self.optional:
            text += f", or none{f' ({self.none_means})' if self.none_means else ''}"
        return text


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def check_settings(settings: Mapping[str, object], rules: Mapping[str, Allowed], owner: str = "setting") -> None:
    """Raise :class:`InvalidSettingError` for the first of ``settings`` that its rule rejects,
    naming the field, the value and what is allowed."""
    for name, value in settings.items():
        rule = rules.get(name)
        if rule is not None and not rule.accepts(value):
            raise InvalidSettingError(f"Invalid {owner}: {name}={value!r} is not allowed; "
                                      f"{name} must be {rule.describe()}.")
