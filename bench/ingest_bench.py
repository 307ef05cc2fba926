"""Benchmark of article import: 10,000 generated article files, rate and memory as it goes.

Not a test: run it with ``make bench``. It writes synthetic articles (story sentences plus
page furniture: bylines, captions, widgets, a related section) to a temporary folder, imports
the folder in one streaming pass, and prints paragraphs per second and peak RSS after 1,000,
5,000 and 10,000 files. A flat peak RSS from 1,000 files on shows that memory does not grow
with the number of files.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

from inference.ingest import SegmentedArticle, import_articles

SUBJECTS = ["The defence ministry", "A senior official", "The unification ministry", "Negotiators", "The Pentagon"]
VERBS = ["said on Monday that", "told reporters that", "announced that", "warned that", "confirmed that"]
CLAUSES = [
    "the allies would hold the spring exercise at full scale",
    "talks on the upkeep of American troops would resume next month",
    "the transfer of wartime command needed more verification",
    "aid shipments to the North would travel through Paju",
    "the combined command would move its headquarters by the end of the year",
    "military hotlines with Pyongyang had gone unanswered for weeks",
]
TAILS = ["after weeks of talks.", "despite objections in parliament.", "citing new missile launches.", "."]
FURNITURE_TOP = [
    "By Kim Min-seo  minseo.kim@example.com",
    "Home > World > Asia-Pacific",
    "Updated: 2024-11-05 09:12 KST",
]
FURNITURE_BOTTOM = [
    "Share this article: Facebook | X | KakaoTalk | Email",
    "Soldiers unload equipment at a port in Pyeongtaek. (Yonhap)",
    "Copyright 2024 The Peninsula Ledger. All rights reserved.",
]


def _sentence(rng: random.Random) -> str:
    tail = rng.choice(TAILS)
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(CLAUSES)}{'' if tail == '.' else ' '}{tail}"


def generate(folder: Path, n_files: int, seed: int = 0) -> None:
    """Write ``n_files`` synthetic articles of 6-10 paragraphs with furniture around them."""
    rng = random.Random(seed)
    for i in range(n_files):
        blocks = [f"Allies weigh next steps, report {i}", rng.choice(FURNITURE_TOP)]
        blocks += [" ".join(_sentence(rng) for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(6, 10))]
        blocks += [rng.choice(FURNITURE_BOTTOM), "Related articles", "Weather: rain for Jeju", "Baseball: Lions win"]
        (folder / f"article-{i:05d}.txt").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    checkpoints = sorted({1_000, 5_000, args.files} & set(range(1, args.files + 1)))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "articles"
        folder.mkdir()
        started = time.perf_counter()
        generate(folder, args.files)
        seconds = time.perf_counter() - started
        print(f"generated {args.files:,} files in {seconds:.1f} s; peak RSS {_peak_rss_mib():.0f} MiB")
        state = {"articles": 0, "paragraphs": 0}
        started = time.perf_counter()
        print(f"{'files':>7} {'paragraphs':>11} {'seconds':>8} {'paragraphs/s':>13} {'peak RSS MiB':>13}")

        def checkpoint(article: SegmentedArticle) -> None:
            state["articles"] += 1
            state["paragraphs"] += len(article.paragraphs)
            if state["articles"] in checkpoints:
                elapsed = time.perf_counter() - started
                print(
                    f"{state['articles']:>7,} {state['paragraphs']:>11,} {elapsed:>8.1f} "
                    f"{state['paragraphs'] / elapsed:>13,.0f} {_peak_rss_mib():>13.0f}",
                    flush=True,
                )

        report = import_articles([folder], Path(tmp) / "paragraphs.jsonl", on_article=checkpoint)
        print(f"dropped blocks: {dict(sorted(report.dropped.items()))}; skipped inputs: {len(report.skipped)}")


if __name__ == "__main__":
    main()
