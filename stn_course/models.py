"""Spatial transformers and the classifiers built around them (PyTorch).

Conventions
-----------
* Inputs are float ``(N, C, H, W)`` in ``[0, 1]``, *not* normalised. A classifier
  normalises as its first layer (:class:`Normalize`), i.e. *after* the spatial
  transformer has sampled. Zero padding while sampling therefore means "black", the
  true background of MNIST. Sampling an already-normalised image would still pad with
  0, while the normalised background is ``-mean/std`` (about -0.42 for MNIST): zooming
  out or rotating would draw a grey frame around the digit that is not in the data
  (pytorch/tutorials#1117).
* θ maps output (target) coordinates to input (source) coordinates, in the
  normalised ``[-1, 1]`` system of ``affine_grid``/``grid_sample``; ``align_corners``
  is always passed explicitly (default ``False``, PyTorch's default).
* The last layer of every localisation network starts at the identity transform
  (zero weights, identity bias): training starts from "do nothing" and converges.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .geometry import affine_grid, projective_grid, tps_control_points, tps_grid, tps_system_inverse
from .utils import evaluating

TRANSFORMS = ("affine", "projective", "tps")


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, for ``(N, C, H, W)`` input."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={[round(v, 4) for v in self.mean.flatten().tolist()]}, std={[round(v, 4) for v in self.std.flatten().tolist()]}"


class SpatialTransformer(nn.Module):
    """Localisation network → grid generator → sampler (Jaderberg et al., 2015).

    Args:
        localisation: maps the input ``(N, C, H, W)`` to transform parameters
            ``(N, P)``; its last ``nn.Linear`` is initialised to the identity transform.
            ``P`` is 6 (affine θ, row-major 2x3), 8 (projective: the homography's first
            8 entries, the last fixed to 1) or 2K (TPS: the K control points' source
            positions, (x, y) each).
        transform: ``"affine"``, ``"projective"`` or ``"tps"``.
        out_size: ``(H_out, W_out)`` of the output; default: the input's size. Smaller
            than the input downsamples (an attention window).
        align_corners: passed to ``affine_grid``/``grid_sample``.
        padding_mode: ``grid_sample`` padding for samples outside the input.
        tps_grid_size: control points per side for TPS (4 gives the paper's 16).

    Under mixed precision (``torch.autocast``) the localisation network runs in the low
    precision; the parameters, grid and sampling are float32, and so is the output.

    After each forward, ``last_theta`` (parameters, detached) and ``last_grid``
    (``(N, H_out, W_out, 2)``, detached) hold what was used, for plotting.
    """

    def __init__(self, localisation: nn.Module, transform: str = "affine",
                 out_size: tuple[int, int] | None = None, align_corners: bool = False,
                 padding_mode: str = "zeros", tps_grid_size: int = 4) -> None:
        super().__init__()
        if transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
        self.localisation = localisation
        self.transform = transform
        self.out_size = tuple(out_size) if out_size is not None else None
        self.align_corners = align_corners
        self.padding_mode = padding_mode
        if transform == "tps":
            control = tps_control_points(tps_grid_size)
            self.register_buffer("tps_control", control)
            # float64: the system is ill-conditioned enough that float32 costs ~1e-6 in the grid.
            self.register_buffer("tps_inverse", tps_system_inverse(control))
        self.last_theta: torch.Tensor | None = None
        self.last_grid: torch.Tensor | None = None
        self._init_identity()

    @property
    def num_params(self) -> int:
        if self.transform == "affine":
            return 6
        if self.transform == "projective":
            return 8
        return 2 * self.tps_control.shape[0]

    def identity_params(self) -> torch.Tensor:
        """The parameter vector ``(P,)`` of the identity transform."""
        if self.transform == "affine":
            return torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
        if self.transform == "projective":
            return torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
        return self.tps_control.flatten().float()

    def _init_identity(self) -> None:
        last = [module for module in self.localisation.modules() if isinstance(module, nn.Linear)]
        if not last:
            raise ValueError("localisation must end with an nn.Linear producing the transform parameters")
        head = last[-1]
        if head.out_features != self.num_params:
            raise ValueError(f"a {self.transform} transformer needs {self.num_params} parameters, "
                             f"but the localisation's last Linear gives {head.out_features}")
        nn.init.zeros_(head.weight)
        with torch.no_grad():
            head.bias.copy_(self.identity_params())

    def grid(self, params: torch.Tensor, size: torch.Size) -> torch.Tensor:
        """Sampling grid ``(N, H_out, W_out, 2)`` for parameters ``(N, P)`` and output ``size`` (N, C, H, W)."""
        n = size[0]
        if self.transform == "affine":
            return affine_grid(params.view(n, 2, 3), size, self.align_corners)
        if self.transform == "projective":
            matrix = torch.cat([params, params.new_ones(n, 1)], dim=1).view(n, 3, 3)
            return projective_grid(matrix, size, self.align_corners)
        return tps_grid(params.view(n, -1, 2), size, self.align_corners,
                        control=self.tps_control, system_inverse=self.tps_inverse)

    def transform_input(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns ``(output (N, C, H_out, W_out), params (N, P), grid (N, H_out, W_out, 2))``."""
        if not x.is_floating_point():
            raise TypeError(f"input must be a floating-point tensor, got {x.dtype}")
        params = _full_precision(self.localisation(x))
        height, width = self.out_size or x.shape[-2:]
        # Geometry stays in float32 under mixed precision: bfloat16 numbers just below 1 are
        # 1/256 apart, so grid coordinates would be off by up to 0.06 px on a 60-pixel canvas.
        with torch.autocast(x.device.type, enabled=False):
            grid = self.grid(params, torch.Size((x.shape[0], x.shape[1], height, width)))
            output = F.grid_sample(_full_precision(x), grid, mode="bilinear", padding_mode=self.padding_mode,
                                   align_corners=self.align_corners)
        return output, params, grid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, params, grid = self.transform_input(x)
        self.last_theta, self.last_grid = params.detach(), grid.detach()
        return output

    def extra_repr(self) -> str:
        return (f"transform={self.transform!r}, out_size={self.out_size}, "
                f"align_corners={self.align_corners}, padding_mode={self.padding_mode!r}")


def _full_precision(tensor: torch.Tensor) -> torch.Tensor:
    """float16 / bfloat16 → float32; float32 and float64 unchanged."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def _flat_size(module: nn.Module, input_shape: Sequence[int]) -> int:
    with torch.no_grad():
        return module(torch.zeros(1, *input_shape)).flatten(1).shape[1]


def localisation_net(input_shape: Sequence[int], num_params: int, channels: int = 20,
                     hidden: int = 20) -> nn.Sequential:
    """The paper's localisation network: conv 20@5x5 → pool → conv 20@5x5 → FC 20 → parameters.

    Args:
        input_shape: ``(C, H, W)`` of the transformer's input.
        num_params: 6 (affine), 8 (projective) or 32 (TPS with 16 control points).
    """
    features = nn.Sequential(
        nn.Conv2d(input_shape[0], channels, 5), nn.MaxPool2d(2), nn.ReLU(inplace=True),
        nn.Conv2d(channels, channels, 5), nn.ReLU(inplace=True),
        nn.Flatten(),
    )
    return nn.Sequential(
        *features,
        nn.Linear(_flat_size(features, input_shape), hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, num_params),
    )


class ConvClassifier(nn.Module):
    """The baseline CNN: normalise → 2x (conv 5x5 → [batch norm] → ReLU → max-pool 2) → FC → ReLU
    → [dropout] → FC (the parts in brackets only if asked for).

    Args:
        input_shape: ``(C, H, W)``.
        mean, std: the dataset's per-channel statistics (normalisation is the first layer).
        channels: filters of the two convolutions.
        hidden: units of the hidden fully connected layer.
        num_classes: outputs (logits).
        dropout: probability of dropping a hidden unit while training (no parameters).
        batchnorm: batch normalisation after each convolution (in place of its bias).
    """

    def __init__(self, input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
                 channels: tuple[int, int] = (32, 64), hidden: int = 128, num_classes: int = 10,
                 dropout: float = 0.0, batchnorm: bool = False) -> None:
        super().__init__()
        def block(in_channels: int, out_channels: int) -> list[nn.Module]:
            if not batchnorm:
                return [nn.Conv2d(in_channels, out_channels, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            # batch norm's shift replaces the convolution's bias
            return [nn.Conv2d(in_channels, out_channels, 5, padding=2, bias=False), nn.BatchNorm2d(out_channels),
                    nn.ReLU(inplace=True), nn.MaxPool2d(2)]

        features = nn.Sequential(*block(input_shape[0], channels[0]), *block(channels[0], channels[1]), nn.Flatten())
        self.normalize = Normalize(mean, std)
        self.features = features
        self.head = nn.Sequential(
            nn.Linear(_flat_size(features, input_shape), hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.normalize(x)))


class STClassifier(nn.Module):
    """A spatial transformer in front of a classifier: ``classifier(transformer(x))``."""

    def __init__(self, transformer: SpatialTransformer, classifier: nn.Module) -> None:
        super().__init__()
        self.transformer = transformer
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.transformer(x))


class SeriesSTClassifier(nn.Module):
    """Two transformers in series: one on the input image, one on a feature map.

    normalise → ``input_transformer`` → conv 32@5x5 (same size) → ReLU →
    ``feature_transformer`` → pool → conv 64@5x5 → ReLU → pool → FC 128 → FC classes.
    The second transformer's θ acts in the first one's output coordinates (the convolution
    keeps the size), so :func:`compose_affine` maps its region back onto the input.
    """

    def __init__(self, input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
                 num_classes: int = 10, channels: tuple[int, int] = (32, 64), hidden: int = 128) -> None:
        super().__init__()
        c, h, w = input_shape
        self.input_transformer = SpatialTransformer(localisation_net(input_shape, 6))
        self.normalize = Normalize(mean, std)
        self.conv1 = nn.Sequential(nn.Conv2d(c, channels[0], 5, padding=2), nn.ReLU(inplace=True))
        # Its localisation network looks at the features at half resolution: 4x cheaper.
        self.feature_transformer = SpatialTransformer(
            nn.Sequential(nn.MaxPool2d(2), *localisation_net((channels[0], h // 2, w // 2), 6)))
        features = nn.Sequential(
            nn.MaxPool2d(2), nn.Conv2d(channels[0], channels[1], 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(2), nn.Flatten())
        self.head = nn.Sequential(*features, nn.Linear(_flat_size(features, (channels[0], h, w)), hidden),
                                  nn.ReLU(inplace=True), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Sample the raw image, then normalise (zero padding = background); the feature
        # transformer pads ReLU features with 0, which is their "nothing here" value.
        features = self.conv1(self.normalize(self.input_transformer(x)))
        return self.head(self.feature_transformer(features))


class ParallelSTClassifier(nn.Module):
    """Two transformers in parallel on a two-digit canvas, each taking a 28x28 glimpse.

    One digit classifier (shared) reads each glimpse; the output is the joint log-probability
    of the pair, ``log p(first = i) + log p(second = j)`` at index ``10 i + j`` (100 classes),
    so plain cross-entropy trains both digits. Both transformers start at the identity;
    their different targets make them specialise.
    """

    def __init__(self, input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
                 glimpse: tuple[int, int] = (28, 28)) -> None:
        super().__init__()
        self.transformers = nn.ModuleList(
            SpatialTransformer(localisation_net(input_shape, 6), out_size=glimpse) for _ in range(2))
        self.classifier = ConvClassifier((input_shape[0], *glimpse), mean, std, num_classes=10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = (F.log_softmax(self.classifier(transformer(x)), dim=1) for transformer in self.transformers)
        return (first.unsqueeze(2) + second.unsqueeze(1)).flatten(1)


def compose_affine(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """θ of two affine transformers in series, ``(N, 2, 3)`` each: the inner one samples the
    outer one's output, so a point ``p`` reads the input at ``outer(inner(p))``."""
    a_outer, t_outer = outer[..., :2], outer[..., 2:]
    a_inner, t_inner = inner[..., :2], inner[..., 2:]
    return torch.cat([a_outer @ a_inner, a_outer @ t_inner + t_outer], dim=-1)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def st_cnn(input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float], num_classes: int = 10, *,
           transform: str = "affine", window: int | None = None, dropout: float = 0.0,
           batchnorm: bool = False) -> STClassifier:
    """The paper's ST-CNN: a :class:`SpatialTransformer` (``transform``, with
    :func:`localisation_net`) in front of a :class:`ConvClassifier`.

    The classifier's hidden layer is slightly narrower than the CNN's so that the whole
    ST-CNN has about the baseline CNN's number of parameters, as in the paper. The
    transformer's output is ``window`` x ``window`` pixels if given (attention: the
    classifier behind it sees a smaller image), else :func:`attention_window`'s choice.
    ``dropout`` and ``batchnorm`` are the classifier's (see :class:`ConvClassifier`).
    """
    if window is not None and not 4 <= window <= min(input_shape[-2:]):
        raise ValueError(f"window must be between 4 and the input's side {min(input_shape[-2:])}, got {window}")
    params = {"affine": 6, "projective": 8, "tps": 32}[transform]
    out_size = (window, window) if window is not None else attention_window(input_shape)
    transformer = SpatialTransformer(localisation_net(input_shape, params), transform=transform, out_size=out_size)
    classifier_shape = (input_shape[0], *(out_size or input_shape[1:]))
    baseline = count_parameters(ConvClassifier(input_shape, mean, std, num_classes=num_classes, batchnorm=batchnorm))

    # The classifier's size is linear in its hidden units: pick as many as keep the whole
    # ST-CNN at the baseline CNN's parameter count, as in the paper.
    def classifier_size(hidden: int) -> int:
        return count_parameters(ConvClassifier(classifier_shape, mean, std, hidden=hidden, num_classes=num_classes,
                                               batchnorm=batchnorm))

    per_unit = classifier_size(2) - classifier_size(1)
    hidden = max(16, round(1 + (baseline - count_parameters(transformer) - classifier_size(1)) / per_unit))
    classifier = ConvClassifier(classifier_shape, mean, std, hidden=hidden, num_classes=num_classes,
                                dropout=dropout, batchnorm=batchnorm)
    return STClassifier(transformer, classifier)


