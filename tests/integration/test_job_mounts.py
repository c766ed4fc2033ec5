"""Job bind mounts: allowed_paths, real paths only, ro really read-only."""
import os

import pytest

from libleeward.client import LeewardError

pytestmark = pytest.mark.integration


@pytest.fixture
def shared(daemon, tmp_path_factory):
    path = os.path.join(daemon.allowed_dir, f"job-{os.urandom(4).hex()}")
    os.mkdir(path)
    os.chmod(path, 0o777)
    with open(os.path.join(path, "input.txt"), "w") as fh:
        fh.write("host data")
    return path


def test_ro_mount_is_readable_and_not_writable(daemon, shared):
    code = ("print(open('/data/input.txt').read())\n"
            "try:\n    open('/data/new', 'w'); print('written')\n"
            "except OSError as e:\n    print('errno', e.errno)\n")
    result = daemon.execute(code, mounts=[{"host": shared, "sandbox": "/data", "ro": True}])
    assert result.stdout == b"host data\nerrno 30\n", result.stderr
    assert not os.path.exists(os.path.join(shared, "new"))


def test_ro_is_the_default(daemon, shared):
    code = "import os; print(os.access('/data', os.W_OK), os.statvfs('/data').f_flag & 1)"
    result = daemon.execute(code, mounts=[{"host": shared, "sandbox": "/data"}])
    assert result.stdout == b"False 1\n", result.stderr


def test_rw_mount_writes_land_on_the_host(daemon, shared):
    result = daemon.execute("open('/out/result.txt', 'w').write('from sandbox')",
                            mounts=[{"host": shared, "sandbox": "/out", "ro": False}])
    assert result.exit_code == 0, result.stderr
    with open(os.path.join(shared, "result.txt")) as fh:
        assert fh.read() == "from sandbox"


def test_mount_outside_allowed_paths_is_refused(daemon):
    with pytest.raises(LeewardError) as err:
        daemon.execute("print(1)", mounts=[{"host": "/etc", "sandbox": "/data"}])
    assert err.value.code == "E2006"


def test_mount_through_a_symlink_is_refused(daemon, shared, tmp_path):
    link = os.path.join(daemon.allowed_dir, f"link-{os.urandom(4).hex()}")
    os.symlink("/etc", link)
    with pytest.raises(LeewardError) as err:
        daemon.execute("print(1)", mounts=[{"host": link, "sandbox": "/data"}])
    assert err.value.code == "E2008"
    inner = os.path.join(daemon.allowed_dir, f"inner-{os.urandom(4).hex()}")
    os.symlink(shared, inner)
    with pytest.raises(LeewardError) as err:
        daemon.execute("print(1)", mounts=[{"host": inner + "/input.txt", "sandbox": "/data"}])
    assert err.value.code == "E2008"


def test_dotdot_escape_is_refused(daemon, shared):
    with pytest.raises(LeewardError) as err:
        daemon.execute("print(1)", mounts=[{"host": shared + "/.." * shared.count("/") + "/etc", "sandbox": "/data"}])
    assert err.value.code == "E2006"


def test_missing_mount_source_is_refused(daemon):
    with pytest.raises(LeewardError) as err:
        daemon.execute("print(1)", mounts=[{"host": daemon.allowed_dir + "/nope", "sandbox": "/data"}])
    assert err.value.code == "E2007"


@pytest.mark.parametrize("target", ["/", "/proc/x", "/etc", "/usr/local", "/data/../etc"])
def test_mount_over_system_dirs_is_refused(daemon, shared, target):
    with pytest.raises(LeewardError) as err:
        daemon.execute("print(1)", mounts=[{"host": shared, "sandbox": target}])
    assert err.value.code == "E2005"


def test_files_cannot_escape_the_workdir(daemon):
    with pytest.raises(LeewardError) as err:
        daemon.execute("print(1)", files={"../etc/x": b"1"})
    assert err.value.code == "E2005"


def test_rw_mount_is_nosuid_and_nodev(daemon):
    code = ("import os\n"
            "flags = os.statvfs('/data').f_flag\n"
            "print(bool(flags & os.ST_NOSUID), bool(flags & os.ST_NODEV), bool(flags & os.ST_RDONLY))\n")
    result = daemon.execute(code, mounts=[{"host": daemon.allowed_dir, "sandbox": "/data", "ro": False}])
    assert result.stdout == b"True True False\n", result.stderr
