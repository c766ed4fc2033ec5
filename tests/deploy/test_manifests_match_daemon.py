"""The Kubernetes manifests against the daemon's real flags and defaults, so they cannot
drift from the code: the DaemonSet's command and config go through `leeward-daemon
--print-config`, its probes and init container through the `leeward` CLI's own parser,
and the DaemonSet's exact start command runs a real daemon that the readiness probe and
the example agent reach. deploy/k8s/leeward.yaml is the Helm chart rendered with its
defaults (tests/deploy/chart_test.go keeps the two identical and decodes both strictly).
"""
from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from leeward.cli import build_parser
from tests.conftest import REPO, START_WAIT_SECS

K8S = Path(REPO) / "deploy" / "k8s"
CHART_VALUES = Path(REPO) / "deploy" / "helm" / "leeward" / "values.yaml"
VENV_BIN = Path(sys.executable).parent
# `key = value  # source`, as --print-config writes each key.
SOURCE_LINE = re.compile(r"^(\w+) = .*  # (.+)$", re.MULTILINE)


def objects(name: str) -> dict[str, dict]:
    with open(K8S / name) as fh:
        return {f"{doc['kind']}/{doc['metadata']['name']}": doc for doc in yaml.safe_load_all(fh) if doc}


@pytest.fixture(scope="module")
def daemonset() -> dict:
    return objects("leeward.yaml")["DaemonSet/leeward"]


@pytest.fixture(scope="module")
def configmap() -> dict:
    return objects("leeward.yaml")["ConfigMap/leeward-config"]