def attention_window(input_shape: Sequence[int], min_side: int = 60) -> tuple[int, int] | None:
    """Output size of an ST-CNN's transformer: half the input's side for inputs of
    ``min_side`` pixels or more (the 60x60 cluttered MNIST), else None (keep the size).

    On a large canvas with a small digit the transformer acts as attention: it samples a
    30x30 window, so the classifier behind it costs about a quarter of the CNN's.
    """
    height, width = input_shape[-2:]
    return (height // 2, width // 2) if min(height, width) >= min_side else None


def model_summary(model: nn.Module, input_shape: Sequence[int]) -> str:
    """A Keras-style table of ``model``'s layers: name, type, output shape, parameters.

    Runs one forward pass on zeros of shape ``(1, *input_shape)`` and lists every leaf
    module in call order (a module called twice appears twice, its parameters counted once),
    and each :class:`SpatialTransformer` after its localisation network (its row is the
    sampled output). Operations called as functions (``F.relu``) have no row.
    """
    rows: list[tuple[str, str, str, int]] = []
    counted: set[int] = set()
    names = {module: name for name, module in model.named_modules()}

    def record(module: nn.Module, inputs, output) -> None:
        params = 0 if id(module) in counted else \
            sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
        counted.add(id(module))
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else "-"
        rows.append((names[module], type(module).__name__, str(shape), params))

    shown = [m for m in model.modules() if not list(m.children()) or isinstance(m, SpatialTransformer)]
    handles = [m.register_forward_hook(record) for m in shown]
    try:
        with evaluating(model), torch.no_grad():
            device = next(model.parameters()).device
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
    widths = [max(len(str(row[i])) for row in rows + [("layer", "type", "output shape", "parameters")])
              for i in range(3)]
    lines = [f"{'layer':<{widths[0]}}  {'type':<{widths[1]}}  {'output shape':<{widths[2]}}  {'parameters':>10}"]
    lines.append("-" * len(lines[0]))
    lines += [f"{name:<{widths[0]}}  {kind:<{widths[1]}}  {shape:<{widths[2]}}  {params:>10,}"
              for name, kind, shape, params in rows]
    lines.append("-" * len(lines[0]))
    lines.append(f"{'total':<{sum(widths) + 4}}  {count_parameters(model):>10,}")
    return "\n".join(lines)


def transformer_of(model: nn.Module) -> SpatialTransformer | None:
    """The first :class:`SpatialTransformer` inside ``model``, or None."""
    return next((m for m in model.modules() if isinstance(m, SpatialTransformer)), None)


class TutorialSTNet(nn.Module):
    """The network of the PyTorch STN tutorial (MNIST), layer for layer, with one change:
    it normalises *after* its transformer (the tutorial samples normalised images,
    pytorch/tutorials#1117), and it returns logits instead of log-probabilities.

    Localisation: conv 8@7 → pool → ReLU → conv 10@5 → pool → ReLU → FC 32 → ReLU → FC 6;
    classifier: conv 10@5 → pool → ReLU → conv 20@5 → Dropout2d → pool → ReLU → FC 50 →
    ReLU → dropout → FC 10. Input ``(N, 1, 28, 28)`` in [0, 1]. The keyword arguments
    change the widths and the input (see :class:`stn_course.cifar_models.CifarNetA`).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], num_classes: int = 10, *,
                 input_shape: Sequence[int] = (1, 28, 28), localisation_channels: tuple[int, int] = (8, 10),
                 localisation_hidden: int = 32, channels: tuple[int, int] = (10, 20), hidden: int = 50) -> None:
        super().__init__()
        in_channels = input_shape[0]
        features = nn.Sequential(
            nn.Conv2d(in_channels, localisation_channels[0], 7), nn.MaxPool2d(2, 2), nn.ReLU(True),
            nn.Conv2d(*localisation_channels, 5), nn.MaxPool2d(2, 2), nn.ReLU(True), nn.Flatten(),
        )
        localisation = nn.Sequential(*features, nn.Linear(_flat_size(features, input_shape), localisation_hidden),
                                     nn.ReLU(True), nn.Linear(localisation_hidden, 6))
        self.transformer = SpatialTransformer(localisation, "affine", align_corners=False)
        self.normalize = Normalize(mean, std)
        self.conv1 = nn.Conv2d(in_channels, channels[0], 5)
        self.conv2 = nn.Conv2d(*channels, 5)
        self.conv2_drop = nn.Dropout2d(0.5)
        flat = _flat_size(nn.Sequential(self.conv1, nn.MaxPool2d(2), self.conv2, nn.MaxPool2d(2)), input_shape)
        self.fc1 = nn.Linear(flat, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.normalize(self.transformer(x))
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = F.dropout(F.relu(self.fc1(x.flatten(1))), training=self.training)
        return self.fc2(x)
