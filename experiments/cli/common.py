"""Helpers shared by the CLI's commands: one-line errors, logging and tables."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

import click
import typer
from rich.console import Console
from rich.table import Table as RichTable

from labels.errors import UserError
from labels.stats import Table

P = ParamSpec("P")
R = TypeVar("R")

# Errors a user can fix: printed as one line, with the traceback only under --debug.
USER_ERRORS: tuple[type[Exception], ...] = (UserError, FileNotFoundError)


def debug_enabled() -> bool:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx else None
    return bool(obj and obj.get("debug"))


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a user-fixable exception into ``error: ...`` on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            if debug_enabled():
                raise
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from None

    return wrapper


def configure_logging(debug: bool, quiet: bool = False) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    # MLflow's own INFO lines (database migrations, artifact downloads) are noise to a user.
    logging.getLogger("mlflow").setLevel(logging.DEBUG if debug else logging.WARNING)


def print_tables(tables: Iterable[Table], console: Console | None = None, left_columns: int = 1) -> None:
    """Print tables as text; plain columns when the output is not a terminal.

    The first ``left_columns`` columns (names, ids) are left-aligned, the rest (numbers) right.
    """
    console = console or Console()
    for table in tables:
        out = RichTable(title=table.title, title_justify="left", show_edge=False, pad_edge=False)
        for i, header in enumerate(table.headers):
            # Names and ids keep their width; it is the numbers' headers that wrap when space is short.
            left = i < left_columns
            out.add_column(str(header), justify="left" if left else "right", no_wrap=left and left_columns > 1)
        for row in table.rows:
            out.add_row(*(str(c) for c in row))
        console.print(out)
        console.print()
