from inference.preprocess import normalize_text


def test_normalize_folds_quotes_numbers_case_and_space():
    assert normalize_text("Seoul’s  “$5 billion”\n demand in 2019") == 'seoul\'s "$0 billion" demand in 0'
    assert normalize_text("28,500 troops") == "0 troops"


def test_cached_char_features_equal_sklearn():
    import numpy as np

    from inference.tfidf import build_features, fast_transform
    from labels import read_records

    texts = [r["text"] for r in read_records()][:400]
    features = build_features(min_df=1).fit(texts[:300])
    unseen = [*texts[300:], "Entirely new wörds: OPCON-2028, ‘quoted’ — dashes", ""]
    for batch in (texts[:50], unseen, unseen):  # cold cache, then warm
        expected = features.transform(batch)
        got = fast_transform(features, batch)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got.toarray(), expected.toarray(), rtol=0, atol=1e-12)
