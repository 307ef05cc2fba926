"""Real-news scoring: finds the folder or skips, scores with alt and end to end, selection score."""

import json

import pytest

from training.realnews import find_realnews, realnews_metrics, selection_score, stream_summary


def _write(folder, dev, stream):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in dev), encoding="utf-8")
    (folder / "stream.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stream), encoding="utf-8")
    return folder


def test_find_realnews_skips_without_the_folder(tmp_path, monkeypatch):
    assert find_realnews(tmp_path / "absent") is None
    assert find_realnews(None) is None and find_realnews("off") is None
    folder = _write(tmp_path / "rn", [], [])
    assert find_realnews(folder) == folder
    monkeypatch.setenv("ALLYSTANCE_REALNEWS", str(folder))
    assert find_realnews("auto") == folder
    monkeypatch.setenv("ALLYSTANCE_REALNEWS", "off")
    assert find_realnews("auto") is None


def test_selection_score_averages_team_and_real_dev():
    assert selection_score({"dev_combined_f1": 0.8}) == 0.8
    assert selection_score({"dev_combined_f1": 0.8, "realnews_combined_f1": 0.6}) == pytest.approx(0.7)


@pytest.mark.slow
def test_realnews_metrics_and_stream(tmp_path, trained_baseline, records):
    predictor = trained_baseline.predictor
    dev = [{**r, "origin": "wire"} for r in records]
    stream = [{"id": f"s{i}", "origin": "wire", "text": r["text"]} for i, r in enumerate(records)]
    folder = _write(tmp_path / "rn", dev, stream)
    metrics = realnews_metrics(predictor, folder)
    assert {"realnews_topic_micro_f1", "realnews_stance_e2e_macro_f1", "realnews_combined_f1"} <= set(metrics)
    assert metrics["realnews_combined_f1"] == pytest.approx(
        (metrics["realnews_topic_micro_f1"] + metrics["realnews_stance_e2e_macro_f1"]) / 2
    )
    summary, sample = stream_summary(predictor, folder, sample_size=2)
    predicted = predictor.predict([r["text"] for r in stream])
    given = sum(bool(p.topics) for p in predicted)
    assert summary["stream_topic_share"] == pytest.approx(given / len(stream))
    assert len(sample) == min(2, given) and all(s["topics"] for s in sample)
