"""How a widget's figure reaches the page: its size (:func:`set_display`: the column
width and a font scale), the view (an ipympl canvas or a PNG image, with blitting), title
wrapping so nothing is cut, and drawing from one thread at a time (:func:`drawing`)."""
from __future__ import annotations

import functools
import io
import math
import textwrap
import threading
import time
from typing import Any, Callable, Sequence

import ipywidgets as widgets
import matplotlib
import matplotlib.pyplot as plt
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from ..core.validate import is_int, is_real

__all__ = ["BASE_DPI", "DISPLAY", "DRAW_LOCK", "FigureView", "Throttle", "display_size",
           "drawing", "projector", "set_display", "wrap_titles"]


DISPLAY = {"width": 790, "font_scale": 1.0}  # set_display(); read when a widget is made
BASE_DPI = 90


def set_display(width: int | None = None, font_scale: float | None = None) -> dict[str, float]:
    """How widgets made from now on are sized: ``width`` the widest figure in CSS pixels
    (default 790: a 960 px notebook column, or a 1280 px projector at 130 % zoom with
    the file browser hidden, less JupyterLab's margins); ``font_scale`` enlarges every
    text and line of a figure by that factor at the same pixel size (e.g. 1.4 for a
    projector). Returns the settings."""
    if width is not None:
        if not (is_int(width) and 300 <= width <= 4000):
            raise ValueError(f"width = {width!r} px is outside 300..4000 (an integer); "
                             "use e.g. 790")
    if font_scale is not None:
        if not (is_real(font_scale) and 0.5 <= font_scale <= 3):  # NaN fails too
            raise ValueError(f"font_scale = {font_scale!r} is outside 0.5..3; use e.g. 1.4")
    if width is not None:
        DISPLAY["width"] = int(width)
    if font_scale is not None:
        DISPLAY["font_scale"] = float(font_scale)
    return dict(DISPLAY)


def projector(width: int = 1080, font_scale: float = 1.15) -> dict[str, float]:
    """Widgets made from now on for a class: figures up to ``width`` px wide (1080: a
    1280 x 720 projector at 100 % zoom with JupyterLab's file browser hidden) with text
    ``font_scale`` times larger (1.15: tick labels 14 px, legends 13 px). Notebook 05 calls
    it; :func:`set_display` with the defaults (790, 1.0) undoes it."""
    return set_display(width=width, font_scale=font_scale)


def display_size(figsize: tuple[float, float]) -> tuple[tuple[float, float], float]:
    """The figure size (inches) and dpi of a widget figure designed as ``figsize`` at 90
    dpi, under :func:`set_display`: fonts scaled by ``font_scale`` (fewer inches, more
    dpi: the same pixels), then shrunk to at most ``width`` pixels, aspect kept."""
    scale = DISPLAY["font_scale"]
    dpi = BASE_DPI * scale
    w, h = figsize[0] / scale, figsize[1] / scale
    fit = min(1.0, DISPLAY["width"] / (w * dpi))
    return (w * fit, h * fit), dpi


def wrap_titles(figure: Figure, wrapped: dict[int, tuple[str, str]] | None = None
                ) -> tuple[int, ...]:
    """Break every axes title that would be wider than its axes into lines (estimated from
    the font size: no drawing needed), so a long title is never cut at the figure's edge.
    ``wrapped`` remembers each title's text before wrapping (id -> (text, wrapped text)):
    a title wrapped before is wrapped again from its own text when its axes change size.
    Returns each title's number of line breaks (a change calls for a new layout)."""
    wrapped = {} if wrapped is None else wrapped
    for ax in figure.axes:
        title = ax.title
        text = title.get_text()
        before = wrapped.get(id(title))
        if before is not None and text == before[1]:
            text = before[0]  # our own wrapping of it: start from the widget's text
        char_px = title.get_fontsize() * figure.dpi / 72 * 0.55
        chars = max(12, int(ax.bbox.width * 1.05 / char_px))
        lines = "\n".join(textwrap.fill(line, chars) if len(line) > chars else line
                          for line in text.split("\n"))
        if lines != title.get_text():
            title.set_text(lines)
        wrapped[id(title)] = (text, lines)
    return tuple(ax.title.get_text().count("\n") for ax in figure.axes)


