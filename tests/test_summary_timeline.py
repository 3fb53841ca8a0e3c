"""The HTML summary's timeline and numbers, from a night stored in a real SQLite store: the activity trace
is not drowned by per-episode lines, every episode is drawn at a visible width, the legend sits outside
the data, the coverage card agrees with the text, and the times say their zone."""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
from rich.console import Console

from detector.events import Episode, Epoch, Gap
from detector.stream import Night
from legwatch import summary
from legwatch.contracts import localtime
from legwatch.storage.schema import night_points
from legwatch.summary_html import MIN_BAR_SHARE, episode_bars, render_html, timeline_figure

T0 = 1_767_652_200.0  # 2026-01-05T22:30:00Z


@pytest.fixture
def zone():
    localtime.use("Asia/Kolkata")
    yield
    localtime.use(None)


def _night() -> Night:
    onset, end = T0 + 600, T0 + 8 * 3600
    eps = [Episode(onset + 90 + 27 * i, onset + 92 + 27 * i, "leg_movement", 0.08, periodic=True) for i in range(100)]
    eps += [Episode(onset + 4 * 3600 + 400 * i, onset + 4 * 3600 + 400 * i + 0.15, "twitch", 0.05) for i in range(20)]
    eps += [Episode(onset + 6 * 3600, onset + 6 * 3600 + 35, "contraction", 0.3)]
    eps.sort(key=lambda e: e.start)
    epochs = [Epoch(T0 + 30 * i, 0.004 + (0.3 if i in (300, 301, 700) else 0.0), 12.0) for i in range(960)]
    gaps = [Gap(T0 + 2 * 3600, T0 + 2 * 3600 + 6), Gap(T0 + 5 * 3600, T0 + 5 * 3600 + 3)]  # 9 s: 99.97 %
    return Night(eps, epochs, gaps, (onset, end - 300), 12.0, T0, end, 1_000_000, 0)


@pytest.fixture
def stored(sqlite_store):
    sqlite_store.write(night_points("me", "shin", _night()))
    s = summary.build(sqlite_store, "me")
    return s, summary.activity(sqlite_store, s)


def test_every_episode_is_drawn_at_a_visible_width(stored) -> None:
    s, _ = stored
    bars = episode_bars(s)
    assert {k: len(v) for k, v in bars.items()} == {"twitch": 20, "leg_movement": 100, "contraction": 1}
    min_w = 8 * 3600 * MIN_BAR_SHARE
    assert all(w >= min_w - 1e-6 for v in bars.values() for _, w in v)
    assert bars["contraction"][0][1] == pytest.approx(max(35.0, min_w))


def test_trace_stays_visible_and_legend_is_outside_the_data(stored, zone) -> None:
    s, act = stored
    fig = timeline_figure(s, act)
    try:
        fig.canvas.draw()
        ax, strip = fig.axes
        # the trace is the one line (plus the off-scale markers); no line per episode over it
        assert len(ax.lines) == 2
        # full-height spans on the trace: the sleep window, the two gaps and the one cramp only
        assert len(ax.patches) == 1 + 2 + 1
        top = ax.get_ylim()[1]
        assert top < 0.3 * 1000  # the 300 mg peaks are off scale, the 4 mg baseline is not squashed to 0
        assert 4.0 / top > 0.05
        # the strip: one bar per episode, per kind
        drawn = sorted(len(c.get_paths()) for c in strip.collections)
        assert drawn == [1, 20, 100]
        # the legend belongs to the figure and overlaps neither axes
        assert ax.get_legend() is None and strip.get_legend() is None and len(fig.legends) == 1
        box = fig.legends[0].get_window_extent()
        for a in (ax, strip):
            assert not box.overlaps(a.get_window_extent())
        # times in the configured zone, said on the axis
        assert strip.get_xlabel() == f"time ({localtime.label(s['recording']['start'])})"
        assert "Asia/Kolkata (IST, UTC+05:30)" in strip.get_xlabel()
        ticks = [t.get_text() for t in strip.get_xticklabels() if t.get_text()]
        assert ticks[0] == "04:00"  # the 22:30 UTC start is 04:00 IST (it would read 23:00 in UTC)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        assert buf.getvalue()[:4] == b"\x89PNG"
    finally:
        plt.close(fig)


def test_coverage_card_and_text_agree(stored, zone) -> None:
    s, act = stored
    assert 0.9996 < s["coverage"] < 1.0 and len(s["gaps"]) == 2
    html = render_html(s, act)
    card = re.search(r'<div class="card"><b>([0-9.]+)%</b><span>data coverage, 2 gaps</span>', html)
    assert card is not None, html[:2000]
    assert card.group(1) == "99.9"  # not rounded up to 100 while 9 s are missing
    assert "<p>99.9% of the recording has data; 2 gap(s)" in html
    buf = io.StringIO()
    summary.render_text(s, Console(file=buf, width=80, color_system=None))
    text = buf.getvalue()
    assert "Data coverage: 99.9%, 2 gap(s)" in text
    assert "times in Asia/Kolkata (IST, UTC+05:30)" in " ".join(text.split())
    assert "times in Asia/Kolkata (IST, UTC+05:30)" in html
    assert "2026-01-06 04:00:00 –" in html  # the recording's local date and time under the title
