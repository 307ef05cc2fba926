"""The README and the manual name only commands and options that exist, and stay short where promised.

Every ``allystance <command> [--option]`` written in a code span, a code block or a generated
console output of the README, the pages under ``docs/`` or the label documents they include is
checked against the typer app, so renaming a command or an option without the docs fails here.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from experiments.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
# What the manual shows: its pages, the outputs they include, and the label documents.
MANUAL = [
    README,
    *sorted(DOCS.rglob("*.md")),
    *sorted((DOCS / "outputs").glob("*.txt")),
    *sorted(ROOT.glob("labels/*.md")),
]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
# Where one command line ends and another may start: a pipe, $( ... ), &&, ;
SEGMENTS = re.compile(r"\s\|\s|\$\(|&&|;|\)")
COMMAND_START = re.compile(r"^(?:\$\s+|\|\s+)?(?:\S*/)?allystance(?=\s|$)")
OPTION = re.compile(r"^--?[A-Za-z][\w-]*")
WORD = re.compile(r"^[a-z][a-z-]*$")


def _context(command: Any, name: str, parent: Any = None) -> Any:
    return command.make_context(name, [], parent=parent, resilient_parsing=True)


def _options(command: Any, context: Any) -> set[str]:
    names: set[str] = set()
    for param in command.get_params(context):
        if param.param_type_name == "option":
            names.update(param.opts, param.secondary_opts)
    return names


def _clean(token: str) -> str:
    return token.strip("[](){}\"',").removesuffix("...").rstrip(".,:")


def check_command_line(segment: str, root: Any) -> str | None:
    """Why ``segment`` (text starting with ``allystance``) names something the app lacks, or None."""
    tokens = segment.split()[1:]
    for i, token in enumerate(tokens):
        if token.startswith("#"):  # a shell comment
            tokens = tokens[:i]
            break
    command, context, path = root, _context(root, "allystance"), ["allystance"]
    rest = iter(tokens)
    for raw in rest:
        token = _clean(raw)
        if not token:
            continue
        if hasattr(command, "list_commands"):  # still choosing the command
            if OPTION.match(token):
                option = token.split("=", 1)[0]
                if option not in _options(command, context):
                    return f"{option} is not an option of `{' '.join(path)}`"
            elif token in command.list_commands(context):
                command = command.get_command(context, token)
                context = _context(command, token, context)
                path.append(token)
            elif WORD.match(token):
                return f"`{' '.join(path)}` has no command {token!r}"
            else:  # a placeholder such as COMMAND or <command>: nothing more to check
                return None
        elif OPTION.match(token):
            option = token.split("=", 1)[0]
            if option not in _options(command, context):
                return f"{option} is not an option of `{' '.join(path)}`"
    return None


def command_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text from ``allystance`` on) for every command line in code."""
    found = []
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        code_block = in_fence or line.startswith(("    ", "\t"))
        candidates = [line] if code_block else INLINE_CODE.findall(line)
        for candidate in candidates:
            for segment in SEGMENTS.split(candidate):
                segment = segment.strip()
                match = COMMAND_START.match(segment)
                if match:
                    found.append((number, segment[match.end() - len("allystance") :]))
    return found


def manual_errors(paths: list[Path], root: Any) -> list[str]:
    errors = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".txt":  # a console session: its commands are the "$ " lines
            text = "```\n" + text + "\n```\n"
        for number, line in command_lines(text):
            problem = check_command_line(line, root)
            if problem:
                errors.append(f"{path.relative_to(ROOT)}:{number}: {line!r}: {problem}")
    return errors


@pytest.fixture(scope="module")
def root_command():
    return typer.main.get_command(app)


def test_every_command_and_option_in_the_docs_exists(root_command):
    assert len(MANUAL) > 20  # the README, the pages, the outputs and the label documents
    assert manual_errors(MANUAL, root_command) == []