DRAW_LOCK = threading.RLock()


def drawing(method: Callable) -> Callable:
    """Hold :data:`DRAW_LOCK` while ``method`` runs: matplotlib must lay out and draw text
    in one thread at a time (its math-text parser is not thread-safe), and in JupyterLab
    three threads draw widgets: the kernel's main thread (cells), the subshell thread
    that handles widget events (sliders, clicks, ipympl's draw requests) and a lab's
    training thread. A method that changes a figure's artists and draws it takes the lock
    for both, so no figure is drawn half-updated."""
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with DRAW_LOCK:
            return method(*args, **kwargs)
    return wrapper


class Throttle:
    """Redraws of a live figure while training runs: at most one every ``min_interval``
    seconds, and none while another is in progress (the training thread and a widget
    event may both ask)."""

    def __init__(self, min_interval: float = 0.5):
        self.min_interval = min_interval
        self._last, self._pending = -math.inf, False
        self._lock = threading.Lock()

    def ready(self) -> bool:
        """True (and the redraw counted as in progress) if a redraw may start now."""
        with self._lock:
            if self._pending or time.perf_counter() - self._last < self.min_interval:
                return False
            self._pending = True
            return True

    def done(self) -> None:
        """A redraw has finished: the next may start ``min_interval`` seconds from now."""
        self._last, self._pending = time.perf_counter(), False


def _ipympl_active() -> bool:
    backend = matplotlib.get_backend().lower()
    return "ipympl" in backend or backend == "widget"


