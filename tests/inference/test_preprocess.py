from inference.preprocess import normalize_text


def test_normalize_folds_quotes_numbers_case_and_space():
    assert normalize_text("Seoul’s  “$5 billion”\n demand in 2019") == 'seoul\'s "$0 billion" demand in 0'
    assert normalize_text("28,500 troops") == "0 troops"
