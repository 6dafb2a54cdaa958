import pytest

from fiftyone_posetrack.models import MODELS, ModelUnavailableError, cache_dir, model_path
from fiftyone_posetrack.types import BadInputError


def test_local_models_dir_is_searched_first(tmp_path, monkeypatch):
    folder = tmp_path / "models" / "yolox-nano"
    folder.mkdir(parents=True)
    (folder / "yolox_nano.onnx").write_bytes(b"x")
    assert model_path("yolox-nano", tmp_path / "models") == folder / "yolox_nano.onnx"
    monkeypatch.setenv("POSETRACK_MODELS_DIR", str(tmp_path / "models"))
    assert model_path("yolox-nano") == folder / "yolox_nano.onnx"


def test_offline_message_says_what_to_fetch_and_where(tmp_path):
    with pytest.raises(ModelUnavailableError) as err:
        model_path("rtmdet-nano-person", tmp_path)
    msg = str(err.value)
    assert MODELS["rtmdet-nano-person"].url in msg
    assert str(cache_dir() / "rtmdet-nano-person" / "end2end.onnx") in msg
    assert "--models-dir" in msg and "POSETRACK_MODELS_DIR" in msg


def test_unknown_model_lists_known_ones():
    with pytest.raises(BadInputError, match="known models: .*movenet-lightning-int8"):
        model_path("hrnet-w99")


def test_shared_models_match_the_layout(shared_dir):
    for name in ("rtmdet-nano-person", "yolox-nano", "movenet-lightning-int8"):
        assert model_path(name, shared_dir / "models").is_file()
