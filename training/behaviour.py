"""The behavioural suite: what a model can and cannot do, by capability (in the style of
CheckList, Ribeiro et al. 2020), for every model family.

The suite is data: a folder of YAML files, one per capability, plus ``lexicons.yaml`` with
slot fillers (``experiments/behaviour`` is the team's; see its README). A case is one of

- **MFT** (minimum functionality): ``text`` and ``expect``, the labels it must get. Every
  topic named must be predicted with that stance; topics not named are not checked, except
  that ``expect: {}`` means no topic at all.
- **INV** (invariance): ``text`` with ``vary`` (slots whose fillers are swapped) or
  ``perturb`` (typos, casing); every variant must get the same topics and stances.
- **DIR** (direction): ``base`` and ``changed`` with ``towards``: the changed paragraph's
  probability of that stance for that topic must be higher than the base paragraph's.

Templates take ``{slot}`` fillers from the lexicons (or a case's own ``slots``). An MFT or
DIR template gives ``fills`` cases (default 2); the k-th takes each slot's entry k places
after the template's own offset, so that templates of one file use different fillers. An
INV case is one group: the ``vary`` slots take ``fills`` entries (default 4) while the other
slots keep their first, or each fill is perturbed.

Scoring runs every text through ``Predictor.score`` once; a capability's failure rate is the
share of its cases that fail.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from inference.model_io import Predictor
from labels import LabelSchema, load_schema
from labels.errors import UserError
from labels.stats import Table

KINDS = ("MFT", "INV", "DIR")
LEXICONS_FILE = "lexicons.yaml"
DEFAULT_FILLS = {"MFT": 2, "DIR": 2, "INV": 4}
_SLOT = re.compile(r"\{(\w+)\}")
_FILE_KEYS = {"capability", "description", "cases"}
_CASE_KEYS = {
    "MFT": {"text", "expect", "fills", "slots"},
    "INV": {"text", "vary", "perturb", "fills", "slots"},
    "DIR": {"base", "changed", "towards", "fills", "slots"},
}


class SuiteError(UserError):
    """The behaviour suite's files are malformed; the message names the file and the case."""


# -- perturbations --------------------------------------------------------------------------


def add_typos(text: str, n: int = 2) -> str:
    """Swap two neighbouring letters inside ``n`` words of five letters or more; the words
    and positions depend only on the text, so a run is repeatable."""
    rng = random.Random(zlib.crc32(text.encode("utf-8")))
    words = [m for m in re.finditer(r"[A-Za-z]{5,}", text)]
    chars = list(text)
    for match in sorted(rng.sample(words, min(n, len(words))), key=lambda m: m.start()):
        i = rng.randrange(match.start() + 1, match.end() - 2)
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


PERTURBATIONS: dict[str, Callable[[str], str]] = {
    "typos": add_typos,
    "lowercase": str.lower,
    "uppercase": str.upper,
}


