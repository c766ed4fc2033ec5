"""Where configuration comes from: file discovery, LEEWARD_<KEY> variables, precedence,
typed parsing, and errors that name the key."""
import tomllib

import pytest

from leeward_daemon import config
from leeward_daemon.config import ConfigError


def test_explicit_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.find_file(str(tmp_path / "nope.toml"), {})


def test_explicit_file_wins_over_the_default_locations(tmp_path):
    xdg = tmp_path / "xdg"
    (xdg / "leeward").mkdir(parents=True)
    (xdg / "leeward" / "config.toml").write_text("workers = 1\n")
    explicit = tmp_path / "mine.toml"
    explicit.write_text("workers = 2\n")
    assert config.find_file(str(explicit), {"XDG_CONFIG_HOME": str(xdg)}) == str(explicit)


def test_default_locations_xdg_then_etc(tmp_path, monkeypatch):
    assert config.default_files({"XDG_CONFIG_HOME": "/x"}) == ["/x/leeward/config.toml", "/etc/leeward/config.toml"]
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config.default_files({})[0] == f"{tmp_path}/.config/leeward/config.toml"


def test_first_existing_default_wins(tmp_path, monkeypatch):
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    monkeypatch.setattr(config, "default_files", lambda environ: [str(first), str(second)])
    assert config.find_file(None, {}) is None
    second.write_text("")
    assert config.find_file(None, {}) == str(second)
    first.write_text("")
    assert config.find_file(None, {}) == str(first)


def test_precedence_file_then_env_then_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("workers = 7\npids_max = 10\ntmp_size = 1048576\n")
    cfg = config.load(str(path), environ={"LEEWARD_PIDS_MAX": "20", "LEEWARD_TMP_SIZE": "2097152"}, tmp_size=3 << 20)
    assert (cfg.workers, cfg.pids_max, cfg.tmp_size) == (7, 20, 3 << 20)
    assert cfg.source("workers") == f"file {path}"
    assert cfg.source("pids_max") == "environment LEEWARD_PIDS_MAX"
    assert cfg.source("tmp_size") == "command line"
    assert cfg.source("max_frame") == "default"


@pytest.mark.parametrize("name, text, key, value", [
    ("LEEWARD_WORKERS", "12", "workers", 12),
    ("LEEWARD_MAX_MEMORY_LIMIT", "8_589_934_592", "max_memory_limit", 8 << 30),
    ("LEEWARD_SHUTDOWN_GRACE_SECS", "2.5", "shutdown_grace_secs", 2.5),
    ("LEEWARD_ACQUIRE_TIMEOUT_SECS", "3", "acquire_timeout_secs", 3.0),
    ("LEEWARD_ALLOWED_PATHS", "/srv, /data", "allowed_paths", ["/srv", "/data"]),
    ("LEEWARD_PRELOAD", "", "preload", []),
    ("LEEWARD_LIMITS_BACKEND", "rlimit", "limits_backend", "rlimit"),
    ("LEEWARD_LOG_LEVEL", "debug", "log_level", "DEBUG"),
])
def test_env_values_are_parsed_by_the_keys_type(name, text, key, value):
    assert getattr(config.load(environ={name: text}), key) == value


@pytest.mark.parametrize("name, text", [
    ("LEEWARD_WORKERS", "x"),
    ("LEEWARD_WORKERS", "1.5"),
    ("LEEWARD_METRICS_PORT", "70000"),
    ("LEEWARD_SHUTDOWN_GRACE_SECS", "-1"),
    ("LEEWARD_DEFAULT_TIMEOUT_SECS", "nan"),
    ("LEEWARD_METRICS_ADDRESS", "localhost"),
])
def test_bad_env_values_name_the_key(name, text):
    key = name[len("LEEWARD_"):].lower()
    with pytest.raises(ConfigError, match=key):
        config.load(environ={name: text})


def test_other_leeward_variables_are_not_config_but_typos_are_reported():
    values, ignored = config.env_values({"LEEWARD_SOCKET": "/s", "LEEWARD_WORKER": "3", "HOME": "/root"})
    assert values == {} and ignored == ["LEEWARD_WORKER"]


@pytest.mark.parametrize("text, key", [
    ('workers = "x"', "workers"),
    ("workers = 2.0", "workers"),
    ("socket_path = 5", "socket_path"),
    ("preload = [1]", "preload"),
    ("default_timeout_secs = true", "default_timeout_secs"),
    ("metrics_port = -1", "metrics_port"),
    ('log_level = "loud"', "log_level"),
    ('cgroup_root = "relative"', "cgroup_root"),
    ('socket_path = "/' + "x" * 120 + '"', "socket_path"),
    ('preload = ["not a module"]', "preload"),
])
def test_bad_file_values_name_the_key(tmp_path, text, key):
    path = tmp_path / "c.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=key):
        config.load(str(path))


def test_an_int_is_accepted_for_a_float_key(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("max_timeout_secs = 600\ndefault_timeout_secs = 5\n")
    cfg = config.load(str(path))
    assert (cfg.max_timeout_secs, cfg.default_timeout_secs) == (600.0, 5.0)
    assert type(cfg.max_timeout_secs) is float


def test_unknown_key_in_environment_source_is_not_fatal_but_in_a_file_it_is(tmp_path):
    config.load(environ={"LEEWARD_NOT_A_KEY": "1"})
    path = tmp_path / "c.toml"
    path.write_text("not_a_key = 1\n")
    with pytest.raises(ConfigError, match="not_a_key"):
        config.load(str(path))


def test_to_toml_reads_back_to_the_same_config(tmp_path):
    cfg = config.load(environ={"LEEWARD_ALLOWED_PATHS": "/srv", "LEEWARD_SOCKET_PATH": '/tmp/a "b"/s.sock'})
    text = config.to_toml(cfg)
    assert "# environment LEEWARD_ALLOWED_PATHS" in text
    path = tmp_path / "again.toml"
    path.write_text(text)
    assert config.load(str(path)) == cfg
    assert tomllib.loads(text)["socket_path"] == '/tmp/a "b"/s.sock'
