"""Every classifier of the course by name, for the command line, the recipes and the
notebooks: ``build_classifier("st-cnn-aff", (1, 28, 28), mean, std)``.

:data:`CLASSIFIERS` maps a name to a builder ``builder(input_shape, mean, std,
num_classes=..., **options)``. Its names are :data:`stn_course.names.MODEL_NAMES`, and the
options each builder takes (``window``, ``dropout``, ``base_width``...: its signature's keywords)
are those :data:`stn_course.names.MODEL_OPTIONS` gives it; both are checked at import, so
adding a model is a name in ``names.py`` and one line here.
"""
from __future__ import annotations

import inspect
from functools import partial
from typing import Callable, Sequence

from torch import nn

from .cifar_models import CifarNetA, CifarNetB, CifarResNet
from .models import ConvClassifier, ParallelSTClassifier, SeriesSTClassifier, TutorialSTNet, st_cnn
from .names import MODEL_NAMES, MODEL_OPTIONS, ModelOptions, require_names
from .traffic_sign_models import (BN_BASE_WIDTH, HIDDEN, WIDE_HIDDEN, WIDE_WIDTHS, WIDTHS, BNTrafficSignNet,
                                  TrafficSignNet)
from .vision_transformer import st_vit, vit

Builder = Callable[..., nn.Module]


def parallel_st_classifier(input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
                           num_classes: int = 100) -> nn.Module:
    """:class:`~stn_course.models.ParallelSTClassifier`: reads two digits, so 100 classes."""
    if num_classes != 100:
        raise ValueError(f"st-parallel reads two digits: it needs the 100 classes of two-digit-mnist, got {num_classes}")
    return ParallelSTClassifier(input_shape, mean, std)


def tutorial_stn(input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
                 num_classes: int = 10) -> nn.Module:
    """:class:`~stn_course.models.TutorialSTNet` for ``(1, H, W)`` MNIST-like images."""
    if len(input_shape) != 3 or input_shape[0] != 1:
        raise ValueError(f"tutorial-stn takes (1, H, W) MNIST images, got {tuple(input_shape)}")
    return TutorialSTNet(mean, std, num_classes=num_classes, input_shape=input_shape)


def cifar_builder(name: str, model: Callable[..., nn.Module]) -> Builder:
    """A builder for a CIFAR-10 network ``model(mean, std, num_classes=...)``: checks that
    the input is ``(3, 32, 32)``."""
    def build(input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
              num_classes: int = 10) -> nn.Module:
        if tuple(input_shape) != (3, 32, 32):
            raise ValueError(f"{name} takes (3, 32, 32) CIFAR-10 images, got {tuple(input_shape)}")
        return model(mean, std, num_classes=num_classes)
    return build


def traffic_sign_builder(transformers: bool, widths: Sequence[int] = WIDTHS, hidden: int = HIDDEN,
                         feature_block: int = 1) -> Builder:
    """A builder for :class:`~stn_course.traffic_sign_models.TrafficSignNet` (GTSRB), with
    its two spatial transformers or without, at the given widths, the second transformer after
    block ``feature_block``. It standardises each image by its own mean and spread, so the
    dataset's ``mean``/``std`` are not used."""
    def build(input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
              num_classes: int = 43) -> nn.Module:
        return TrafficSignNet(input_shape, num_classes, transformers=transformers, widths=widths, hidden=hidden,
                              feature_block=feature_block)
    return build


def bn_traffic_sign_cnn(input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
                        num_classes: int = 43, base_width: int = BN_BASE_WIDTH, equalize: bool = False) -> nn.Module:
    """:class:`~stn_course.traffic_sign_models.BNTrafficSignNet` without transformers (``gtsrb-bn-cnn``)."""
    return BNTrafficSignNet(input_shape, mean, std, num_classes, transformers=False, base_width=base_width,
                            equalize=equalize)


def bn_traffic_sign_st_cnn(input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
                           num_classes: int = 43, base_width: int = BN_BASE_WIDTH, st_after: int = 1,
                           equalize: bool = False) -> nn.Module:
    """:class:`~stn_course.traffic_sign_models.BNTrafficSignNet` with its two transformers (``gtsrb-bn-st-cnn``)."""
    return BNTrafficSignNet(input_shape, mean, std, num_classes, transformers=True, base_width=base_width,
                            st_after=st_after, equalize=equalize)