# -- the suite ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One test: its texts (MFT one, INV the group, DIR base then changed) and expectation
    (MFT the labels, DIR the stance each topic moves towards, INV none)."""

    id: str
    capability: str
    kind: str
    texts: tuple[str, ...]
    expect: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Capability:
    name: str
    description: str
    cases: tuple[Case, ...]

    @property
    def kinds(self) -> dict[str, int]:
        return {k: n for k in KINDS if (n := sum(c.kind == k for c in self.cases))}


@dataclass(frozen=True)
class Suite:
    capabilities: tuple[Capability, ...]
    digest: str  # of the files' contents: results are comparable when digests match

    @property
    def cases(self) -> list[Case]:
        return [c for cap in self.capabilities for c in cap.cases]

    @property
    def texts(self) -> list[str]:
        return list(dict.fromkeys(t for c in self.cases for t in c.texts))


def _read_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None


def _kind(raw: dict) -> str:
    if "base" in raw or "changed" in raw or "towards" in raw:
        return "DIR"
    if "vary" in raw or "perturb" in raw:
        return "INV"
    return "MFT"


def _fill(template: str, slots: dict[str, list[str]], picks: dict[str, int], where: str) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in slots:
            raise SuiteError(f"{where}: no lexicon for slot {{{name}}}; add it to {LEXICONS_FILE} or the case's slots")
        values = slots[name]
        return values[picks.get(name, 0) % len(values)]

    return _SLOT.sub(one, template)


def _check_labels(labels: object, schema: LabelSchema, where: str, key: str) -> dict[str, str]:
    if not isinstance(labels, dict):
        raise SuiteError(f"{where}: {key} must be a mapping of topic to stance, e.g. {{exercises: favor}}")
    for topic, stance in labels.items():
        if topic not in schema.topic_ids:
            raise SuiteError(f"{where}: unknown topic {topic!r} in {key}; the schema has {', '.join(schema.topic_ids)}")
        if stance not in schema.stance_values:
            raise SuiteError(
                f"{where}: unknown stance {stance!r} in {key}; the schema has {', '.join(schema.stance_values)}"
            )
    return dict(labels)


def _expand(
    raw: dict, index: int, capability: str, lexicons: dict[str, list[str]], schema: LabelSchema, where: str
) -> list[Case]:
    kind = _kind(raw)
    unknown = set(raw) - _CASE_KEYS[kind]
    if unknown:
        raise SuiteError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} for a {kind} case")
    slots = {**lexicons, **(raw.get("slots") or {})}
    fills = int(raw.get("fills", DEFAULT_FILLS[kind]))
    if fills < 1:
        raise SuiteError(f"{where}: fills must be 1 or more")
    case_id = f"{capability}-{index:02d}"
    if kind == "MFT":
        if "text" not in raw or "expect" not in raw:
            raise SuiteError(f"{where}: an MFT case needs text and expect")
        expect = _check_labels(raw["expect"], schema, where, "expect")
        return _fills(
            raw["text"], slots, fills, index, where, lambda k, t: Case(f"{case_id}-{k}", capability, kind, t, expect)
        )
    if kind == "DIR":
        if not {"base", "changed", "towards"} <= set(raw):
            raise SuiteError(f"{where}: a DIR case needs base, changed and towards")
        towards = _check_labels(raw["towards"], schema, where, "towards")
        if not towards:
            raise SuiteError(f"{where}: towards must name at least one topic")
        template = raw["base"] + "\x00" + raw["changed"]  # one fill for both, so they differ only where written
        return _fills(
            template,
            slots,
            fills,
            index,
            where,
            lambda k, t: Case(f"{case_id}-{k}", capability, kind, tuple(t[0].split("\x00")), towards),
        )
    if "text" not in raw:
        raise SuiteError(f"{where}: an INV case needs text")
    vary, perturb = raw.get("vary") or [], raw.get("perturb") or []
    if bool(vary) == bool(perturb):
        raise SuiteError(f"{where}: an INV case takes either vary (slots to swap) or perturb, not both or neither")
    if vary:
        missing = [s for s in vary if f"{{{s}}}" not in raw["text"]]
        if missing:
            raise SuiteError(f"{where}: vary names slot(s) not in the text: {', '.join(missing)}")
        group = [_fill(raw["text"], slots, {s: k for s in vary}, where) for k in range(fills)]
        group = list(dict.fromkeys(group))
        if len(group) < 2:
            raise SuiteError(f"{where}: vary gives only one distinct text; give the slot more fillers")
        return [Case(case_id, capability, kind, tuple(group))]
    bad = [p for p in perturb if p not in PERTURBATIONS]
    if bad:
        raise SuiteError(f"{where}: unknown perturbation(s) {', '.join(bad)}; use {', '.join(PERTURBATIONS)}")
    cases = []
    for k in range(int(raw.get("fills", 1))):
        text = _fill(raw["text"], slots, _offsets(raw["text"], index + k), where)
        group = (text, *(PERTURBATIONS[p](text) for p in perturb))
        cases.append(Case(f"{case_id}-{k}", capability, kind, group))
    return list({c.texts: c for c in cases}.values())


def _offsets(template: str, offset: int) -> dict[str, int]:
    return {name: offset for name in _SLOT.findall(template)}


def _fills(
    template: str,
    slots: dict[str, list[str]],
    fills: int,
    index: int,
    where: str,
    make: Callable[[int, tuple[str, ...]], Case],
) -> list[Case]:
    """``fills`` distinct fillings of a template (fewer when it has fewer distinct ones)."""
    seen: dict[str, None] = {}
    for k in range(fills):
        seen.setdefault(_fill(template, slots, _offsets(template, index + k), where))
    return [make(k, (text,)) for k, text in enumerate(seen)]


def load_suite(folder: str | Path, schema: LabelSchema | None = None) -> Suite:
    """Read and expand every capability file in ``folder``; malformed files are one-line errors."""
    schema = schema or load_schema()
    folder = Path(folder)
    if not folder.is_dir():
        raise SuiteError(f"no behaviour suite at {folder}: give a folder of capability YAML files")
    digest = hashlib.sha256()
    lexicons_path = folder / LEXICONS_FILE
    lexicons: dict[str, list[str]] = {}
    if lexicons_path.is_file():
        digest.update(lexicons_path.read_bytes())
        raw = _read_yaml(lexicons_path) or {}
        if not isinstance(raw, dict) or not all(isinstance(v, list) and v for v in raw.values()):
            raise SuiteError(f"{lexicons_path}: each slot must name a non-empty list of fillers")
        lexicons = {k: [str(x) for x in v] for k, v in raw.items()}
    capabilities = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name == LEXICONS_FILE:
            continue
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
        raw = _read_yaml(path)
        if not isinstance(raw, dict) or not {"capability", "cases"} <= set(raw):
            raise SuiteError(f"{path}: expected 'capability', 'description' and a list of 'cases'")
        unknown = set(raw) - _FILE_KEYS
        if unknown:
            raise SuiteError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
        name = str(raw["capability"])
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise SuiteError(f"{path}: capability names are lower-case identifiers (they name metrics), got {name!r}")
        if any(c.name == name for c in capabilities):
            raise SuiteError(f"{path}: capability {name!r} is defined twice")
        cases: list[Case] = []
        for i, case in enumerate(raw["cases"] or [], start=1):
            if not isinstance(case, dict):
                raise SuiteError(f"{path}: case {i} is not a mapping")
            cases += _expand(case, i, name, lexicons, schema, f"{path.name} case {i}")
        if not cases:
            raise SuiteError(f"{path}: capability {name!r} has no cases")
        capabilities.append(Capability(name, " ".join(str(raw.get("description", "")).split()), tuple(cases)))
    if not capabilities:
        raise SuiteError(f"{folder} holds no capability files (*.yaml besides {LEXICONS_FILE})")
    return Suite(tuple(capabilities), digest.hexdigest()[:16])


# -- running it -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """A case's result: whether it passed, and what the model said of each of its texts."""

    case: Case
    passed: bool
    got: tuple[dict, ...]  # per text: topics and stances (DIR: also the probabilities compared)

    def row(self) -> dict:
        """One line of the failures file."""
        return {
            "id": self.case.id,
            "capability": self.case.capability,
            "kind": self.case.kind,
            "texts": list(self.case.texts),
            "expected": _expected(self.case),
            "got": list(self.got),
        }


