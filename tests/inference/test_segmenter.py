"""Team-written messy articles (tests/inference/fixtures): exact paragraphs kept, exact reasons dropped.

One fixture per kind of noise the ingestion issue lists, two that combine them, and an
HTML page. Each expectation is (title, kept paragraph texts, [(reason, start of dropped text)]).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.ingest import Article, SegmentSettings, flatten, iter_segmented, segment_article, segment_text

FIXTURES = Path(__file__).with_name("fixtures")

EXPECTED = {
    "about_us.txt": (
        "Lawmakers urge talks with the North",
        [
            "A group of forty lawmakers from the ruling and opposition parties on Thursday urged the government to propose military talks with North Korea to lower tension along the border, saying dialogue was the only way to prevent accidental clashes.",
            "The lawmakers said they would submit a resolution to the National Assembly next week.",
        ],
        [
            ("title", "Lawmakers urge talks with the North"),
            ("about", "About us: The Peninsula Ledger is an independent news site f"),
        ],
    ),
    "broken_quote.txt": (
        None,
        [
            "WASHINGTON -- A senior administration official defended the decision on Thursday to resume large-scale field drills on the peninsula.",
            '"We cannot keep a combined force ready with slide shows and video calls, and we will not apologise for training to deter aggression against North Korea," the official said.',
            "The official, who spoke on condition of anonymity, added that the allies would announce the dates of the next exercise in the coming weeks, after consulting Tokyo.",
        ],
        [],
    ),
    "byline_emails.txt": (
        None,
        [
            "The new Special Measures Agreement, signed in Washington on Monday, raises South Korea's payment for American troops by 8.3 percent next year and ties later increases to inflation.",
            "Officials in Seoul said the deal gave the alliance five years of stability, while critics in the opposition said the government had conceded too much too early.",
        ],
        [
            ("byline", "By Han Ji-won and Robert Ellis jiwon.han@example.com, r.elli"),
            ("dateline", "Updated: 2024-11-05 09:12 KST"),
            ("url_email", "Contact the reporters: jiwon.han@example.com | r.ellis@examp"),
            ("byline", "Staff writers in Washington contributed to this report."),
        ],
    ),
    "caption_glued.txt": (
        None,
        [
            "SEOUL, March 4 (Yonhap) -- South Korean and American troops began their annual spring exercise on Monday, the Joint Chiefs of Staff said, with field training restored to its full scale after several years of computer simulations.",
            "About 12,000 American personnel are taking part, roughly double last year's number, according to a defence ministry official.",
            "North Korea's state media called the drills a rehearsal for invasion and warned of countermeasures.",
        ],
        [
            ("caption", "Soldiers from both countries unload equipment at a port in P"),
            ("repeated", "Soldiers from both countries unload equipment at a port in P"),
        ],
    ),
    "chinese_footer.txt": (
        "Pyongyang condemns Freedom Shield drills",
        [
            "North Korea's foreign ministry on Sunday condemned the Freedom Shield exercise as a dangerous provocation and threatened what it called overwhelming countermeasures if the drills went ahead as planned.",
            "The statement came a day before tens of thousands of South Korean and American troops were due to begin eleven days of combined training.",
        ],
        [
            ("title", "Pyongyang condemns Freedom Shield drills"),
            ("copyright", "本文版权归原作者所有，未经许可不得转载。原文链接：http://www.example.cn/news/2023/031"),
            ("copyright", "版权所有 © 2023 环球新闻网 www.example.cn"),
        ],
    ),
    "combined_kitchen_sink.txt": (
        "Allies to resume full-scale drills",
        [
            "SEOUL -- South Korea and the United States will resume large-scale field exercises this summer after a pause of several years, the defence ministry said on Friday.",
            '"Readiness is not something you can put on hold while you wait for a phone call from Pyongyang," a ministry spokesman said.',
            "Officials pointed to a string of missile launches by the North and said computer simulations alone could not keep the combined forces ready.",
            "Opposition lawmakers called the decision needlessly provocative and urged the government to keep the door open to talks with the North.",
        ],
        [
            ("navigation", "Home > World > Asia-Pacific"),
            ("title", "Allies to resume full-scale drills"),
            ("repeated", "Allies to resume full-scale drills"),
            ("byline", "By Kim Min-seo minseo.kim@example.com"),
            ("caption", "Marines come ashore during a landing drill in Pohang last ye"),
            ("heading", "Why now?"),
            ("widget", "Share on X | Facebook | Copy link"),
            ("repeated", "Marines come ashore during a landing drill in Pohang last ye"),
            ("related", "Most popular"),
            ("related", "K-pop star's wedding draws thousands of fans to Jeju"),
            ("related", "Local council election: turnout hits record low"),
        ],
    ),
    "combined_markdown.md": (
        "Seoul weighs cost of taking wartime command",
        [
            "South Korea's defence ministry asked parliament on Tuesday for an additional 1.2 trillion won next year to buy the surveillance and command systems it says it needs before it can take wartime operational control from the United States.",
            "Ministry officials told lawmakers that the transfer should follow, not precede, the purchase of new reconnaissance satellites and a joint command system, a position critics called a recipe for endless delay.",
            "The budget request will be debated by the defence committee next month.",
        ],
        [
            ("title", "# Seoul weighs cost of taking wartime command"),
            ("byline", "*By Lee Ha-eun* | [Politics](https://example.com/politics) |"),
            ("heading", "## Capabilities first"),
            ("links", "- [Timeline: OPCON since 1994](https://example.com/opcon-tim"),
            ("links", "- [Who commands in a war?](https://example.com/cfc)"),
            ("non_english", "Le ministère de la Défense a refusé de commenter les détails"),
        ],
    ),
    "courier_page.html": (
        "Families of separated Koreans plead for video reunions",
        [
            "SEOUL -- Relatives of Koreans separated by the war asked the unification ministry on Monday to press the North for video reunions before the autumn harvest holiday, saying most of the remaining applicants are now in their nineties.",
            "The ministry said it had sent a proposal through the Red Cross but that Pyongyang had not answered any message from Seoul since the summer.",
            '"We are running out of time, and a screen is better than nothing," said a man of ninety-one who was born in Kaesong.',
        ],
        [
            ("title", "Families of separated Koreans plead for video reunions"),
            ("widget", "Try our AI features Explore what Courier AI can do for you: "),
            ("publisher_blurb", "The Han River Courier is a daily online newspaper based in S"),
            ("teaser_list", "K-pop star's surprise wedding on a small southern island dra"),
            ("teaser_list", "Scientists say seeds found in a mountain cave could help far"),
            ("teaser_list", "Five things to know about the new subway line"),
        ],
    ),
    "headline_twice.txt": (
        "Seoul and Washington fail to close cost-sharing gap",
        [
            "SEOUL, Nov. 19 -- Negotiators from South Korea and the United States ended a third round of talks on the upkeep of American troops on Tuesday without narrowing the gap between them, the foreign ministry said.",
            "The American side walked out after less than two hours, insisting that Seoul's yearly payment had to rise several times over, while Korean officials said any increase had to be one the public could accept.",
            "No date was set for the next round.",
        ],
        [
            ("title", "Seoul and Washington fail to close cost-sharing gap"),
            ("repeated", "Seoul and Washington fail to close cost-sharing gap"),
        ],
    ),
    "mirrored_page.txt": (
        "Allies agree to delay spring drills by two weeks",
        [
            "SEOUL -- South Korea and the United States agreed on Tuesday to delay their spring exercise by two weeks to give diplomacy with the North more time, the defence ministry said.",
            "The ministry said the drills would still be held at full scale and that the delay had nothing to do with pressure from Pyongyang.",
        ],
        [
            ("title", "Allies agree to delay spring drills by two weeks"),
            ("widget", "Views 2,418 2024.03.05 10:22"),
            ("non_english", "Todos los derechos reservados. Prohibida su reproducción tot"),
            ("non_english", "이 기사의 주소를 복사했습니다. 원문 보기를 누르면 기사 원문으로 이동합니다."),
            ("non_english", "Copie o endereço desta notícia para compartilhar com seus am"),
        ],
    ),
    "page.html": (
        "Unification minister offers talks",
        [
            "SEOUL -- South Korea's unification minister on Tuesday offered to meet North Korean officials at any time and place to discuss the reunions of families separated by the Korean War, saying the matter could not wait for politics.",
            '"Every month we delay, more of them die without seeing their relatives again," the minister told reporters at the government complex in central Seoul.',
            "The North has not responded to a series of proposals from Seoul this year, and has cut the military hotlines that were restored in 2021.",
        ],
        [
            ("title", "Unification minister offers talks"),
        ],
    ),
    "publisher_blurb.txt": (
        "Seoul to raise defence budget for surveillance satellites",
        [
            "SEOUL -- The government will raise next year's defence budget by 4.1 percent, with most of the increase going to reconnaissance satellites and a joint command system, the finance ministry said on Wednesday.",
            "Officials said the spending was needed before Seoul could take wartime operational control of its troops from the United States, a transfer the two allies have discussed for decades.",
            # a newspaper described in the story, not at the end of the page, is story
            "Rodong Sinmun is the official newspaper of the North's ruling Workers' Party, and it covers military matters closely: on Thursday it called the budget a preparation for war and said Pyongyang would respond in kind.",
            "The budget bill goes to the National Assembly next month.",
        ],
        [
            ("title", "Seoul to raise defence budget for surveillance satellites"),
            ("byline", "By Jung Da-som"),
            ("publisher_blurb", "The Han River Courier is a daily online newspaper based in S"),
        ],
    ),
    "question_subheads.txt": (
        "Explainer: the wartime command transfer",
        [
            "South Korea and the United States have been talking about handing wartime operational control of Korean troops to Seoul for more than three decades.",
            "In peacetime the South Korean military commands its own forces, but in a war they would come under the Combined Forces Command, led by an American general.",
            "Two agreed dates, in 2012 and 2015, were pushed back at Seoul's request, as successive governments argued that the military needed more time to build up its command and intelligence systems.",
            "Defence officials say the verification of full operational capability, the last of three stages, could be finished next year.",
        ],
        [
            ("title", "Explainer: the wartime command transfer"),
            ("heading", "What is wartime OPCON?"),
            ("heading", "Why has the transfer been delayed?"),
            ("heading", "What happens next"),
        ],
    ),
    "related_long_line.txt": (
        "North Korea blows up liaison office",
        [
            "SEOUL -- North Korea blew up the inter-Korean liaison office in the border town of Kaesong on Tuesday afternoon, days after threatening to cut all ties with the South over leaflets sent across the border by activists.",
            "The unification ministry called the demolition a deplorable act that destroyed the hopes of everyone who wanted to see the two Koreas live in peace, and said the North would bear full responsibility for any further steps.",
        ],
        [
            ("title", "North Korea blows up liaison office"),
            ("related", "More stories: Mayor's race in Gwangju tightens as turnout ca"),
            ("related", "© 2020 The Peninsula Ledger. All rights reserved."),
        ],
    ),
    "related_section.txt": (
        "Allies postpone OPCON verification to next year",
        [
            "The defence ministers of South Korea and the United States agreed on Friday to postpone the final verification of Seoul's ability to take wartime command until next year, citing the need for more joint training.",
            "The decision was announced after the annual Security Consultative Meeting in Washington.",
        ],
        [
            ("title", "Allies postpone OPCON verification to next year"),
            ("related", "Related articles"),
            ("related", "Singer apologises to fans after cancelling sold-out concert "),
            ("related", "Ruling party candidate leads in race for Busan mayor, poll s"),
            ("related", "Early frost threatens apple harvest in North Gyeongsang"),
        ],
    ),
    "teaser_list.txt": (
        "Allies hold first combined drill under new command",
        [
            "SEOUL -- South Korean and American troops held their first field exercise under the new combined command structure on Monday, the Joint Chiefs of Staff said.",
            "About 3,000 troops from both countries took part in the three-day drill near the border city of Paju, officials said.",
            "North Korea did not immediately respond.",
        ],
        [
            ("title", "Allies hold first combined drill under new command"),
            ("teaser_list", "K-pop star's surprise wedding on a small southern island dra"),
            ("teaser_list", "Scientists say seeds found in a mountain cave could help far"),
            ("teaser_list", "Five things to know about the new subway line"),
            ("teaser_list", "Weekend weather: rain for the south coast"),
        ],
    ),
    "widgets.txt": (
        "Unification ministry approves aid shipment to the North",
        [
            "The unification ministry on Wednesday approved a request by two civic groups to send flood-relief supplies to North Korea, saying humanitarian aid should not depend on the state of politics.",
            "The shipment includes rice, medicine and water-purification tablets, and will travel by road through the border city of Paju, officials said.",
            "The groups said they hoped the aid would help reopen channels of dialogue that have been closed since the summer.",
        ],
        [
            ("widget", "Share this article: Facebook | X | KakaoTalk | Email"),
            ("title", "Unification ministry approves aid shipment to the North"),
            ("widget", "Subscribe to our morning newsletter. Sign up now"),
            ("widget", "Comments (14) | Log in to comment"),
            ("widget", "Advertisement"),
            ("widget", "Print | Email this article | Font size A+ A-"),
        ],
    ),
    "site_widgets.txt": (
        "Allies open talks on next cost-sharing deal",
        [
            "WASHINGTON -- Negotiators from South Korea and the United States opened talks on Tuesday on how much Seoul should pay next year toward the upkeep of American troops on the peninsula, the foreign ministry said.",
            "The American delegation asked for a sharp increase, while Korean officials said any rise had to reflect inflation and the cost of the new bases Seoul had already paid for.",
            "The next round is planned for Seoul in late May.",
        ],
        [
            ("title", "Allies open talks on next cost-sharing deal"),
            ("widget", "Try our AI features Explore what Courier AI can do for you: "),
            ("widget", "Comments No comments yet. Be the first to tell us what you t"),
        ],
    ),
    "wire_flattened.txt": (
        "Allies push back spring drills by two weeks",
        [
            "SEOUL, March 2 (Yonhap) -- South Korea and the United States will push back the start of their spring exercise by two weeks, the Joint Chiefs of Staff said Saturday, citing the need for more time to prepare.",
            "The drills, which had been due to begin on March 9, will now start on March 23 and run for eleven days, the JCS said.",
            '"The decision reflects the schedule of the troops involved and nothing else," a defence ministry spokesperson told a briefing.',
            "North Korea has condemned the exercise as a rehearsal for invasion.",
        ],
        [
            ("wire_code", "(LEAD)"),
            ("title", "Allies push back spring drills by two weeks"),
            ("wire_code", "(ATTN: ADDS defence ministry comments in paras 4-5)"),
            ("byline", "By Park Ye-rin"),
            ("wire_code", "(END)"),
        ],
    ),
    "wire_versions.txt": (
        "N. Korea fires ballistic missile into East Sea",
        [
            "SEOUL, Dec. 28 (Yonhap) -- North Korea fired a ballistic missile into the East Sea on Thursday, South Korea's Joint Chiefs of Staff said, days after the allies wrapped up a combined air drill.",
            "The missile flew about 600 kilometers before falling outside Japan's exclusive economic zone, the JCS said in a text message to reporters.",
            "Tokyo lodged a protest through diplomatic channels in Beijing.",
        ],
        [
            ("title", "N. Korea fires ballistic missile into East Sea"),
            ("wire_code", "(2nd LD)"),
            ("repeated", "N. Korea fires ballistic missile into East Sea"),
            ("wire_code", "(ATTN: UPDATES with flight details in paras 2-3; ADDS Japan'"),
            ("byline", "By Kim Soo-yeon and Lee Ha-eun"),
            ("wire_code", "(END)"),
        ],
    ),
}


@pytest.fixture(scope="module")
def segmented() -> dict:
    return {Path(item.article.origin).name: item for item in iter_segmented([FIXTURES])}


def test_every_fixture_has_an_expectation(segmented):
    assert sorted(segmented) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_keeps_and_drops_exactly(segmented, name):
    title, kept, dropped = EXPECTED[name]
    result = segmented[name]
    assert result.title == title
    assert [p.text for p in result.paragraphs] == kept
    assert [(d.reason, " ".join(d.text.split())[:60]) for d in result.dropped] == dropped


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_offsets_point_into_the_original_text(segmented, name):
    result = segmented[name]
    text = result.article.text
    for position, paragraph in enumerate(result.paragraphs):
        assert paragraph.position == position
        assert flatten(text[paragraph.start : paragraph.end]) == paragraph.text
    for block in result.dropped:
        assert text[block.start : block.end] == block.text


def test_keep_related_keeps_the_long_related_line_in_chunks():
    text = (FIXTURES / "related_long_line.txt").read_text(encoding="utf-8")
    result = segment_article(Article("long", text), SegmentSettings(keep_related=True))
    story = [p for p in result.paragraphs if not p.related]
    related = [p for p in result.paragraphs if p.related]
    assert len(story) == 2
    assert related[0].text.startswith("Mayor's race in Gwangju tightens")
    assert related[-1].text.endswith("Polling stations will open at six in the morning.")
    assert all(len(p.text.split()) <= 180 for p in related)
    assert sum(len(p.text.split()) for p in related) == 978  # the whole line but the marker's two words
    assert [(d.reason, d.text) for d in result.dropped][1] == ("related", "More stories:")


def test_long_block_split_at_sentence_boundaries_into_near_equal_chunks():
    sentence = "The allies agreed on Monday to hold the drills at full scale, Gen. Kim said in Seoul."  # 17 words
    result = segment_text(" ".join([sentence] * 24))  # 408 words
    sizes = [len(p.text.split()) for p in result.paragraphs]
    assert sizes == [136, 136, 136]
    assert all(p.text.endswith("in Seoul.") for p in result.paragraphs)


def test_segmenting_is_deterministic():
    text = (FIXTURES / "combined_kitchen_sink.txt").read_text(encoding="utf-8")
    assert segment_text(text) == segment_text(text)


def test_a_known_title_is_dropped_as_title_then_repeated():
    result = segment_text(
        "Drills resume\n\nDrills resume\n\nThe drills resumed on Monday, officials said.", title="Drills resume"
    )
    assert [d.reason for d in result.dropped] == ["title", "repeated"]
    assert [p.text for p in result.paragraphs] == ["The drills resumed on Monday, officials said."]


def test_hard_wrapped_paragraph_is_one_paragraph():
    result = segment_text("The ministry said on Tuesday that the\ndrills would go ahead as planned,\nofficials said.")
    assert [p.text for p in result.paragraphs] == [
        "The ministry said on Tuesday that the drills would go ahead as planned, officials said."
    ]


@pytest.mark.parametrize(
    "line",
    [
        "Comments / No comments yet",
        "Try our AI features / Explore what Courier AI can do for you",
        "Download our app and get the news that matters to you, every morning and every evening, for free",
    ],
)
def test_site_widget_lines_are_widgets_wherever_they_are(line):
    story = "The ministry said on Tuesday that the drills would go ahead as planned, officials said."
    result = segment_text(f"{story}\n\n{line}\n\n{story.replace('Tuesday', 'Monday')}")
    assert [(d.reason, d.text) for d in result.dropped] == [("widget", line)]


@pytest.mark.parametrize(
    "paragraph",
    [
        '"Try to understand our position," the minister told his American counterpart at the start of the talks.',
        "Follow-up talks between the two militaries will be held in Seoul next month, the ministry told us.",
        "Watch officers on both sides of the border reported no unusual movements overnight, the JCS said.",
    ],
)
def test_story_paragraphs_that_open_like_a_call_to_action_are_kept(paragraph):
    assert [p.text for p in segment_text(paragraph).paragraphs] == [paragraph]


@pytest.mark.parametrize(
    ("first_line", "title", "dropped"),
    [
        (
            "Allies delay drills | 조회수 1,234 | 2024.03.05 10:22",
            "Allies delay drills",
            ("widget", "| 조회수 1,234 | 2024.03.05 10:22"),
        ),
        ("Allies delay drills 2024-03-05 10:22 KST", "Allies delay drills", ("dateline", "2024-03-05 10:22 KST")),
        # a sentence with a time and a date in it is not a headline with a stamp glued on
        (
            "The ministry said in a statement released at 10:22 on 2024.03.05 that the drills would go ahead.",
            None,
            None,
        ),
    ],
)
def test_a_stamp_glued_to_the_headline_is_cut_off(first_line, title, dropped):
    story = "The ministry said on Tuesday that the drills would go ahead as planned, officials said."
    result = segment_text(f"{first_line}\n\n{story}")
    assert result.title == title
    assert [(d.reason, d.text) for d in result.dropped if d.reason != "title"] == ([dropped] if dropped else [])
    assert result.paragraphs[-1].text == story


STORY = (
    "SEOUL -- South Korean and American troops held their first field exercise under the new command on Monday.",
    "About 3,000 troops took part in the three-day drill near the border city of Paju, officials said.",
)
TEASERS = (
    "K-pop star's surprise wedding draws thousands of fans to a small southern island",
    "Scientists say seeds found in a mountain cave could help farmers in a drier climate",
    "Five things to know about the new subway line",
)


def test_teasers_in_one_block_with_a_timestamp_between_are_a_teaser_list():
    teasers = f"{TEASERS[0]}\n2 hours ago\n{TEASERS[1]}\nUpdated 2024-03-05 10:22\n{TEASERS[2]}"
    result = segment_text("\n\n".join([*STORY, teasers]))
    assert [p.text for p in result.paragraphs] == list(STORY)
    assert [(d.reason, d.text) for d in result.dropped] == [("teaser_list", teasers)]


@pytest.mark.parametrize(
    "blocks",
    [
        [*STORY, *TEASERS[:2]],  # two headline-like lines are not a list
        [*STORY, *TEASERS, "The drill ends on Wednesday, the ministry said."],  # story comes after them
        list(TEASERS),  # no story before them: nothing to call them teasers for
    ],
)
def test_headline_like_lines_that_are_not_a_teaser_list(blocks):
    result = segment_text("\n\n".join(blocks))
    assert "teaser_list" not in {d.reason for d in result.dropped}


def test_a_blurb_is_known_by_the_name_of_the_site_alone_and_only_at_the_end_of_the_page():
    blurb = "The Han River Courier is an English-language daily newspaper for the whole peninsula."
    article = Article("a", "\n\n".join([*STORY, blurb]), source="The Han River Courier")
    assert [(d.reason, d.text) for d in segment_article(article).dropped] == [("publisher_blurb", blurb)]
    assert segment_article(Article("b", "\n\n".join([*STORY, blurb]), source="Another Daily")).dropped == ()
    middle = Article("c", "\n\n".join([STORY[0], blurb, STORY[1]]), source="The Han River Courier")
    assert segment_article(middle).dropped == ()
