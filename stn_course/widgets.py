"""The θ explorer: sliders for an affine θ, and the picture it makes, redrawn live.

>>> explorer = theta_explorer(image)   # last expression of a cell: shows the widget
>>> explorer.theta                      # the current θ, a (2, 3) NumPy array

The drawing is :func:`stn_course.figures.sampling.plot_theta_view`, a plain function of the
parameters; the widget only wires controls to it. Controls (each with a CSS class, so
a browser test can find it):

* sliders ``stn-angle`` (degrees), ``stn-scale-x``, ``stn-scale-y``, ``stn-shear``,
  ``stn-tx``, ``stn-ty``: the parameters of :func:`stn_course.parameterisation.theta_from_params`;
* ``stn-mode`` toggles between those sliders and six number fields ``stn-theta-00`` ...
  ``stn-theta-12`` for the raw entries of θ; both stay in sync (through
  ``theta_from_params`` / ``params_from_theta``);
* ``stn-align-corners`` (checkbox), ``stn-padding`` (dropdown), ``stn-reset`` (button);
* ``stn-theta-label``: a text line with θ and the sampled region's corners;
* ``stn-view``: the Output holding the three-panel figure;
* ``stn-message``: a line under the figure: why a typed value was refused or clamped,
  or why the output is black (a degenerate θ, or a region outside the input).

Typed raw θ values are kept exactly (0.777 stays 0.777): the sliders follow θ, but when
the browser snaps a slider to its 0.01 step and sends the snapped value back, that echo
does not change θ. The raw fields are text fields (:class:`NumberField`), so the kernel sees
what was typed: text that is not a finite number (``abc``, ``0.5x``, ``1e400``, NaN, inf) is
refused, the last good θ comes back, and the red message under the figure says so.
"""
from __future__ import annotations

import base64
import html
import io
import sys
import time
from typing import Dict, Optional, Sequence

import ipywidgets as widgets
import numpy as np
import traitlets
from matplotlib.figure import Figure

from stn_course import parameterisation
from stn_course.figures.sampling import plot_theta_view
from stn_course.plot import as_hwc, format_theta

#: Slider settings: name -> (description, min, max, step, default, CSS class).
SLIDERS = {
    "angle": ("angle (°)", -180.0, 180.0, 1.0, 0.0, "stn-angle"),
    "scale_x": ("scale x", -2.0, 2.0, 0.01, 1.0, "stn-scale-x"),
    "scale_y": ("scale y", -2.0, 2.0, 0.01, 1.0, "stn-scale-y"),
    "shear": ("shear", -1.0, 1.0, 0.01, 0.0, "stn-shear"),
    "tx": ("translate x", -1.5, 1.5, 0.01, 0.0, "stn-tx"),
    "ty": ("translate y", -1.5, 1.5, 0.01, 0.0, "stn-ty"),
}
PARAMETERS_MODE = "parameters"
RAW_MODE = "raw θ"
#: |det| of θ's 2x2 part below which the explorer explains a degenerate (flat) θ.
DEGENERATE_DET = 1e-9


def downsample(image, max_side: Optional[int]) -> np.ndarray:
    """Shrink an image by block averaging (an integer factor) until both sides are at
    most ``max_side``; returns (H, W, C) float64. ``None`` keeps the size."""
    img = as_hwc(image)
    if not max_side or max(img.shape[:2]) <= max_side:
        return img
    f = int(np.ceil(max(img.shape[:2]) / max_side))
    h, w = img.shape[0] // f, img.shape[1] // f
    return img[:h * f, :w * f].reshape(h, f, w, f, img.shape[2]).mean(axis=(1, 3))


def _theta_text(theta: np.ndarray) -> str:
    """θ with 3 decimals; a typed 1e308 overflows np.round to inf, which is fine to show."""
    with np.errstate(over="ignore", invalid="ignore"):
        return format_theta(theta, 3)


