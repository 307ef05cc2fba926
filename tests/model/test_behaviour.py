"""Behavioural tests: what any good model must do, whatever its scores on the test split.

Run against the baseline trained on the shipped data, and against any model given with
``pytest tests/model --model-uri models:/allystance@champion``. The paragraphs are written
for these tests and appear nowhere in the dataset.
"""

import pytest

from tests.model.conftest import SHIPPED_BASELINE

pytestmark = pytest.mark.slow

# Cases the shipped TF-IDF baseline is known to get wrong (measured on dataset v1): expected
# failures for it alone, so they keep running and show as XPASS once a baseline learns them.
# Not strict: a relabelled dataset may fix one, and that is no reason for a red build.
BASELINE_KNOWN_FAILURES = {
    # "insisted ... must sharply increase" has no n-gram the baseline ties to favor.
    "demand-sma",
    # Measured on dataset v2: the plain US demand sits at the favor/against boundary for the
    # recipe's defaults (favor 0.57 with "James DeHart", 0.43 with "Robert Miller", 0.42 with
    # "The negotiator"), so a name's character n-grams tip it; v2's many refusals that repeat
    # "pay far more" pull it towards against.
    "cost-envoy-name",
}

# Invariance: who is speaking and when does not change what a paragraph is about or its stance.
NAME_SWAPS = [
    pytest.param(
        "{}, the chief US negotiator, told reporters that Seoul must pay far more for the American "
        "troops stationed in Korea and that the current split of the bill was no longer sustainable.",
        ["James DeHart", "Robert Miller", "Linda Thompson"],
        id="cost-envoy-name",
    ),
    pytest.param(
        "Unification minister {} said the government would send rice and fertiliser to the North and "
        "called for an early resumption of inter-Korean dialogue.",
        ["Kim Yeon-chul", "Park Ji-won", "Lee Jong-seok"],
        id="aid-minister-name",
    ),
    pytest.param(
        "A spokesman for the North's army, {}, warned that the allies' combined military drills were a "
        "rehearsal for invasion and would be met with an overwhelming response.",
        ["Kim Yong-chol", "Ri Son-gwon", "Pak Jong-chon"],
        id="drills-spokesman-name",
    ),
]
DATE_SWAPS = [
    pytest.param(
        "Seoul and Washington agreed on {} to delay the transfer of wartime operational control until "
        "South Korea meets the conditions set by the alliance.",
        ["Monday", "October 23", "14 March 2019", "2024-11-02"],
        id="opcon-delay-date",
    ),
    pytest.param(
        "Opposition lawmakers said on {} that the US demand for a fivefold increase in South Korea's "
        "payment for American troops was extortion and urged the government to reject it.",
        ["Tuesday", "November 19", "5 December 2019", "2025-07-30"],
        id="cost-extortion-date",
    ),
]

# Direction: turning a demand into its refusal flips the cost-sharing stance.
DEMAND_REFUSAL = [
    pytest.param(
        "Washington demanded that Seoul pay far more for the upkeep of American troops under the new "
        "cost-sharing deal, saying the allies' current split was unfair to US taxpayers.",
        "Seoul refused Washington's demand that it pay far more for the upkeep of American troops under "
        "the new cost-sharing deal, calling the figure excessive and unfair.",
        id="demand-upkeep",
    ),
    pytest.param(
        "The US negotiator insisted that South Korea must sharply increase its contribution under the "
        "Special Measures Agreement before talks could conclude.",
        "South Korean negotiators rejected the US call to sharply increase Seoul's contribution under the "
        "Special Measures Agreement, saying they would not accept an unreasonable burden.",
        id="demand-sma",
    ),
    pytest.param(
        "The US president said South Korea is a wealthy country and should pay much more for the "
        "protection that American troops provide.",
        "Seoul said South Korea already pays its fair share for the American troops and would not "
        "accept a bigger bill.",
        id="demand-wealthy",
    ),
]

# No alliance content: no topic.
OFF_DOMAIN = [
    "The K-pop group announced a twelve-city world tour that opens in Los Angeles next spring.",
    "Samsung Electronics reported a rise in quarterly operating profit on strong memory chip sales.",
    "Heavy rain flooded several roads in southern Gyeonggi province on Tuesday, the weather agency said.",
    "Subscribe to our newsletter for the latest headlines, delivered to your inbox every morning.",
]


def _labels(prediction) -> tuple[list[str], dict[str, str]]:
    return prediction.topics, prediction.stance


@pytest.fixture(autouse=True)
def _baseline_known_failures(request) -> None:
    params = getattr(request.node, "callspec", None)
    on_baseline = params is not None and params.params.get("predictor") == SHIPPED_BASELINE
    if on_baseline and any(known in params.id for known in BASELINE_KNOWN_FAILURES):
        request.applymarker(pytest.mark.xfail(strict=False, reason="known baseline failure"))


@pytest.mark.parametrize(("template", "fillers"), NAME_SWAPS + DATE_SWAPS)
def test_swapping_a_name_or_a_date_leaves_the_labels_alone(predictor, template, fillers):
    """Invariance: the labels of a paragraph do not depend on who said it or when."""
    predictions = predictor.predict([template.format(f) for f in fillers])
    first = _labels(predictions[0])
    assert first[0], f"no topic found in {template.format(fillers[0])!r}"
    for filler, prediction in zip(fillers, predictions, strict=True):
        assert _labels(prediction) == first, f"{filler!r} changed the labels"


@pytest.mark.parametrize(("demand", "refusal"), DEMAND_REFUSAL)
def test_refusing_a_demand_flips_the_cost_sharing_stance(predictor, demand, refusal):
    """Direction: a demand to pay more is favor; refusing it is against."""
    asked, refused = predictor.predict([demand, refusal])
    assert "cost_sharing" in asked.topics and "cost_sharing" in refused.topics
    assert asked.stance["cost_sharing"] == "favor"
    assert refused.stance["cost_sharing"] == "against"


def test_a_paragraph_with_no_alliance_content_gets_no_topic(predictor):
    for text, prediction in zip(OFF_DOMAIN, predictor.predict(OFF_DOMAIN), strict=True):
        assert prediction.topics == [], f"{text!r} got {prediction.topics}"
