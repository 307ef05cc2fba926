"""Rerun the commands the manual shows and write what they print to ``docs/outputs/``.

    make docs-outputs        # or: .venv/bin/python docs/generate.py

Every console output and figure in the manual comes from here, so that the pages show what
the code does today rather than what someone once pasted. The commands run as a user would
type them, in a fresh temporary folder that holds the MLflow store (``mlflow.db`` and
``mlartifacts/``) and the files they write; read-only commands on the shipped dataset run in
the repository root so that paths print as they do there. Real-news scoring is off
(``ALLYSTANCE_REALNEWS=off``): the real-news files live outside the repository, and a fresh
clone has none. Only the TF-IDF baseline and the keyword rules are trained (a few minutes on
2 cores); outputs of the transformer, embed and blend families are recorded runs, marked as
such in the pages.

Each ``docs/outputs/<name>.txt`` holds ``$ command`` lines, each followed by its output; the
pages include them with ``--8<-- "docs/outputs/<name>.txt"``. The script also rewrites the
README's example between its ``<!-- example -->`` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the checkout's labels package, for the Python session below
    sys.path.insert(0, str(ROOT))
OUTPUTS = ROOT / "docs" / "outputs"
README = ROOT / "README.md"
EXAMPLE_START, EXAMPLE_END = "<!-- example -->", "<!-- /example -->"
WIDTH = "120"  # terminal width the tables are drawn for


def _record(id_: str, position: int, split: str, text: str, topic: str, stance: str) -> dict:
    return {
        "id": id_, "article_id": "cf-001", "position": position, "split": split, "text": text,
        "topics": [topic], "stance": {topic: stance}, "source": "wire-service", "date": "2025-01-10",
    }  # fmt: skip


# A file with one mistake per line for `data validate` to find (the first line is valid).
BROKEN_JSONL = [
    _record(
        "cf-001-p00", 0, "train",
        "Negotiators from Seoul and Washington opened a new round of talks on the cost of stationing American troops.",
        "cost_sharing", "neutral",
    ),
    _record(
        "cf-001-p01", 1, "train",
        "Conservative lawmakers praised the decision to restore the spring field training to its full scale.",
        "exercises", "support",
    ),
    _record(
        "cf-001-p00", 2, "validation",
        "The ministry said the transfer of wartime command would follow the conditions both governments agreed.",
        "opcon", "neutral",
    ),
]  # fmt: skip
BROKEN_LAST_LINE = '{"id": "cf-001-p03", "text": '

README_EXAMPLE_TEXT = (
    "Pyongyang denounced the joint spring drills as a rehearsal for invasion, "
    "days after Seoul agreed to pay more for the American troops stationed in the South."
)


class Session:
    """Runs shell lines with ``allystance`` on the PATH and records them as a console session."""

    def __init__(self, env: dict[str, str], store: Path):
        self.env = env
        self.store = store
        self.written: list[Path] = []

    def run(self, line: str, cwd: Path | None = None, check: bool = True) -> tuple[int, str]:
        cwd = cwd or self.store
        print(f"  $ {line}", flush=True)
        proc = subprocess.run(
            ["bash", "-c", line], cwd=cwd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if check and proc.returncode != 0:
            sys.exit(f"docs/generate.py: '{line}' failed with exit code {proc.returncode}:\n{proc.stdout}")
        return proc.returncode, proc.stdout

    def record(self, name: str, lines: list[str], cwd: Path | None = None, exit_code_after: str | None = None) -> None:
        """Run ``lines`` and write ``$ line`` plus each one's output to ``docs/outputs/<name>.txt``.

        ``exit_code_after``: the line whose exit code is shown (``$ echo $?``); it may fail.
        """
        parts = []
        for line in lines:
            code, out = self.run(line, cwd, check=line != exit_code_after)
            parts.append(f"$ {line}\n{out}")
            if line == exit_code_after:
                parts.append(f"$ echo $?\n{code}\n")
        self.write(name, "".join(parts))

    def write(self, name: str, text: str) -> None:
        lines = [line.rstrip() for line in text.rstrip("\n").splitlines()]
        path = OUTPUTS / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.written.append(path)

    def copy(self, source: Path, name: str) -> None:
        shutil.copyfile(source, OUTPUTS / name)
        self.written.append(OUTPUTS / name)


def environment(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}  # the fresh store, nothing else
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
        PYTHONUNBUFFERED="1",  # stdout and stderr interleave in the order they were written
        HF_HUB_OFFLINE="1",
        ALLYSTANCE_REALNEWS="off",
        COLUMNS=WIDTH,
        LINES="50",
        NO_COLOR="1",
        TERM="dumb",
    )
    return env


def allystance_on_path(bin_dir: Path) -> None:
    """An ``allystance`` command that runs this checkout's CLI with this Python."""
    bin_dir.mkdir()
    script = bin_dir / "allystance"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m experiments "$@"\n')
    script.chmod(0o755)


def pycon(lines: list[str]) -> str:
    """A Python session: each line run in one namespace, expressions echoed as the REPL does."""
    namespace: dict[str, object] = {}
    out = []
    for line in lines:
        out.append(f">>> {line}")
        try:
            value = eval(compile(line, "<docs>", "eval"), namespace)
        except SyntaxError:
            exec(compile(line, "<docs>", "exec"), namespace)
            continue
        if value is not None:
            out.append(repr(value))
    return "\n".join(out)


def free_port(preferred: int = 5001) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]


