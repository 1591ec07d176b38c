import pytest

from musicgen.data import builtins, datasets


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Every test gets its own empty data and models folders; nothing is written to ./data or ./models."""
    folder = tmp_path / "data"
    monkeypatch.setenv("MUSICGEN_DATA_DIR", str(folder))
    monkeypatch.setenv("MUSICGEN_MODELS_DIR", str(tmp_path / "models"))
    return folder


@pytest.fixture(scope="session")
def small_builtins(tmp_path_factory):
    """A data folder with the first few pieces of each built-in corpus, built once per test run."""
    root = tmp_path_factory.mktemp("builtins")
    for name in builtins.BUILTINS:
        builtins.build_builtin(name, root=root, limit=6)
    return root


@pytest.fixture(scope="session")
def tiny_models(small_builtins, tmp_path_factory):
    """A models folder with one tiny trained model per family, trained once per test run."""
    from musicgen.config import ModelConfig, TrainConfig
    from musicgen.learn.train import train

    root = tmp_path_factory.mktemp("models")
    data = datasets.open_dataset("bach-chorales", root=small_builtins)
    fast = TrainConfig(epochs=1, batch_size=32, learning_rate=0.01)
    train(data, root / "tiny-psd", ModelConfig(family="pitch-step-duration", seq_length=8, units=(16,)), fast)
    train(data, root / "tiny-nc", ModelConfig(family="notes-and-chords", seq_length=8, units=(16,),
                                               embedding=8, min_count=1), fast)
    train(data, root / "tiny-poly", ModelConfig(family="polyphony", seq_length=16, units=(16,), embedding=8), fast)
    return root