def _enable_colab_widgets() -> None:
    """Inside Colab, third-party widgets need Colab's custom widget manager."""
    if "google.colab" in sys.modules:  # pragma: no cover - only on Colab
        from google.colab import output

        output.enable_custom_widget_manager()


class NumberField(widgets.Text):
    """A text field for one number: the browser sends the text as typed (a ``FloatText``
    drops ``abc``, reads ``0.5x`` as 0.5 and never sends ``1e400``), and the kernel decides.
    A number assigned from Python is shown exactly (``str``: 0.777 becomes ``"0.777"``)."""

    value = traitlets.CUnicode("", help="the field's text (a number assigned becomes its str)").tag(sync=True)


def parse_number(text: str) -> Optional[float]:
    """The finite number ``text`` spells (``"0.5"``, ``" -1e-3 "``), else None (``"abc"``,
    ``"0.5x"``, ``"1e400"``, ``"nan"``, ``"inf"``, ``""``)."""
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    return value if np.isfinite(value) else None


class ThetaExplorer(widgets.VBox):
    """An ipywidgets container: θ controls on the left, the θ view below.

    Attributes worth reading from a later cell or a test: :attr:`theta` (2, 3),
    :attr:`params` (dict), :attr:`output_image` (the current output, (Ho, Wo, C)),
    :attr:`corners` (sampled region, input pixels), :attr:`render_count`,
    :attr:`last_render_ms`, and the controls :attr:`sliders`, :attr:`raw_fields`,
    :attr:`mode`, :attr:`align_corners_box`, :attr:`padding`, :attr:`view`.
    """

    def __init__(self, image, align_corners: bool = False, padding_mode: str = "zeros",
                 out_hw: Optional[Sequence[int]] = None, max_side: Optional[int] = 160):
        self.image = downsample(image, max_side)
        self.out_hw = tuple(out_hw) if out_hw is not None else None
        self._theta = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        self._syncing = False
        # Slider values last set from θ: a browser echo of one of them, snapped to the
        # slider's step, must not replace the exact θ it came from.
        self._synced_values: Dict[str, float] = {}
        self._notes: list = []  # lines for the message under the figure
        self._fig = Figure(figsize=(11.0, 4.0), dpi=72, layout="constrained")
        self.render_count = 0
        self.last_render_ms = float("nan")
        self.output_image: Optional[np.ndarray] = None
        self.corners: Optional[np.ndarray] = None

        self.sliders = self._make_sliders()
        self.raw_fields = self._make_raw_fields()
        self.mode = widgets.ToggleButtons(options=[PARAMETERS_MODE, RAW_MODE], value=PARAMETERS_MODE,
                                          tooltips=["angle, scales, shear, translation", "the six entries of θ"],
                                          style={"button_width": "100px"})
        self.mode.add_class("stn-mode")
        self.mode.observe(self._on_mode_change, names="value")

        self.align_corners_box = widgets.Checkbox(value=bool(align_corners), description="align_corners",
                                                  indent=False)
        self.align_corners_box.add_class("stn-align-corners")
        self.align_corners_box.observe(self._on_setting_change, names="value")

        self.padding = widgets.Dropdown(options=["zeros", "border", "reflection"], value=padding_mode,
                                        description="padding", layout=widgets.Layout(width="200px"))
        self.padding.add_class("stn-padding")
        self.padding.observe(self._on_setting_change, names="value")

        self.reset_button = widgets.Button(description="reset", icon="undo",
                                           layout=widgets.Layout(width="90px"))
        self.reset_button.add_class("stn-reset")
        self.reset_button.on_click(lambda _: self.reset())

        self.label = widgets.HTML()
        self.label.add_class("stn-theta-label")
        self.view = widgets.Output(layout=widgets.Layout(min_height="300px"))
        self.view.add_class("stn-view")
        self.message = widgets.HTML()
        self.message.add_class("stn-message")

        super().__init__(self._layout())
        self.add_class("stn-theta-explorer")
        self._render()

    # -- controls --------------------------------------------------------------
    def _make_sliders(self) -> Dict[str, widgets.FloatSlider]:
        """One FloatSlider per parameter of SLIDERS, each with its CSS class."""
        style = {"description_width": "90px"}
        wide = widgets.Layout(width="360px")
        sliders: Dict[str, widgets.FloatSlider] = {}
        for name, (desc, lo, hi, step, default, css) in SLIDERS.items():
            s = widgets.FloatSlider(value=default, min=lo, max=hi, step=step, description=desc,
                                    continuous_update=True, readout_format=".2f", style=style,
                                    layout=wide)
            s.add_class(css)
            s.observe(self._on_param_change, names="value")
            sliders[name] = s
        return sliders

    def _make_raw_fields(self) -> Dict[str, NumberField]:
        """Six number fields ``"00"`` ... ``"12"`` for the raw entries of θ (text fields, so
        that the kernel sees bad text and says so)."""
        fields: Dict[str, NumberField] = {}
        for i in range(2):
            for j in range(3):
                key = f"{i}{j}"
                f = NumberField(value=float(self._theta[i, j]), continuous_update=False,
                                description=f"θ[{i},{j}]", style={"description_width": "45px"},
                                layout=widgets.Layout(width="150px"))
                f.add_class(f"stn-theta-{key}")
                f.observe(self._on_raw_change, names="value")
                fields[key] = f
        return fields

    def _layout(self) -> list:
        """The explorer's rows: settings, sliders (or raw fields), label, view, message."""
        s = self.sliders
        self.param_box = widgets.HBox([
            widgets.VBox([s["angle"], s["scale_x"], s["scale_y"]]),
            widgets.VBox([s["shear"], s["tx"], s["ty"]]),
        ])
        self.raw_box = widgets.VBox([
            widgets.HBox([self.raw_fields[f"0{j}"] for j in range(3)]),
            widgets.HBox([self.raw_fields[f"1{j}"] for j in range(3)]),
        ], layout=widgets.Layout(display="none"))
        settings = widgets.HBox([self.mode, self.align_corners_box, self.padding, self.reset_button],
                                layout=widgets.Layout(align_items="center", flex_flow="row wrap"))
        return [settings, self.param_box, self.raw_box, self.label, self.view, self.message]

    # -- state ---------------------------------------------------------------
    @property
    def theta(self) -> np.ndarray:
        """The current θ (a copy), shape (2, 3)."""
        return self._theta.copy()

    @property
    def params(self) -> dict:
        """The slider values: angle, scale_x, scale_y, shear, tx, ty."""
        return {name: float(s.value) for name, s in self.sliders.items()}

    @property
    def align_corners(self) -> bool:
        return bool(self.align_corners_box.value)

    @property
    def padding_mode(self) -> str:
        return str(self.padding.value)

    def set_theta(self, theta) -> None:
        """Set θ directly (as if typed in raw mode); the sliders follow.

        Accepts a (2, 3) θ (or (1, 2, 3)), or a homogeneous (3, 3) matrix whose last row
        is [0, 0, 1]. The explorer draws affine transforms only, so a projective (3, 3)
        matrix is refused with a ValueError, as are other shapes and NaN or inf.
        """
        theta = self._affine_theta(theta)
        self._set_raw_fields(theta)
        self._theta = theta
        self._sync_sliders_from_theta()
        self._render()

    @staticmethod
    def _affine_theta(theta) -> np.ndarray:
        """``theta`` as a finite (2, 3) float64 array, or a ValueError saying what is wanted."""
        m = np.array(theta, dtype=np.float64)
        wanted = "θ of shape (2, 3), or a (3, 3) matrix with last row [0, 0, 1]"
        if m.shape == (1, 2, 3):
            m = m[0]
        if m.shape == (3, 3):
            if not np.allclose(m[2], [0.0, 0.0, 1.0], rtol=0, atol=1e-12):
                raise ValueError(f"set_theta wants {wanted}: this (3, 3) matrix is projective "
                                 f"(last row {m[2].tolist()}), and the explorer shows affine θ only")
            m = m[:2]
        if m.shape != (2, 3):
            raise ValueError(f"set_theta wants {wanted}, got shape {m.shape}")
        if not np.isfinite(m).all():
            raise ValueError(f"set_theta wants finite numbers, got {m.tolist()}")
        return m

    def reset(self) -> None:
        """Back to the identity θ."""
        self._syncing = True
        try:
            for name, s in self.sliders.items():
                s.value = SLIDERS[name][4]
        finally:
            self._syncing = False
        self._on_param_change()

    # -- syncing ---------------------------------------------------------------
    def _theta_from_sliders(self) -> np.ndarray:
        p = self.params
        return np.asarray(parameterisation.theta_from_params(angle=p["angle"], scale=(p["scale_x"], p["scale_y"]),
                                                    shear=p["shear"], translation=(p["tx"], p["ty"])),
                          dtype=np.float64).reshape(2, 3)

    def _set_raw_fields(self, theta: np.ndarray) -> None:
        self._syncing = True
        try:
            for key, f in self.raw_fields.items():
                f.value = float(theta[int(key[0]), int(key[1])])
        finally:
            self._syncing = False

    def _sync_sliders_from_theta(self) -> None:
        """Move the sliders to θ's parameters; note those beyond a slider's range."""
        q = parameterisation.params_from_theta(self._theta)
        values = {"angle": q["angle"], "scale_x": q["scale"][0], "scale_y": q["scale"][1],
                  "shear": q["shear"], "tx": q["translation"][0], "ty": q["translation"][1]}
        self._syncing = True
        try:
            for name, v in values.items():
                slider = self.sliders[name]
                slider.value = float(v)  # traitlets clips it to the slider's range
                self._synced_values[name] = float(slider.value)
                if not slider.min <= v <= slider.max:
                    self._notes.append(f"{SLIDERS[name][0]} = {v:.4g} is beyond its slider "
                                       f"[{slider.min:g}, {slider.max:g}]: the slider shows it clamped, "
                                       f"θ is kept as typed.")
        finally:
            self._syncing = False

    def _is_echo(self, change) -> bool:
        """A slider change that only snaps a value set from θ to the slider's step."""
        if not change or change.get("owner") not in self.sliders.values():
            return False
        name = next(n for n, s in self.sliders.items() if s is change["owner"])
        synced = self._synced_values.get(name)
        return synced is not None and abs(change["new"] - synced) <= SLIDERS[name][3] / 2 + 1e-12

    def _on_param_change(self, change=None) -> None:
        if self._syncing or self._is_echo(change):
            return
        self._synced_values.clear()
        self._theta = self._theta_from_sliders()
        self._syncing = True
        try:
            for key, f in self.raw_fields.items():
                f.value = round(float(self._theta[int(key[0]), int(key[1])]), 6)
        finally:
            self._syncing = False
        for name, s in self.sliders.items():
            if name != "angle" and s.value in (s.min, s.max):  # the full circle is no limit
                self._notes.append(f"{SLIDERS[name][0]} is at the end of its range [{s.min:g}, {s.max:g}] "
                                   f"(a value typed beyond it is clamped); raw θ mode takes any value.")
        self._render()

    def _on_raw_change(self, change=None) -> None:
        if self._syncing:
            return
        texts = {key: field.value for key, field in self.raw_fields.items()}
        numbers = {key: parse_number(text) for key, text in texts.items()}
        bad = [f"θ[{key[0]},{key[1]}] = {html.escape(repr(texts[key]))}" for key, value in numbers.items()
               if value is None]
        if bad:
            # text, NaN or inf has no picture: refuse it, put the last good θ back, and say so.
            self._set_raw_fields(self._theta)
            self.message.value = (f"<span style='color:#b00'>θ entries must be finite numbers ({', '.join(bad)}); "
                                  f"kept θ = {_theta_text(self._theta)}</span>")
            return
        self._theta = np.array([[numbers[f"{i}{j}"] for j in range(3)] for i in range(2)], dtype=np.float64)
        self._sync_sliders_from_theta()
        self._render()

    def _on_mode_change(self, change=None) -> None:
        raw = self.mode.value == RAW_MODE
        self.raw_box.layout.display = "flex" if raw else "none"
        self.param_box.layout.display = "none" if raw else "flex"

    def _on_setting_change(self, change=None) -> None:
        self._render()

    # -- drawing ---------------------------------------------------------------
    def render_png(self) -> bytes:
        """Draw the current state with plot_theta_view and return the PNG bytes."""
        # A huge typed θ (1e308) is drawn too: its grid lies far outside, and matplotlib's
        # autoscaling overflows on it harmlessly; keep that out of the learner's stderr.
        with np.errstate(over="ignore", invalid="ignore"):
            view = plot_theta_view(self.image, self._theta, align_corners=self.align_corners,
                                   padding_mode=self.padding_mode, out_hw=self.out_hw, fig=self._fig)
        self.output_image = view.output
        self.corners = view.corners
        buf = io.BytesIO()
        with np.errstate(over="ignore", invalid="ignore"):
            view.figure.savefig(buf, format="png", dpi=72)
        return buf.getvalue()

    def _render(self) -> None:
        start = time.perf_counter()
        png = self.render_png()
        with np.errstate(over="ignore", invalid="ignore"):  # rounding a typed 1e308 overflows: inf
            corners = " ".join(f"({round(x, 2) + 0.0:.2f}, {round(y, 2) + 0.0:.2f})" for x, y in self.corners)
            self.label.value = (f"<code>θ = {_theta_text(self._theta)}</code><br>"
                                f"<span>sampled region corners (input pixels; output's TL, TR, BR, BL): "
                                f"{corners}</span>")
        self.view.outputs = ({
            "output_type": "display_data",
            "data": {"image/png": base64.b64encode(png).decode("ascii"),
                     "text/plain": f"<θ view {self.render_count + 1}>"},
            "metadata": {},
        },)
        self.message.value = "<br>".join(self._notes + self._black_output_notes())
        self._notes = []
        self.render_count += 1
        self.last_render_ms = 1000 * (time.perf_counter() - start)

    def _black_output_notes(self) -> list:
        """One line explaining a black output, if it is black for a reason worth saying."""
        a = self._theta[:, :2]
        det = float(a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0])
        if not np.any(a):
            return ["θ's 2x2 part is zero: every output pixel reads the single point "
                    "(tx, ty), so the output is one flat colour."]
        if abs(det) < DEGENERATE_DET:
            return [f"θ is degenerate (det of its 2x2 part = {det:.2g}): the output reads only a line "
                    f"of the input, so it shows no picture."]
        out = self.output_image
        if out is not None and self.padding_mode == "zeros" and not np.any(out):
            return ["The sampled region lies outside the input: with zeros padding the output is black."]
        return []


def theta_explorer(image, align_corners: bool = False, padding_mode: str = "zeros",
                   out_hw: Optional[Sequence[int]] = None, max_side: Optional[int] = 160) -> ThetaExplorer:
    """An interactive θ explorer for ``image`` ((H, W), (H, W, 3) or (C, H, W)).

    Images larger than ``max_side`` are shrunk by block averaging, so each redraw
    stays fast. Read the current θ from ``.theta``. On Colab the custom widget
    manager is enabled first.
    """
    _enable_colab_widgets()
    return ThetaExplorer(image, align_corners=align_corners, padding_mode=padding_mode,
                         out_hw=out_hw, max_side=max_side)
