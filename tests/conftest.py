import pytest

from musicgen import corpus


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
    for name in corpus.BUILTINS:
        corpus.build_builtin(name, root=root, limit=6)
    return root
