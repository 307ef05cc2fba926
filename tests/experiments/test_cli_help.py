"""Help text survives Rich markup: typer renders help as Rich markup, where "[onnx]" or
"[default: ...]" would be read as a style tag and silently dropped from what users see."""

from __future__ import annotations

import typer
from rich.text import Text

from experiments.cli import app


def _help_texts(command, path: str = "allystance"):
    """(where, help text) for a command, its options and, for a group, every subcommand."""
    yield path, command.help or ""
    for param in command.params:
        yield f"{path} {param.name}", getattr(param, "help", None) or ""
    for name, sub in getattr(command, "commands", {}).items():
        yield from _help_texts(sub, f"{path} {name}")


def test_no_help_text_loses_bracketed_words_to_markup():
    texts = list(_help_texts(typer.main.get_command(app)))
    assert len(texts) > 100  # every command and option of the CLI, not just the root
    lost = []
    for where, help_text in texts:
        meant = help_text.replace("\\[", "[")  # an escaped bracket is shown as a bracket
        if Text.from_markup(help_text).plain != meant:
            lost.append(where)
    assert lost == []


def test_the_runtime_help_names_the_extra_to_install():
    evaluate = typer.main.get_command(app).commands["evaluate"]
    runtime = next(p for p in evaluate.params if p.name == "runtime")
    assert "allystance[onnx]" in Text.from_markup(runtime.help).plain