@pytest.mark.parametrize(
    "text,problem",
    [
        ("Run `allystance data frobnicate`.", "`allystance data` has no command 'frobnicate'"),
        ("```bash\nallystance train baseline --sett x=1\n```", "--sett is not an option of `allystance train baseline"),
        ("    allystance evaluate -o eval/ --split dev --quick", "--quick is not an option of `allystance evaluate`"),
        ("```console\n$ echo hi | .venv/bin/allystance predict - --workerz 2\n```", "--workerz is not an option"),
        ("`allystance evaluate --model \"$(allystance experiments best --top 3)\"`", "--top is not an option"),
        ("`allystance --verbose data stats`", "--verbose is not an option of `allystance`"),
    ],
)
def test_a_wrong_command_or_option_is_caught(tmp_path, root_command, text, problem):
    page = tmp_path / "page.md"
    page.write_text(text + "\n", encoding="utf-8")
    errors = _errors_outside_root(page, root_command)
    assert len(errors) == 1 and problem in errors[0]


@pytest.mark.parametrize(
    "text",
    [
        "`allystance data split [FILE] [--seed 2] [--search] [--dev 0.15] [--test 0.15]`",
        "`allystance data suggest POOL... -n N -o FILE [--strategy margin|uncertainty|random] [--diverse]`",
        "`allystance [OPTIONS] COMMAND [ARGS]...` and `allystance COMMAND --help`",
        "```console\n$ allystance -q train baseline --set \"search={}\" --promote  # a comment --not-checked\n```",
        "The allystance team wrote `models:/allystance@champion` and `models:/allystance/3`.",
    ],
)
def test_right_commands_and_prose_pass(tmp_path, root_command, text):
    page = tmp_path / "page.md"
    page.write_text(text + "\n", encoding="utf-8")
    assert _errors_outside_root(page, root_command) == []


def _errors_outside_root(page: Path, root: Any) -> list[str]:
    return [
        f"{number}: {problem}"
        for number, line in command_lines(page.read_text(encoding="utf-8"))
        if (problem := check_command_line(line, root))
    ]


def _docs_module(name: str):
    spec = importlib.util.spec_from_file_location(f"allystance_docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _hooks():
    return _docs_module("hooks")


def test_the_reference_has_a_page_with_every_option_of_every_command(root_command):
    hooks = _hooks()
    docs = list(hooks.walk())
    leaves = {" ".join(d.path) for d in docs}
    assert {"data validate", "train baseline", "evaluate", "predict", "experiments compare", "report"} <= leaves
    for doc in docs:
        page = hooks.command_markdown(doc)
        assert page.startswith(f"# `{doc.name}`")
        for option in _options(doc.command, doc.context):
            assert f"{option}" in page, f"{doc.name}: {option} missing from its reference page"
        assert str(ROOT) not in page  # defaults are shown relative to the repository
    assert len({d.page for d in docs}) == len(docs)


def test_the_readme_is_short_and_its_example_is_the_generated_one():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    example = (DOCS / "outputs" / "readme-example.txt").read_text(encoding="utf-8")
    start, end = text.index("<!-- example -->"), text.index("<!-- /example -->")
    assert text[start:end] == f"<!-- example -->\n```console\n{example.rstrip()}\n```\n"


def test_every_included_output_exists():
    includes = re.compile(r'^\s*--8<-- "([^"]+)"', re.MULTILINE)
    named = [m for page in DOCS.rglob("*.md") for m in includes.findall(page.read_text(encoding="utf-8"))]
    assert any(n.startswith("docs/outputs/") for n in named)
    missing = [n for n in named if not (ROOT / n.split(":")[0]).is_file()]
    assert missing == []


def test_the_generator_writes_python_sessions_and_the_readme_example(tmp_path):
    generate = _docs_module("generate")
    session = generate.pycon(["x = [1, 2]", "len(x), x[0]", "None"])
    assert session == ">>> x = [1, 2]\n>>> len(x), x[0]\n(2, 1)\n>>> None"
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- example -->\nold\n<!-- /example -->\nrest\n", encoding="utf-8")
    generate.update_readme_example("$ allystance data stats\nRecords\n", readme)
    assert readme.read_text(encoding="utf-8") == (
        "intro\n<!-- example -->\n```console\n$ allystance data stats\nRecords\n```\n<!-- /example -->\nrest\n"
    )


def test_the_readme_links_to_files_that_exist():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    assert "docs/index.md" in local
    assert [link for link in local if not (ROOT / link).exists()] == []
