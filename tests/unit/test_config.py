import pytest

from leeward_daemon import config
from leeward_daemon.config import ConfigError


def test_defaults_follow_the_spec():
    cfg = config.load()
    assert (cfg.default_memory_limit, cfg.default_timeout_secs, cfg.pids_max) == (4 << 30, 300.0, 64)
    assert cfg.stdout_max == cfg.stderr_max == 1 << 20


def test_toml_then_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('workers = 7\nallowed_paths = ["/srv"]\n')
    cfg = config.load(str(path), workers=3)
    assert cfg.workers == 3 and cfg.allowed_paths == ["/srv"]


@pytest.mark.parametrize("text, key", [
    ("bogus = 1", "bogus"),
    ("workers = 0", "workers"),
    ("workers = -1", "workers"),
    ("tmp_size = true", "tmp_size"),
    ("allowed_paths = 'x'", "allowed_paths"),
    ("allowed_paths = ['relative']", "allowed_paths"),
    ("default_timeout_secs = 500", "default_timeout_secs"),
    ("optional_layers = [\"namespaces\"]", "optional_layers"),
])
def test_bad_values_name_the_key(tmp_path, text, key):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key):
        config.load(str(path))


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(str(tmp_path / "missing.toml"))
