"""When a spatial transformer goes wrong: the usual mistakes as code, each one an option of
:class:`LearnersTransformer` (an affine transformer written the way the issue trackers of the
well-known implementations show them), and the seven cases of the clinic (:data:`CASES`):
for each, the runs that show the symptom and its fix. :mod:`stn_course.health` diagnoses them;
``benchmarks/clinic_runs.py`` trains and records them.

The mistakes:

* ``identity_init=False``: the localisation's last layer keeps PyTorch's random initialisation,
  so θ starts far from "do nothing" (a magnified, often mirrored patch);
* ``normalise_first``: the image is normalised *before* sampling, so zero padding is not the
  background (a grey frame, pytorch/tutorials#1117);
* ``align_corners=(grid, sample)`` with ``grid != sample``: ``affine_grid`` and ``grid_sample``
  disagree, and the identity scales the image by W/(W-1) about the centre;
* ``integer_theta``: θ written into an integer tensor, truncated where it is written (and cut
  off from the gradient: the localisation never learns);
* ``bound``: θ = identity + bound * tanh(raw), a bounded θ (not a mistake: a choice, compared
  with the unbounded one).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .models import ConvClassifier, Normalize, localisation_net

IDENTITY_PARAMS = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class LearnersTransformer(nn.Module):
    """An affine spatial transformer with the usual mistakes as options (see the module).

    Like the course's :class:`~stn_course.models.SpatialTransformer` it stores the θ of its last
    forward in ``last_theta`` ``(N, 2, 3)``, which is all :func:`stn_course.health.health_check`
    needs. Its input is ``(N, C, H, W)`` in [0, 1] (or normalised, with ``normalise_first``).
    """

    def __init__(self, input_shape: Sequence[int], *, identity_init: bool = True, bound: float | None = None,
                 align_corners: tuple[bool, bool] = (False, False), integer_theta: bool = False) -> None:
        super().__init__()
        self.localisation = localisation_net(input_shape, 6)
        self.bound, self.corners, self.integer_theta = bound, tuple(align_corners), integer_theta
        head = self.localisation[-1]
        if identity_init:
            nn.init.zeros_(head.weight)
            with torch.no_grad():  # a bounded θ is the identity at raw = 0
                head.bias.copy_(torch.zeros(6) if bound else torch.tensor(IDENTITY_PARAMS))
        self.last_theta: torch.Tensor | None = None

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """θ ``(N, 2, 3)`` for images ``x``, with this transformer's mistakes."""
        params = self.localisation(x)
        if self.bound:
            params = params.new_tensor(IDENTITY_PARAMS) + self.bound * torch.tanh(params)
        if self.integer_theta:
            theta = torch.zeros(len(x), 2, 3, dtype=torch.long, device=x.device)
            theta[:] = params.view(-1, 2, 3)  # truncated toward zero, and no gradient flows back
            return theta
        return params.view(-1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.theta(x)
        self.last_theta = theta.detach()
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=self.corners[0])
        return F.grid_sample(x, grid, align_corners=self.corners[1])

    def extra_repr(self) -> str:
        return f"bound={self.bound}, align_corners={self.corners}, integer_theta={self.integer_theta}"


class ClinicNet(nn.Module):
    """A :class:`LearnersTransformer` in front of the course's CNN (:class:`ConvClassifier`).

    With ``normalise_first`` the image is normalised before the transformer samples it (the
    mistake) and the classifier then takes it as it comes; else the classifier normalises what
    the transformer sampled (the course's order). The other keywords go to the transformer.
    """

    def __init__(self, input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
                 num_classes: int = 10, *, normalise_first: bool = False, hidden: int = 64, **mistakes) -> None:
        super().__init__()
        channels = len(mean)
        self.normalise_first = Normalize(mean, std) if normalise_first else nn.Identity()
        self.transformer = LearnersTransformer(input_shape, **mistakes)
        after = ([0.0] * channels, [1.0] * channels) if normalise_first else (mean, std)
        self.classifier = ConvClassifier(input_shape, *after, hidden=hidden, num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.transformer(self.normalise_first(x)))


@dataclass(frozen=True)
class Case:
    """One case of the clinic: a dataset, and its runs, each a label → the :class:`ClinicNet`
    options and training settings (``lr``, ``localisation_lr_scale``, ``max_grad_norm``)."""

    title: str
    dataset: str
    runs: dict[str, dict] = field(default_factory=dict)


#: the course's settings of a short run: AdamW 2e-3, localisation 10x slower, gradients clipped at 5
SOUND = {"lr": 2e-3, "localisation_lr_scale": 0.1, "max_grad_norm": 5.0}
#: the localisation's learning rate 25x the classifier's (5e-2), unclipped: θ blows up in a few dozen steps
TOO_HIGH = {"lr": 2e-3, "localisation_lr_scale": 25.0, "max_grad_norm": None}
#: the seven cases, each with its broken run(s) and the fix (the runs' labels say which)
CASES: dict[str, Case] = {
    "lr-too-high": Case("the localisation's learning rate far too high", "rts-mnist",
                        {"broken": TOO_HIGH, "fixed": SOUND}),
    "no-identity-init": Case("no identity initialisation", "rts-mnist", {
        "broken": {**SOUND, "identity_init": False}, "fixed": SOUND}),
    "normalise-first": Case("normalising before sampling", "rts-mnist", {
        "broken": {**SOUND, "normalise_first": True}, "fixed": SOUND}),
    "align-corners": Case("align_corners different in affine_grid and grid_sample", "mnist", {
        "broken": {**SOUND, "align_corners": (False, True)}, "fixed": SOUND}),
    "integer-theta": Case("θ written into an integer tensor", "rts-mnist", {
        "broken": {**SOUND, "integer_theta": True}, "fixed": SOUND}),
    "bounded-theta": Case("bounded θ (tanh) against unbounded, at a far too high localisation rate", "rts-mnist", {
        "unbounded": TOO_HIGH, "bounded": {**TOO_HIGH, "bound": 0.5}}),
    "nothing-to-undo": Case("a transformer with nothing to undo (plain MNIST)", "mnist", {"as-is": SOUND}),
}
#: the keys of a run's settings that are training settings, not :class:`ClinicNet` options
TRAINING_SETTINGS = ("lr", "localisation_lr_scale", "max_grad_norm")


def build_run(case: str, label: str, input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
              num_classes: int = 10) -> tuple[ClinicNet, torch.optim.Optimizer, float | None]:
    """The model, its optimiser (AdamW; the localisation in its own group) and its gradient
    clipping for run ``label`` of ``case``."""
    settings = CASES[case].runs[label]
    options = {key: value for key, value in settings.items() if key not in TRAINING_SETTINGS}
    model = ClinicNet(input_shape, mean, std, num_classes, **options)
    lr = settings["lr"]
    localisation = list(model.transformer.localisation.parameters())
    rest = [p for name, p in model.named_parameters() if not name.startswith("transformer.localisation.")]
    optimizer = torch.optim.AdamW([{"params": rest, "lr": lr, "name": "classifier"},
                                   {"params": localisation, "lr": lr * settings["localisation_lr_scale"],
                                    "name": "localisation"}], lr=lr)
    return model, optimizer, settings["max_grad_norm"]