def containers(daemonset: dict) -> dict[str, dict]:
    pod = daemonset["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod.get("initContainers", []) + pod["containers"]}


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def container_env(container: dict) -> dict[str, str]:
    """The container's variables over a PATH that finds this checkout's commands."""
    return {"PATH": f"{VENV_BIN}:/usr/bin:/bin", **{e["name"]: e["value"] for e in container.get("env", [])}}


@pytest.fixture
def config_file(daemonset, configmap, tmp_path) -> tuple[str, Path]:
    """(the --config path in the pod, a local copy of the ConfigMap file it mounts)."""
    pod_path = option(containers(daemonset)["daemon"]["args"], "--config")
    mount = next(m for m in containers(daemonset)["daemon"]["volumeMounts"] if m["mountPath"] == os.path.dirname(pod_path))
    volume = next(v for v in daemonset["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    local = tmp_path / "config.toml"
    local.write_text(configmap["data"][os.path.basename(pod_path)])
    return pod_path, local


def with_local_config(args: list[str], config_file: tuple[str, Path]) -> list[str]:
    pod_path, local = config_file
    return [str(local) if a == pod_path else a for a in args]


def effective_config(daemonset, config_file) -> tuple[dict, dict[str, str]]:
    """The daemon's own view of the DaemonSet's command line, env and ConfigMap: each
    key's value and where it came from."""
    daemon = containers(daemonset)["daemon"]
    assert daemon["args"][0] == "leeward-daemon"
    done = subprocess.run([*with_local_config(daemon["args"], config_file), "--print-config"],
                          env=container_env(daemon), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return tomllib.loads(done.stdout), dict(SOURCE_LINE.findall(done.stdout))


def test_every_config_key_and_variable_is_one_the_daemon_reads(daemonset, configmap, config_file):
    values, sources = effective_config(daemonset, config_file)
    for key in tomllib.loads(configmap["data"]["config.toml"]):
        assert sources[key].startswith("file ") or sources[key].startswith("environment "), (key, sources[key])
    for name in container_env(containers(daemonset)["daemon"]):
        if name.startswith("LEEWARD_"):
            assert f"environment {name}" in sources.values(), f"{name} is not a config key the daemon reads"


def test_socket_is_on_the_host_directory_the_probes_and_doctor_use(daemonset, config_file):
    socket_path = effective_config(daemonset, config_file)[0]["socket_path"]
    pod = daemonset["spec"]["template"]["spec"]
    socket_volume = next(v for v in pod["volumes"] if v.get("hostPath", {}).get("path") == os.path.dirname(socket_path))
    for container in containers(daemonset).values():
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        # The same path inside as on the host, so every pod on the node finds one path.
        assert mounts[socket_volume["name"]] == socket_volume["hostPath"]["path"], container["name"]
    probe = containers(daemonset)["daemon"]["readinessProbe"]["exec"]["command"]
    assert probe[0] == "leeward"
    parsed = build_parser().parse_args(probe[1:])
    assert (parsed.command, parsed.socket) == ("ping", socket_path)


def test_doctor_checks_the_daemons_config_and_fails_the_pod_on_fail(daemonset, config_file, tmp_path):
    doctor, daemon = containers(daemonset)["doctor"], containers(daemonset)["daemon"]
    assert doctor["args"][0] == "leeward"
    parsed = build_parser().parse_args(doctor["args"][1:])
    assert (parsed.command, parsed.json) == ("doctor", True)
    assert parsed.config == option(daemon["args"], "--config")
    assert parsed.socket == effective_config(daemonset, config_file)[0]["socket_path"]
    assert doctor.get("env") == daemon.get("env") and doctor["securityContext"] == daemon["securityContext"]
    assert doctor["command"] == daemon["command"]
    # Through the pod's own start command: a FAIL (here a config the daemon refuses)
    # must leave the container with a non-zero status.
    bad = tmp_path / "bad.toml"
    bad.write_text("workers = 'four'\n")
    args = [str(bad) if a == parsed.config else a for a in doctor["args"]]
    done = subprocess.run([*doctor["command"], *args], env=container_env(doctor),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    assert any(c["name"] == "config" and c["status"] == "FAIL" for c in report["checks"])


def test_metrics_port_and_address_are_what_prometheus_scrapes(daemonset, config_file):
    values = effective_config(daemonset, config_file)[0]
    ports = {p["name"]: p["containerPort"] for p in containers(daemonset)["daemon"]["ports"]}
    annotations = daemonset["spec"]["template"]["metadata"]["annotations"]
    assert values["metrics_port"] == ports["metrics"] == int(annotations["prometheus.io/port"])
    assert values["metrics_address"] == "0.0.0.0"  # the pod's address, not loopback


def test_termination_grace_is_shutdown_grace_plus_the_charts_margin(daemonset, config_file):
    grace = effective_config(daemonset, config_file)[0]["shutdown_grace_secs"]
    margin = yaml.safe_load(CHART_VALUES.read_text())["terminationMarginSecs"]
    assert margin > 0
    assert daemonset["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == math.ceil(grace) + margin


def test_example_agent_mounts_the_daemons_socket_directory(daemonset, config_file):
    socket_path = effective_config(daemonset, config_file)[0]["socket_path"]
    agent_pod = objects("example-agent.yaml")["Deployment/example-agent"]["spec"]["template"]["spec"]
    agent = agent_pod["containers"][0]
    socket_env = container_env(agent)["LEEWARD_SOCKET"]
    mount = next(m for m in agent["volumeMounts"] if m["mountPath"] == os.path.dirname(socket_env))
    volume = next(v for v in agent_pod["volumes"] if v["name"] == mount["name"])
    assert volume["hostPath"]["path"] == os.path.dirname(socket_path)
    assert os.path.basename(socket_env) == os.path.basename(socket_path)
    assert mount["readOnly"] is True


@pytest.mark.integration
def test_daemonsets_command_serves_the_probe_and_the_example_agent(daemonset, config_file, tmp_path):
    """The DaemonSet's start command and args, with only the socket moved to a test
    directory, fewer sandboxes and no metrics port: a daemon the readiness probe and the
    example agent's script reach, and that drains on SIGTERM with status 0."""
    daemon = containers(daemonset)["daemon"]
    socket_path = str(tmp_path / "run" / "leeward.sock")
    argv = [*daemon["command"], *with_local_config(daemon["args"], config_file),
            "--set", f"socket_path={socket_path}", "--workers", "1", "--metrics-port", "0"]
    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, env=container_env(daemon), stdout=out, stderr=subprocess.STDOUT, cwd="/")
    try:
        probe = [a if a != option(daemon["readinessProbe"]["exec"]["command"], "--socket") else socket_path
                 for a in daemon["readinessProbe"]["exec"]["command"]]
        deadline = time.monotonic() + START_WAIT_SECS
        while subprocess.run(probe, env=container_env(daemon), capture_output=True).returncode != 0:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        agent_objects = objects("example-agent.yaml")
        agent = agent_objects["Deployment/example-agent"]["spec"]["template"]["spec"]["containers"][0]
        script = tmp_path / "agent.py"
        script.write_text(agent_objects["ConfigMap/example-agent"]["data"]["agent.py"])
        env = {**container_env(agent), "LEEWARD_SOCKET": socket_path, "AGENT_JOBS": "2", "INTERVAL_SECS": "0"}
        done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("exit=0 stdout='4950 (") == 2, done.stdout
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(60)
    assert status == 0, log.read_text()