def record_serving(session: Session) -> None:
    """``mlflow models serve`` on the champion, one request with curl, then stop the server."""
    port = free_port()
    serve = f"mlflow models serve -m models:/allystance@champion --env-manager local -p {port}"
    log = (session.store / "serve.log").open("w")
    server = subprocess.Popen(
        shlex.split(serve), cwd=session.store, env=session.env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log_text = (session.store / "serve.log").read_text()
                    sys.exit(f"docs/generate.py: the model server did not start:\n{log_text}")
                time.sleep(1)
        body = json.dumps({"dataframe_records": [{"text": README_EXAMPLE_TEXT}]})
        request = (
            f"curl -s http://127.0.0.1:{port}/invocations -H 'Content-Type: application/json' -d '{body}'"
        )
        _, out = session.run(request)
        session.write("serve", f"$ {serve} &\n$ {request}\n{out}\n")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def update_readme_example(example: str, readme: Path = README) -> None:
    """Put ``example`` in a console block between the README's example markers."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(EXAMPLE_START), text.index(EXAMPLE_END)
    block = f"{EXAMPLE_START}\n```console\n{example.rstrip()}\n```\n"
    readme.write_text(text[:start] + block + text[end:], encoding="utf-8")


def generate(keep: bool = False) -> list[Path]:
    OUTPUTS.mkdir(parents=True, exist_ok=True)
    store = Path(tempfile.mkdtemp(prefix="allystance-docs-"))
    allystance_on_path(store / ".bin")
    session = Session(environment(store / ".bin"), store)
    for name in ("experiments", "labels", "tests"):  # the repository's paths, as the commands name them
        (store / name).symlink_to(ROOT / name)
    print(f"fresh store in {store}", flush=True)
    try:
        # The labels: the schema in Python, and the dataset checks (read-only, from the repository root).
        session.write(
            "labels-schema",
            pycon(
                [
                    "from labels import load_schema",
                    "s = load_schema()",
                    "s.version, s.hash, s.topic_ids",
                    's.encode_topics(["opcon"]), s.encode_stances({"opcon": "against"})',
                ]
            ),
        )
        # The shipped dataset has over a hundred warnings (labels/DATASHEET.md says why); show the last few.
        session.record("data-validate", ["allystance data validate | tail -4"], cwd=ROOT)
        session.record("data-stats", ["allystance data stats"], cwd=ROOT)
        lines = [json.dumps(r, ensure_ascii=False) for r in BROKEN_JSONL] + [BROKEN_LAST_LINE]
        (store / "broken.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        session.record(
            "data-validate-broken",
            ["cut -c1-120 broken.jsonl", "allystance data validate broken.jsonl"],
            exit_code_after="allystance data validate broken.jsonl",
        )
        fixtures = "tests/inference/fixtures"
        session.record(
            "data-import",
            [
                f"allystance data import {fixtures}/caption_glued.txt {fixtures}/combined_kitchen_sink.txt "
                "missing.txt -o paragraphs.jsonl --explain",
                "head -1 paragraphs.jsonl",
            ],
        )

        # Training, evaluation and prediction: the main job of `make demo`, in the fresh store.
        session.record("train-baseline", ["allystance train baseline --promote"])
        session.record("train-rules", ["allystance train rules"])
        session.record("evaluate", ["allystance evaluate -o eval/"])
        session.copy(store / "eval" / "stance_confusion.png", "stance_confusion.png")
        session.record(
            "predict",
            ["allystance predict experiments/samples/articles -o predictions.jsonl --articles article_summaries.jsonl"],
        )
        session.record("predict-rows", ["head -1 predictions.jsonl", "head -1 article_summaries.jsonl"])
        _, example = session.run(f'echo "{README_EXAMPLE_TEXT}" | allystance predict - -o - 2>/dev/null')
        example = f'$ echo "{README_EXAMPLE_TEXT}" \\\n    | .venv/bin/allystance predict - -o - 2>/dev/null\n{example}'
        session.write("readme-example", example)

        # A coverage report over the team's own articles.
        session.record(
            "report",
            [
                "allystance predict labels/data/articles.jsonl --segment -o coverage.jsonl",
                "allystance report coverage.jsonl --by year --by source -o report/",
            ],
        )
        for chart in ("topic_share_by_year", "stance_by_year", "topic_share_by_source", "stance_by_source"):
            session.copy(store / "report" / f"{chart}.png", f"report_{chart}.png")

        # Comparing runs: one more baseline, the recipe's own values without the grid search.
        session.run('allystance train baseline --set "search={}"')
        session.record(
            "compare",
            [
                "allystance experiments compare --plot runs.png --html runs.html",
                "allystance experiments best --metric test_stance_macro_f1",
            ],
        )
        session.copy(store / "runs.png", "compare_per_topic.png")

        # Growing the dataset: pick paragraphs to label, merge a labelled export, retrain, compare.
        export = "tests/experiments/fixtures/label_studio_export.json"
        session.record(
            "grow",
            [
                "allystance data import experiments/samples/articles -o pool.jsonl",
                "cp labels/data/paragraphs.jsonl my_labels.jsonl",
                "allystance data suggest pool.jsonl -n 5 --diverse --format label-studio "
                "--exclude my_labels.jsonl -o batch1.json",
                f"allystance data merge {export} --into my_labels.jsonl",
                "allystance data validate my_labels.jsonl | tail -1",
                'allystance train baseline --set data=my_labels.jsonl --set "search={}" 2>&1 | tail -1',
                "allystance experiments compare --top 3",
            ],
        )

        # Serving the champion over HTTP.
        record_serving(session)
    finally:
        if keep:
            print(f"kept {store}")
        else:
            shutil.rmtree(store, ignore_errors=True)
    update_readme_example(example)
    return session.written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="Keep the temporary store and files afterwards.")
    args = parser.parse_args()
    start = time.perf_counter()
    written = generate(keep=args.keep)
    print(f"wrote {len(written)} files to {OUTPUTS.relative_to(ROOT)} and README.md's example "
          f"in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
