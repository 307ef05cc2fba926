"""MkDocs hooks: the command reference, rendered from the typer app at every build.

Each command of ``allystance`` gets a page ``reference/<command-path>.md`` with the Markdown
that typer's own documentation generator (``typer ... utils docs``) writes for it: the help
text, usage, arguments and options with their defaults. The pages are listed under
"Command reference" in the navigation, and ``<!-- allystance-commands -->`` in any page
becomes a table of every command linking to its page (``<!-- allystance-topics -->``: the
label schema's topics). Nothing here is written by hand, so the reference cannot drift from
the code; ``tests/test_docs.py`` checks the manual's
command lines against the same app.
"""

from __future__ import annotations

import posixpath
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
# Document this checkout's CLI, whatever else the environment has installed.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROGRAM = "allystance"
REFERENCE_DIR = "reference"
NAV_SECTION = "Command reference"
TABLE_MARKER = "<!-- allystance-commands -->"
ROOT_OPTIONS_MARKER = "<!-- allystance-root-options -->"
TOPICS_MARKER = "<!-- allystance-topics -->"
# The order of a newcomer's work; a command group missing here is listed after these.
ORDER = ("data", "train", "evaluate", "predict", "report", "experiments")


class CommandDoc(NamedTuple):
    """One leaf command of the CLI: its words after ``allystance``, the click command and context."""

    path: tuple[str, ...]
    command: Any  # a click command (typer ships its own copy of click: duck-typed here)
    context: Any

    @property
    def name(self) -> str:
        return " ".join((PROGRAM, *self.path))

    @property
    def page(self) -> str:
        return f"{REFERENCE_DIR}/{'-'.join(self.path)}.md"

    @property
    def summary(self) -> str:
        """The first paragraph of the command's help, on one line."""
        text = self.command.short_help or self.command.help or ""
        return " ".join(text.strip().split("\n\n")[0].split())


def root_command() -> Any:
    """The click group behind the typer app."""
    import typer

    from experiments.cli import app

    return typer.main.get_command(app)


def _context(command: Any, name: str, parent: Any = None) -> Any:
    # As the command line builds it (context settings such as -h included), parsing nothing.
    return command.make_context(name, [], parent=parent, resilient_parsing=True)


def walk(group: Any = None, context: Any = None, path: tuple[str, ...] = ()) -> Iterator[CommandDoc]:
    """Every leaf command, depth first: top-level names in ``ORDER``, sub-commands as the app lists them."""
    group = group or root_command()
    context = context or _context(group, PROGRAM)
    names = group.list_commands(context)
    if not path:
        names = sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))
    for name in names:
        command = group.get_command(context, name)
        if command is None or command.hidden:
            continue
        child = _context(command, name, context)
        if hasattr(command, "list_commands"):  # a group: its commands are the pages
            yield from walk(command, child, (*path, name))
        else:
            yield CommandDoc((*path, name), command, child)


def _without_checkout_paths(markdown: str) -> str:
    # Defaults such as the shipped dataset are absolute paths of this checkout; show them
    # relative to the repository, as they are on any clone.
    return markdown.replace(f"{ROOT}/", "")


def command_markdown(doc: CommandDoc) -> str:
    """The reference page of one command, as typer's documentation generator writes it."""
    from typer.cli import get_docs_for_click

    body = get_docs_for_click(obj=doc.command, ctx=doc.context, name=doc.name, title=f"`{doc.name}`")
    return _without_checkout_paths(body)


def root_options_markdown() -> str:
    """The options that go before any command (``allystance --debug data stats``)."""
    group = root_command()
    context = _context(group, PROGRAM)
    lines = []
    for param in group.get_params(context):
        record = param.get_help_record(context)
        if param.param_type_name == "option" and record is not None:
            lines.append(f"* `{record[0]}`: {record[1]}")
    return "\n".join(lines) + "\n"


def commands_table(from_page: str) -> str:
    """A Markdown table of every command, each linking to its reference page."""
    here = posixpath.dirname(from_page)
    rows = ["| command | what it does |", "|---|---|"]
    for doc in walk():
        link = posixpath.relpath(doc.page, here or ".")
        rows.append(f"| [`{doc.name}`]({link}) | {doc.summary.replace('|', '/')} |")
    return "\n".join(rows) + "\n"


def topics_table() -> str:
    """The label schema's topics, in their order, with the proposition each stance is taken toward."""
    from labels import load_schema

    schema = load_schema()
    rows = ["| topic | name | stance is taken toward | favor | against |", "|---|---|---|---|---|"]
    for t in schema.topics:
        rows.append(f"| `{t.id}` | {t.name} | *{t.proposition}* | {t.favor} | {t.against} |")
    return "\n".join(rows) + "\n"


# --- MkDocs events -------------------------------------------------------------------


def on_config(config, **kwargs):
    """List a page per command under the "Command reference" section of the navigation."""
    for entry in config.nav or []:
        if isinstance(entry, dict) and NAV_SECTION in entry:
            section = entry[NAV_SECTION]
            listed = {next(iter(item.values())) for item in section if isinstance(item, dict)}
            section.extend({doc.name: doc.page} for doc in walk() if doc.page not in listed)
    return config


def on_files(files, config, **kwargs):
    """Add the generated reference pages to the site."""
    from mkdocs.structure.files import File

    for doc in walk():
        files.append(File.generated(config, doc.page, content=command_markdown(doc)))
    return files


def on_page_markdown(markdown, page, config, files, **kwargs):
    """Fill the commands table and the root options wherever a page asks for them."""
    if TABLE_MARKER in markdown:
        markdown = markdown.replace(TABLE_MARKER, commands_table(page.file.src_uri))
    if TOPICS_MARKER in markdown:
        markdown = markdown.replace(TOPICS_MARKER, topics_table())
    if ROOT_OPTIONS_MARKER in markdown:
        markdown = markdown.replace(ROOT_OPTIONS_MARKER, root_options_markdown())
    return markdown
