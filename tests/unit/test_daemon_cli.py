"""`leeward-daemon` options: --set, named options over --set, --print-config, and the
exit status of a configuration error (no daemon is started here)."""
import pytest

from leeward_daemon import cli
from leeward_daemon.config import ConfigError


def _load(argv, environ=None):
    return cli.load_config(cli.parse_args(argv), environ or {})


def test_set_takes_any_key_in_environment_syntax():
    cfg = _load(["--set", "allowed_paths=/srv,/data", "--set", "shutdown_grace_secs=0.5", "--set", "workers=9"])
    assert (cfg.allowed_paths, cfg.shutdown_grace_secs, cfg.workers) == (["/srv", "/data"], 0.5, 9)
    assert cfg.source("workers") == "command line"


def test_named_options_win_over_set_and_environment():
    cfg = _load(["--set", "workers=9", "--workers", "3", "--metrics-port", "0"],
                {"LEEWARD_WORKERS": "5", "LEEWARD_METRICS_PORT": "9100"})
    assert (cfg.workers, cfg.metrics_port) == (3, 0)


def test_command_line_wins_over_environment_over_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("workers = 1\npids_max = 2\nstdout_max = 3\n")
    cfg = _load(["--config", str(path), "--set", "stdout_max=30"], {"LEEWARD_PIDS_MAX": "20", "LEEWARD_STDOUT_MAX": "300"})
    assert (cfg.workers, cfg.pids_max, cfg.stdout_max) == (1, 20, 30)


def test_default_file_is_found_through_xdg(tmp_path):
    (tmp_path / "leeward").mkdir()
    (tmp_path / "leeward" / "config.toml").write_text("workers = 6\n")
    cfg = _load([], {"XDG_CONFIG_HOME": str(tmp_path)})
    assert cfg.workers == 6 and cfg.source("workers") == f"file {tmp_path}/leeward/config.toml"


@pytest.mark.parametrize("argv, key", [
    (["--set", "bogus=1"], "bogus"),
    (["--set", "workers"], "workers"),
    (["--set", "workers=many"], "workers"),
    (["--log-level", "chatty"], "log_level"),
])
def test_bad_settings_name_the_key(argv, key):
    with pytest.raises(ConfigError, match=key):
        _load(argv)


def test_print_config_prints_values_and_origins(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no config file from the host
    monkeypatch.setenv("LEEWARD_PIDS_MAX", "33")
    assert cli.main(["--print-config", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "workers = 2  # command line\n" in out
    assert "pids_max = 33  # environment LEEWARD_PIDS_MAX\n" in out
    assert "metrics_port = 9090  # default\n" in out


def test_a_bad_value_stops_the_daemon_with_status_2(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("LEEWARD_WORKERS", "x")
    assert cli.main([]) == cli.EXIT_START_FAILED
    assert "LEEWARD_WORKERS: workers must be an integer, got 'x'" in capsys.readouterr().err


def test_a_missing_explicit_config_stops_the_daemon(capsys, tmp_path):
    assert cli.main(["--config", str(tmp_path / "missing.toml")]) == cli.EXIT_START_FAILED
    assert "does not exist" in capsys.readouterr().err
