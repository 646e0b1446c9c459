"""The course's vocabulary, defined once: the names of its datasets, models, variants,
optimisers, schedules and commands, and each model option with the models that take it.

This module imports no torch, so the command line's ``--help`` answers at once; the command
line (:mod:`stn_course.__main__`), the registry of models (:mod:`stn_course.registry`), the
recipes (:mod:`stn_course.recipes`) and the training code read their names from here, and the
registry and the recipes check at import that their dictionaries hold exactly these names.

A model option is a setting of a run that reaches the model's builder (e.g. ``window``, the
side of an ST-CNN's transformer output). Adding one touches this file (a field of
:class:`ModelOptions`: its default, allowed values and the models that take it), the
:class:`~stn_course.recipes.RunConfig` field of the same name, and the builders that take it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Iterable

from .validation import Allowed, InvalidSettingError, check_settings

#: dataset names, in the order of :data:`stn_course.recipes.DATASETS`
DATASET_NAMES = ("mnist", "rot-mnist", "rts-mnist", "proj-mnist", "elastic-mnist", "clutter-mnist",
                 "two-digit-mnist", "cifar10", "gtsrb", "gtsrb-val", "gtsrb48")
#: model names, in the order of :data:`stn_course.registry.CLASSIFIERS` (the command line's and the docs')
MODEL_NAMES = ("cnn", "st-cnn-aff", "st-cnn-proj", "st-cnn-tps", "st-series", "st-parallel",
               "tutorial-stn", "cifar-net-a", "cifar-net-b", "cifar-resnet", "cifar-st-resnet",
               "gtsrb-cnn", "gtsrb-st-cnn", "gtsrb-cnn-wide", "gtsrb-st-cnn-wide", "gtsrb-bn-cnn", "gtsrb-bn-st-cnn",
               "vit", "st-vit")
#: named changes to a default recipe, in the order of :data:`stn_course.recipes.VARIANTS`
VARIANT_NAMES = ("momentum", "no-augment", "no-augment-drop", "full-localisation-lr", "window-28")
#: the optimisers a run may use
OPTIMIZER_NAMES = ("adamw", "sgd")
#: the learning-rate schedules (see :func:`stn_course.experiments.make_scheduler`)
SCHEDULE_NAMES = ("onecycle", "constant", "final-drop")
#: the commands of ``python -m stn_course``
COMMAND_NAMES = ("train", "errors", "diagnose", "jitter", "report", "record-evolution")

#: the paper's CNN-based classifiers, whose classifier takes dropout and batch normalisation
_ST_CNNS = ("st-cnn-aff", "st-cnn-proj", "st-cnn-tps")
#: the batch-norm traffic-sign networks (stn_course.traffic_sign_models.BNTrafficSignNet)
_BN_SIGN_NETS = ("gtsrb-bn-cnn", "gtsrb-bn-st-cnn")


def _option(default: object, allowed: Allowed, models: tuple[str, ...]) -> object:
    """A :class:`ModelOptions` field: its default, allowed values, and the models that take it."""
    return field(default=default, metadata={"allowed": allowed, "models": models})


@dataclass(frozen=True)
class ModelOptions:
    """The options of a run that reach its model's builder, each at its default unless set.

    Attributes:
        window: side of an ST-CNN's (or ST-ViT's) transformer output (None: the model's default).
        dropout: dropout before the classifier's last layer (CNN and ST-CNNs).
        batchnorm: batch normalisation after each of the classifier's convolutions (CNN and ST-CNNs).
        base_width: channels of the first block of the batch-norm traffic-sign networks (the five
            convolutions: 1, 1, 2, 2, 4 times as many).
        st_after: the block (1 or 2) that ``gtsrb-bn-st-cnn``'s second transformer follows.
        equalize: the batch-norm traffic-sign networks equalise each image's histogram first.
    """

    window: int | None = _option(None, Allowed(int, low=1, optional=True, none_means="the model's default"),
                                 (*_ST_CNNS, "st-vit"))
    dropout: float = _option(0.0, Allowed(float, low=0, high=1, high_open=True), ("cnn", *_ST_CNNS))
    batchnorm: bool = _option(False, Allowed(bool), ("cnn", *_ST_CNNS))
    base_width: int = _option(64, Allowed(int, low=1), _BN_SIGN_NETS)
    st_after: int = _option(1, Allowed(int, low=1, high=2), ("gtsrb-bn-st-cnn",))
    equalize: bool = _option(False, Allowed(bool), _BN_SIGN_NETS)

    def __post_init__(self) -> None:
        check_settings(self.as_dict(), MODEL_OPTION_RULES, owner="model option")

    def as_dict(self) -> dict[str, object]:
        return {option.name: getattr(self, option.name) for option in fields(self)}

    def changed(self) -> dict[str, object]:
        """The options set away from their defaults (a builder is passed only these)."""
        return {option.name: getattr(self, option.name) for option in fields(self)
                if getattr(self, option.name) != option.default}

    def check_model(self, model: str, owner: str = "model option") -> None:
        """Raise :class:`~stn_course.validation.InvalidSettingError` for an option set for a
        model that does not take it, naming the option and the models that do."""
        for option, value in self.changed().items():
            takers = MODEL_OPTIONS[option]
            if model not in takers:
                raise InvalidSettingError(
                    f"Invalid {owner}: {option}={value!r} is not an option of model {model!r}; "
                    f"{option} is an option of {', '.join(takers)} only.")


#: each model option → the models whose builder takes it
MODEL_OPTIONS: dict[str, tuple[str, ...]] = {option.name: option.metadata["models"] for option in fields(ModelOptions)}
#: each model option → its allowed values
MODEL_OPTION_RULES: dict[str, Allowed] = {option.name: option.metadata["allowed"] for option in fields(ModelOptions)}
#: each model option → its default
MODEL_OPTION_DEFAULTS: dict[str, object] = {option.name: option.default for option in fields(ModelOptions)}


def require_names(owner: str, keys: Iterable[str], names: tuple[str, ...], vocabulary: str) -> None:
    """Raise, at import, if ``owner`` (e.g. ``"registry.CLASSIFIERS"``) does not name exactly
    ``names`` (e.g. ``names.MODEL_NAMES``), in the same order."""
    keys = tuple(keys)
    if keys != names:
        missing, extra = [n for n in names if n not in keys], [k for k in keys if k not in names]
        raise RuntimeError(f"{owner} must name exactly stn_course.names.{vocabulary}, in its order: "
                           f"missing {missing}, not in {vocabulary} {extra}"
                           f"{'' if missing or extra else ', order differs'}. Add a new name to names.py too.")


_UNKNOWN = sorted({model for takers in MODEL_OPTIONS.values() for model in takers} - set(MODEL_NAMES))
if _UNKNOWN:
    raise RuntimeError(f"names.ModelOptions gives options to models not in MODEL_NAMES: {_UNKNOWN}")
