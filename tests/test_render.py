from helpers import notes, scale

from musicgen.explore import histograms
from musicgen.render import histogram_figure, piano_roll


def bars(fig):
    containers = fig.axes[0].containers  # the note bars; black-key shading is not in a container
    return list(containers[0]) if containers else []


def test_piano_roll_draws_one_bar_per_note():
    fig = piano_roll(notes(scale(count=12)))
    assert len(bars(fig)) == 12
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "C4" in labels


def test_piano_roll_first_and_window():
    n = notes(scale(count=12, step=1.0))
    assert len(bars(piano_roll(n, first=5))) == 5
    assert len(bars(piano_roll(n, window=(2.0, 4.0)))) == 2


def test_piano_roll_of_nothing_says_so():
    fig = piano_roll(notes([]))
    assert "no notes" in [t.get_text() for t in fig.axes[0].texts]


def test_histogram_figure_renders_to_png():
    import io

    fig = histogram_figure(histograms(notes(scale()))["pitch"], "Pitch")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    assert fig.axes[0].get_title() == "Pitch"