def _expected(case: Case) -> str:
    if case.kind == "INV":
        return "the same labels for every variant"
    if case.kind == "DIR":
        return "; ".join(f"{t}: more {s}" for t, s in case.expect.items())
    return _labels_text(case.expect)


def _labels_text(labels: dict[str, str]) -> str:
    return ", ".join(f"{t}: {s}" for t, s in labels.items()) or "no topic"


@dataclass
class BehaviourResult:
    """Every case's outcome, with the suite it came from."""

    suite: Suite
    outcomes: list[Outcome]

    def failure_rates(self) -> dict[str, float]:
        out = {}
        for cap in self.suite.capabilities:
            mine = [o for o in self.outcomes if o.case.capability == cap.name]
            out[cap.name] = sum(not o.passed for o in mine) / len(mine)
        return out

    def failures(self, capability: str | None = None) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed and capability in (None, o.case.capability)]

    @property
    def overall(self) -> float:
        return sum(not o.passed for o in self.outcomes) / len(self.outcomes)

    def metrics(self) -> dict[str, float]:
        """Logged to the model's run: ``behaviour_<capability>_failure_rate`` and the overall rate."""
        out = {f"behaviour_{name}_failure_rate": rate for name, rate in self.failure_rates().items()}
        out["behaviour_failure_rate"] = self.overall
        out["behaviour_cases"] = float(len(self.outcomes))
        return out

    def tables(self) -> list[Table]:
        """The failure rate per capability, with the cases by kind."""
        rates = self.failure_rates()
        rows = []
        for cap in self.suite.capabilities:
            kinds = " ".join(f"{k} {n}" for k, n in cap.kinds.items())
            rows.append(
                (cap.name, kinds, str(len(cap.cases)), str(len(self.failures(cap.name))), f"{rates[cap.name]:.0%}")
            )
        rows.append(("all", "", str(len(self.outcomes)), str(len(self.failures())), f"{self.overall:.0%}"))
        title = f"Behaviour suite {self.suite.digest}: failure rate per capability (lower is better)"
        return [Table(title, ("capability", "cases by kind", "cases", "failed", "failure rate"), tuple(rows))]

    def examples(self, per_capability: int = 2) -> list[tuple[str, list[str]]]:
        """A few failing cases per capability: a heading (capability, kind, expected, got) and
        the paragraphs that show the failure (an INV case: the first variant and one that differs)."""
        out = []
        for cap in self.suite.capabilities:
            for outcome in self.failures(cap.name)[:per_capability]:
                case = outcome.case
                heading = f"{case.id} ({case.kind}): expected {_expected(case)}; got {_got_text(outcome)}"
                out.append((heading, _shown_texts(outcome)))
        return out

    def write_failures(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for outcome in self.failures():
                fh.write(json.dumps(outcome.row(), ensure_ascii=False) + "\n")
        return path

    def summary(self) -> dict:
        """What the run keeps besides the metrics: the suite's digest and the table's numbers."""
        rates = self.failure_rates()
        return {
            "suite_digest": self.suite.digest,
            "cases": len(self.outcomes),
            "failure_rate": self.overall,
            "capabilities": {
                cap.name: {"cases": len(cap.cases), "kinds": cap.kinds, "failure_rate": rates[cap.name]}
                for cap in self.suite.capabilities
            },
        }


def _shown_texts(outcome: Outcome) -> list[str]:
    case = outcome.case
    if case.kind != "INV":
        return list(case.texts)
    first = outcome.got[0]["labels"]
    differs = next(i for i, g in enumerate(outcome.got) if g["labels"] != first)
    return [case.texts[0], case.texts[differs]]


def _got_text(outcome: Outcome) -> str:
    case = outcome.case
    if case.kind == "DIR":
        return "; ".join(
            f"{t}: {s} {outcome.got[0]['probabilities'][t]:.2f} -> {outcome.got[1]['probabilities'][t]:.2f}"
            for t, s in case.expect.items()
        )
    if case.kind == "INV":
        return " | ".join(dict.fromkeys(_labels_text(g["labels"]) for g in outcome.got))
    return _labels_text(outcome.got[0]["labels"])


def _mft_passes(expect: dict[str, str], labels: dict[str, str]) -> bool:
    if not expect:
        return not labels
    return all(labels.get(t) == s for t, s in expect.items())


def run_suite(suite: Suite, predictor: Predictor) -> BehaviourResult:
    """Score every text of the suite once and judge each case."""
    texts = suite.texts
    topic_scores, stance_proba = predictor.score(texts)
    predictions = predictor.decide(topic_scores, stance_proba)
    index = {t: i for i, t in enumerate(texts)}
    topic_index = {t: i for i, t in enumerate(predictor.schema.topic_ids)}
    stance_index = {s: i for i, s in enumerate(predictor.schema.stance_values)}

    def labels(text: str) -> dict[str, str]:
        return dict(predictions[index[text]].stance)

    outcomes = []
    for case in suite.cases:
        if case.kind == "MFT":
            got = labels(case.texts[0])
            outcomes.append(Outcome(case, _mft_passes(case.expect, got), ({"labels": got},)))
        elif case.kind == "INV":
            got = [labels(t) for t in case.texts]
            outcomes.append(Outcome(case, all(g == got[0] for g in got), tuple({"labels": g} for g in got)))
        else:
            rows = [index[t] for t in case.texts]
            proba = {
                t: [float(stance_proba[r, topic_index[t], stance_index[s]]) for r in rows]
                for t, s in case.expect.items()
            }
            passed = all(p[1] > p[0] for p in proba.values())
            got = tuple(
                {"labels": labels(text), "probabilities": {t: round(p[k], 4) for t, p in proba.items()}}
                for k, text in enumerate(case.texts)
            )
            outcomes.append(Outcome(case, passed, got))
    return BehaviourResult(suite, outcomes)