#: name → builder; the order is the command line's and the docs'
CLASSIFIERS: dict[str, Builder] = {
    "cnn": ConvClassifier,
    "st-cnn-aff": partial(st_cnn, transform="affine"),
    "st-cnn-proj": partial(st_cnn, transform="projective"),
    "st-cnn-tps": partial(st_cnn, transform="tps"),
    "st-series": SeriesSTClassifier,
    "st-parallel": parallel_st_classifier,
    "tutorial-stn": tutorial_stn,
    "cifar-net-a": cifar_builder("cifar-net-a", CifarNetA),
    "cifar-net-b": cifar_builder("cifar-net-b", CifarNetB),
    "cifar-resnet": cifar_builder("cifar-resnet", partial(CifarResNet, transformer=False)),
    "cifar-st-resnet": cifar_builder("cifar-st-resnet", partial(CifarResNet, transformer=True)),
    "gtsrb-cnn": traffic_sign_builder(transformers=False),
    "gtsrb-st-cnn": traffic_sign_builder(transformers=True),
    # Moodstocks' widths and second-transformer placement, for 48x48 inputs (gtsrb48) on a GPU
    "gtsrb-cnn-wide": traffic_sign_builder(transformers=False, widths=WIDE_WIDTHS, hidden=WIDE_HIDDEN),
    "gtsrb-st-cnn-wide": traffic_sign_builder(transformers=True, widths=WIDE_WIDTHS, hidden=WIDE_HIDDEN,
                                              feature_block=2),
    # five 3x3 convolutions with batch norm, normalised by the dataset's statistics (benchmarks/gtsrb_selection.py)
    "gtsrb-bn-cnn": bn_traffic_sign_cnn,
    "gtsrb-bn-st-cnn": bn_traffic_sign_st_cnn,
    "vit": vit,
    "st-vit": st_vit,
}
require_names("registry.CLASSIFIERS", CLASSIFIERS, MODEL_NAMES, "MODEL_NAMES")


def _check_options() -> None:
    """Raise at import unless each builder's keyword options are those names.MODEL_OPTIONS gives its model."""
    for option, takers in MODEL_OPTIONS.items():
        found = tuple(name for name, builder in CLASSIFIERS.items() if option in inspect.signature(builder).parameters)
        if found != takers:
            raise RuntimeError(f"the builders taking {option!r} are {found}, but names.ModelOptions says {takers}: "
                               f"change one to match the other")


_check_options()


def build_classifier(name: str, input_shape: Sequence[int], mean: Sequence[float],
                     std: Sequence[float], num_classes: int = 10, options: ModelOptions = ModelOptions()) -> nn.Module:
    """The model ``name`` (one of :data:`~stn_course.names.MODEL_NAMES`) for inputs
    ``(C, H, W)`` = ``input_shape``.

    ``"cnn"``, ``"st-cnn-aff"``, ``"st-cnn-proj"``, ``"st-cnn-tps"`` are the paper's CNN and
    ST-CNNs (:func:`~stn_course.models.st_cnn`); two transformers in series
    (``"st-series"``) or in parallel (``"st-parallel"``, for two-digit MNIST); the PyTorch
    STN tutorial's network (``"tutorial-stn"``); the CIFAR-10 networks of the course
    material, ``"cifar-net-a"``, ``"cifar-net-b"``; and the course's strong CIFAR-10 model
    with and without its transformer, ``"cifar-st-resnet"``, ``"cifar-resnet"``
    (:mod:`stn_course.cifar_models`).

    ``options`` (:class:`~stn_course.names.ModelOptions`, e.g. ``ModelOptions(window=28)``,
    or a run's :attr:`~stn_course.recipes.RunConfig.model_options`), for the models that take
    them (:data:`~stn_course.names.MODEL_OPTIONS`): ``window``, the ST-CNNs' transformer
    output side; ``dropout`` and ``batchnorm``, of the CNN and the ST-CNNs' classifier. An
    option left at its default is not passed.
    """
    if name not in CLASSIFIERS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    options.check_model(name)
    return CLASSIFIERS[name](input_shape, mean, std, num_classes=num_classes, **options.changed())