class FigureView:
    """A figure shown as a widget: the ipympl canvas when ``%matplotlib widget`` is on
    (``interactive``), otherwise an ``ipywidgets.Image`` re-rendered as PNG by :meth:`draw`.
    ``live=True`` always uses the image: it updates while the kernel is busy training."""

    def __init__(self, figsize: tuple[float, float], live: bool = False,
                 dpi: float | None = None):
        if dpi is None:
            figsize, dpi = display_size(figsize)
        self.interactive, self.live = _ipympl_active() and not live, live
        self._title_lines: tuple[int, ...] | None = None
        self._wrapped: dict[int, tuple[str, str]] = {}  # wrap_titles' memory
        if self.interactive:
            with plt.ioff():
                self.figure = plt.figure(figsize=figsize, dpi=dpi)
            canvas = self.figure.canvas
            canvas.header_visible = False
            # ipympl lays its toolbar over the figure's left edge, on the y-axis labels;
            # the widgets' own controls do what a widget figure needs
            canvas.toolbar_visible = False
            # Give the front end the canvas size in the widget's first state. Otherwise
            # it learns the size only from the kernel's reply to its "initialized"
            # message, and a view created in the wrong moment of that exchange stays
            # 0 x 0 px for good (seen in JupyterLab 4.6 + ipympl 0.10 when the figure is
            # a child of a box). ipympl's own _repr_mimebundle_ sets the same trait.
            canvas._size = tuple(float(v) for v in self.figure.bbox.size
                                 / canvas.device_pixel_ratio)
            canvas.draw = drawing(canvas.draw)  # ipympl draws on the page's requests too
            canvas.get_diff_image = self._full_frames(canvas)
            self.widget = canvas
        else:
            self.figure = Figure(figsize=figsize, dpi=dpi)
            FigureCanvasAgg(self.figure)
            # at its own pixel width (a wider column would stretch it and blur the text),
            # never wider than its column: a narrower one scales the picture down
            width = round(figsize[0] * dpi)
            self.widget = widgets.Image(format="png", layout=widgets.Layout(
                width=f"{width}px", max_width="100%", height="auto"))
        self._background: Any = None  # the pixels under the blitted artists (see draw)
        self._blit_key: tuple[float, ...] = ()
        self._drawing = False
        self.figure.canvas.mpl_connect("draw_event", self._forget_background)

    full_frames = True  # every frame an ipympl canvas sends holds every pixel (False: diffs)

    def _full_frames(self, canvas: Any) -> Callable[[], Any]:
        """``canvas.get_diff_image`` that makes each frame a full one. Matplotlib's webagg
        core sends diff frames: only the pixels changed since the frame before, the rest
        transparent. ipympl's front end (0.10) has one <img> per figure: each frame that
        arrives sets its ``src``, and only in its ``onload`` is the picture laid over the
        canvas (cleared first if ``_image_mode`` is "full" at that moment). A frame that
        arrives before the one before it has loaded replaces it, and that one is never
        shown (fast slider steps, a drag, a slow page). Missing a diff frame, the page
        keeps what it changed for good, e.g. old α markers and two titles on top of each
        other. A full frame needs no frame before it, so a lost one costs nothing; it is
        more bytes to encode and send (about 42 kB instead of 4 to 6 for a 790 px wide
        explorer; some 15 ms more a step)."""
        get_diff_image = canvas.get_diff_image

        @functools.wraps(get_diff_image)
        def get_full_image() -> Any:
            if self.full_frames:
                canvas._force_full = True  # what the page's "refresh" message sets
            return get_diff_image()
        return get_full_image

    def lay_out(self) -> None:
        """Fit the axes, titles and labels into the figure now: ``tight_layout``, unless
        the figure has a layout engine of its own (constrained: laid out at each draw)."""
        if not isinstance(self.figure.get_layout_engine(), ConstrainedLayoutEngine):
            self.figure.tight_layout()

    @drawing
    def draw(self, changed: Sequence[Any] = ()) -> None:
        """Show the figure's current state. ``changed``: the only artists that changed
        since the last draw with the same ``changed`` (e.g. a slider's marker and line):
        those are drawn over a saved background (blitting) instead of the whole figure.
        A live figure (data, limits and titles change between draws, at most every half
        second) is laid out again each time; an interactive one when a title's line count
        changes (not on every slider step)."""
        lines = wrap_titles(self.figure, self._wrapped)
        if self.live or lines != self._title_lines:
            self.lay_out()
            self._title_lines, self._background = lines, None
        canvas = self.figure.canvas
        # the page may have resized the canvas or changed its pixel ratio (and dpi) since
        # the background was saved: then the draw it asked for may not have come yet
        key = (*(id(a) for a in changed), *canvas.get_width_height(physical=True),
               self.figure.dpi)
        if not changed:
            if self.interactive:
                canvas.draw_idle()
                return
            canvas.draw()
        elif self._background is not None and key == self._blit_key:
            canvas.restore_region(self._background)
            for artist in changed:
                self.figure.draw_artist(artist)
        else:  # a new background: everything but the changed artists
            for artist in changed:
                artist.set_animated(True)
            try:
                self._drawing = True
                # Agg's draw, not ipympl's: that would also send the page a frame without
                # the changed artists (a flash), just before the blit below sends them
                FigureCanvasAgg.draw(canvas)
            finally:
                self._drawing = False
                for artist in changed:
                    artist.set_animated(False)
            self._background, self._blit_key = canvas.copy_from_bbox(self.figure.bbox), key
            for artist in changed:
                self.figure.draw_artist(artist)
        self._show()

    def _show(self) -> None:
        """Send the canvas's pixels to the page: ipympl's blit (a full frame, see
        :meth:`_full_frames`), or a PNG for the image widget (encoded from the pixels, not
        redrawn)."""
        canvas = self.figure.canvas
        if self.interactive:
            canvas.blit(self.figure.bbox)
            return
        image = PIL.Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(),
                                     "raw", "RGBA", 0, 1)
        buf = io.BytesIO()
        image.save(buf, format="png", compress_level=1)
        self.widget.value = buf.getvalue()

    def _forget_background(self, _: Any) -> None:
        if not self._drawing:  # someone else drew the figure (a zoom, a resize, savefig)
            self._background = None

    def close(self) -> None:
        if self.interactive:
            plt.close(self.figure)
