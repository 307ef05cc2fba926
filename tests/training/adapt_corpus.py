"""A small unlabelled corpus for the adaptation tests, written by the team for them: short
articles of the kind a user's archive holds, about the alliance and about everything else a
paper prints. No label anywhere; the tests only read and segment it."""

from __future__ import annotations

import json
from pathlib import Path

ARTICLES = {
    "harbour-budget.txt": [
        "Busan's port authority approved a budget that puts most of next year's money into dredging "
        "the northern channel, which container lines say has become too shallow for the largest ships.",
        "The authority's chairman said the work would start in March and close two berths at a time, "
        "so that no shipping line loses more than a week of calls.",
        "Fishing cooperatives on the east side of the harbour asked for compensation, saying the "
        "dredging season overlaps with the spring anchovy run.",
        "City councillors will vote on the compensation scheme next month after an environmental "
        "review of the spoil dumping site is published.",
    ],
    "cost-share-talks.txt": [
        "Negotiators from Seoul and Washington ended a third day of talks on the upkeep of American "
        "forces in Korea without agreeing on how large next year's increase should be.",
        "A foreign ministry official said Seoul had offered a rise in line with inflation and no "
        "more, and that the American side had asked for a figure several times larger.",
        "Opposition lawmakers urged the government to hold firm, arguing that the country already "
        "pays for the land, the construction and most of the Korean staff on the bases.",
        "A former US envoy wrote in a newspaper column that Seoul could afford to carry a larger "
        "share and that the alliance would be stronger if it did.",
    ],
    "baseball-final.txt": [
        "The Lotte Giants won their first championship in more than three decades on Sunday, beating "
        "the visitors four to two in a deciding game that went to extra innings.",
        "Fans poured into the streets around Sajik stadium after the last out, and police closed two "
        "roads until well after midnight.",
        "The winning pitcher, a 23-year-old in his second professional season, threw seven innings "
        "and said afterwards that he had barely slept all week.",
        "The club's owner promised a parade through the city centre on Tuesday afternoon.",
    ],
    "drill-schedule.txt": [
        "The joint chiefs of staff said the allies' summer command post exercise would go ahead in "
        "August with field training at a larger scale than last year.",
        "Officers said the drills would rehearse the defence of the capital area and include a river "
        "crossing by an American armoured brigade.",
        "Civic groups planned a rally outside the defence ministry, saying the exercises only raise "
        "tension on the peninsula and should be postponed.",
        "A ministry spokesman answered that the drills were defensive and long announced, and that "
        "readiness could not be kept on paper.",
    ],
    "weather-rain.txt": [
        "Heavy rain flooded low-lying roads in the southern provinces overnight, and the weather "
        "agency kept its warnings in place for the coast until Thursday.",
        "Rail operators suspended two regional lines after water covered the tracks near a river "
        "bridge, and buses replaced the morning trains.",
        "Farmers in the delta said the timing was the worst possible, with the rice harvest only a "
        "fortnight away and many fields still under water.",
        "Forecasters expect drier air to arrive at the weekend, though another front may follow early next week.",
    ],
}

# Paragraphs of a table (one per row, taken as they are), as a wire feed's export would give.
ROWS = [
    "The unification minister said she would propose a meeting of the inter-Korean liaison office "
    "to discuss reuniting families separated by the war.",
    "North Korea did not answer the proposal by the end of the day, and its state media repeated "
    "that it had no interest in talking to the South.",
    "Conservative lawmakers said any talks should wait until the North stops its missile tests.",
    "A think tank in Seoul argued that the allies should set a date for handing wartime command to "
    "a Korean general instead of waiting for more conditions to be met.",
    "The defence minister said the transfer would happen only when the combined forces had fully "
    "verified the new command's capability.",
    "Retired generals warned that a rushed transfer could weaken the joint command structure.",
    "The central bank left its base rate unchanged, citing household debt and a weaker won.",
    "Exporters reported a rise in semiconductor shipments for the third month in a row.",
    "Housing prices in the capital rose slightly, while prices in the provinces kept falling.",
    "A new museum of traditional crafts opened in Jeonju with an exhibition of lacquered boxes.",
    "The national orchestra announced a tour of five European cities for the spring season.",
    "A popular variety show ended its run after twelve years, and its hosts thanked viewers in a "
    "tearful final episode.",
    "Scientists at a university hospital reported a blood test that may detect pancreatic cancer "
    "earlier than scans do.",
    "The health ministry extended free influenza shots to everyone over sixty this winter.",
    "Air quality worsened across the capital as dust blew in from the west, and schools cancelled outdoor classes.",
    "The city of Incheon opened a new cycle path along the waterfront, linking two parks.",
    "Hundreds of runners took part in a charity marathon along the Han river on Saturday.",
    "A ferry operator added evening sailings to Jeju for the holiday week.",
    "Police arrested two men suspected of running a phone scam that targeted elderly people.",
    "The supreme court upheld a ruling that ordered a chemical company to pay damages to residents.",
    "Seoul's mayor announced plans to plant a million trees along major roads over five years.",
    "Ticket sales at cinemas recovered to their level before the pandemic for the first time.",
    "Washington's ambassador said the alliance remained the linchpin of security in the region and "
    "praised the close coordination between the two militaries.",
    "A poll found most respondents favoured keeping American troops in the country, though fewer "
    "agreed that Seoul should pay more for them.",
    "The national assembly's defence committee questioned officials about the cost of new barracks "
    "at the largest American base.",
    "Local shopkeepers near the base said business had slowed since fewer soldiers were allowed off post at night.",
    "A ceramics festival in Icheon drew record crowds on its opening weekend.",
    "The transport ministry said a high-speed rail link to the east coast would open two years late.",
    "Two Korean climbers reached the summit of a Himalayan peak that had never been climbed in winter.",
    "A startup in Pangyo raised new funding to build delivery robots for apartment complexes.",
]


def write_corpus(folder: Path) -> list[str]:
    """The articles as text files and the rows as a JSON-lines table under ``folder``; the
    inputs to give ``--unlabelled`` (the folder holds both)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, paragraphs in ARTICLES.items():
        (folder / name).write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    rows = [{"id": f"wire-{i}", "text": text} for i, text in enumerate(ROWS)]
    (folder / "wire.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return [str(folder)]


N_PARAGRAPHS = sum(len(p) for p in ARTICLES.values()) + len(ROWS)
