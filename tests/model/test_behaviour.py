"""Behavioural tests: what any good model must do, whatever its scores on the test split.

The cases are the team's behaviour suite (``experiments/behaviour``, one YAML file per
capability; see its README). They run against the baseline trained on the shipped data,
with a ceiling per capability (a regression guard: a capability that gets worse fails the
build), and against any model given with ``pytest tests/model --model-uri URI``, which is
held to the same ceilings: no worse than today's baseline on any capability.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from experiments.defaults import BEHAVIOUR_SUITE
from inference.model_io import Predictor
from training.behaviour import BehaviourResult, load_suite, run_suite

pytestmark = pytest.mark.slow

# Failure rate per capability of the baseline trained in the test session (experiments/
# baseline.yaml without its search, dataset v9, suite 772c14bc), rounded up to the next
# hundredth: one more failing case breaks the build. Lower a ceiling when the baseline gets
# better; raise one only with a reason in the commit message. Retrained on dataset v9 (546
# paragraphs written for the real-news topic errors the v8 blends share), this baseline got
# better on actions (1 of 21, was 2), off_domain (3 of 23, was 5; NATO's 5% target, a city's
# cost-sharing deal for a bridge and a US-North Korea exchange of letters still fail) and
# resume_vs_suspend (8 of 28, was 9), and worse by one case on hedges (12 of 20),
# routine_facts (4 of 18: a drill "held every year" read as favor) and typos_casing (1 of 14).
# The three ceilings are raised to what was measured: 4 cases better, 3 worse.
CEILINGS = {
    "actions": 0.05,  # 1 of 21 cases fail (v8: 2)
    "attribution": 0.10,  # 2 of 20 (v8: 2)
    "hedges": 0.60,  # 12 of 20 (v8: 11)
    "negation": 0.19,  # 7 of 38 (v8: 7)
    "off_domain": 0.14,  # 3 of 23 (v8: 5)
    "reject_vs_echo": 0.57,  # 17 of 30 (v8: 17)
    "resume_vs_suspend": 0.29,  # 8 of 28 (v8: 9)
    "routine_facts": 0.23,  # 4 of 18 (v8: 3)
    "state_media": 0.05,  # 1 of 20 (v8: 1)
    "swaps": 0.05,  # 1 of 20 (v8: 1)
    "two_sides": 0.72,  # 10 of 14 (v8: 10)
    "typos_casing": 0.08,  # 1 of 14 (v8: 0)
}


def breaches(rates: dict[str, float], ceilings: dict[str, float]) -> list[str]:
    """Capabilities whose failure rate is over its ceiling, as readable lines; a capability
    with no ceiling is one too, so that the guard covers every capability."""
    out = []
    for name, rate in rates.items():
        if name not in ceilings:
            out.append(f"{name}: no ceiling in CEILINGS (measured {rate:.3f})")
        elif rate > ceilings[name] + 1e-9:
            out.append(f"{name}: failure rate {rate:.3f} is over its ceiling {ceilings[name]:.2f}")
    return out


def stance_swapped(predictor: Predictor, a: str = "favor", b: str = "against") -> Predictor:
    """``predictor`` with stance labels ``a`` and ``b`` swapped: a deliberately broken model."""
    order = list(range(len(predictor.schema.stance_values)))
    i, j = predictor.schema.stance_values.index(a), predictor.schema.stance_values.index(b)
    order[i], order[j] = j, i

    class Swapped:
        def predict_scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
            topics, stance = predictor.model.predict_scores(texts)
            return topics, stance[:, :, order]

    return Predictor(Swapped(), predictor.meta, predictor.schema, source=f"{predictor.source} (swapped)")


@pytest.fixture(scope="session")
def suite():
    return load_suite(BEHAVIOUR_SUITE)


def _report(result: BehaviourResult) -> str:
    lines = [f"{name}: {rate:.3f}" for name, rate in result.failure_rates().items()]
    for heading, texts in result.examples(3):
        lines += [heading, *(f"    {t}" for t in texts)]
    return "\n".join(lines)


def test_the_suite_covers_ten_capabilities_and_every_kind(suite):
    assert len(suite.cases) >= 250
    assert len(suite.capabilities) >= 10
    assert {c.kind for c in suite.cases} == {"MFT", "INV", "DIR"}
    assert len({c.id for c in suite.cases}) == len(suite.cases), "case ids must be unique"
    # Every template slot was filled: a stray brace means a filler is missing.
    assert not [t for t in suite.texts if "{" in t or "}" in t]


def test_no_capability_is_worse_than_its_ceiling(predictor, suite):
    """The regression guard: one more failing case in any capability fails the build (for a
    ``--model-uri`` model: it must be no worse than the baseline on any capability)."""
    result = run_suite(suite, predictor)
    assert breaches(result.failure_rates(), CEILINGS) == [], _report(result)


def test_every_ceiling_names_a_capability_of_the_suite(suite):
    assert set(CEILINGS) == {c.name for c in suite.capabilities}


def test_a_model_with_favor_and_against_swapped_breaks_the_guard(suite, shipped_baseline):
    sound = run_suite(suite, shipped_baseline).failure_rates()
    broken = run_suite(suite, stance_swapped(shipped_baseline)).failure_rates()
    failed = breaches(broken, CEILINGS)
    assert {"actions", "attribution", "negation", "resume_vs_suspend", "state_media"} <= {
        line.split(":")[0] for line in failed
    }, failed
    # Cases that expect neutral, no topic or unchanged labels cannot tell the swap apart.
    for name in ("off_domain", "routine_facts", "two_sides", "swaps", "typos_casing"):
        assert broken[name] == pytest.approx(sound[name]), name
