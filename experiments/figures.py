"""What every chart and HTML page here shares: a palette that survives greyscale print and
colour blindness, hatches and markers to go with it, and self-contained HTML pages."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# Okabe–Ito: distinguishable with the common colour-vision deficiencies. Colour is never the
# only cue: every series also gets a hatch (bars) or a marker and line style (lines).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
HATCHES = ("//", "..", "xx", "\\\\", "++", "oo", "--", "||")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), "-", "--")
# Stance: dark blue with hatching, vermillion with dots, light grey plain: three greys apart.
STANCE_STYLE = {
    "favor": {"color": "#0072B2", "hatch": "///"},
    "against": {"color": "#D55E00", "hatch": "..."},
    "neutral": {"color": "#C8C8C8", "hatch": ""},
}


def series_style(i: int) -> dict[str, object]:
    """Colour, hatch, marker and line style of the i-th series (cycling)."""
    return {
        "color": PALETTE[i % len(PALETTE)],
        "hatch": HATCHES[i % len(HATCHES)],
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
    }


def stance_style(value: str, i: int) -> dict[str, str]:
    """Style of a stance value; values not named above fall back to the series styles."""
    if value in STANCE_STYLE:
        return STANCE_STYLE[value]
    style = series_style(i + 4)
    return {"color": str(style["color"]), "hatch": str(style["hatch"])}


def save_figure(figure: plt.Figure, path: Path, dpi: int = 110) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return path


def png_data_uri(path: Path) -> str:
    """A PNG file as a ``data:`` URI, so the HTML page needs no other file."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def figure_data_uri(figure: plt.Figure, dpi: int = 110) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #555; font-size: 0.9em; }
.evidence { border-left: 3px solid #ccc; padding-left: 0.8em; margin: 0.8em 0; }
.ev-topic { text-decoration: underline; text-decoration-thickness: 2px; text-underline-offset: 3px; }
.ev-stance { font-weight: bold; } .ev-favor { background: #cfe3f3; } .ev-against { background: #f8d9c4; }
.ev-neutral { background: #e6e6e6; } .ev-versus { font-style: italic; border-bottom: 2px dotted #555; }
"""


def html_page(title: str, parts: Iterable[str]) -> str:
    """A complete, self-contained HTML page; ``parts`` are HTML fragments already escaped."""
    body = "\n".join(parts)
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def image_tag(uri: str, alt: str) -> str:
    return f"<p><img src='{uri}' alt='{html.escape(alt, quote=True)}'></p>"
