"""Every sandbox serves one job: nothing of a job survives into the next."""
import os
import subprocess

import pytest

pytestmark = pytest.mark.integration


def test_jobs_do_not_see_each_others_files(daemon):
    assert daemon.execute("open('/tmp/secret', 'w').write('s3cret')").exit_code == 0
    assert daemon.execute("import os; print(os.path.exists('/tmp/secret'))").stdout == b"False\n"
    assert daemon.execute("import os; print(os.path.exists('/dev/shm/x')); open('/dev/shm/x','w')").stdout == b"False\n"
    assert daemon.execute("import os; print(os.path.exists('/dev/shm/x'))").stdout == b"False\n"


def test_jobs_do_not_see_each_others_globals_or_modules(daemon):
    daemon.execute("import sys, json; sys.leftover = 1; json.leftover = 2; import builtins; builtins.evil = 3")
    result = daemon.execute("import sys, json, builtins\n"
                            "print(hasattr(sys, 'leftover'), hasattr(json, 'leftover'), hasattr(builtins, 'evil'))")
    assert result.stdout == b"False False False\n"


def test_background_process_does_not_outlive_its_job(daemon, tmp_path):
    marker = f"sleep 300.{os.getpid()}{id(tmp_path)}"  # unique, so concurrent runs don't interfere
    code = ("import subprocess\n"
            f"subprocess.Popen(['sh', '-c', {marker!r}], start_new_session=True)\n"
            "import os; os.fork() or (os.setsid(), __import__('time').sleep(300))\n"
            "print('left')")
    result = daemon.execute(code)
    assert b"left" in result.stdout
    # pid 1 of the sandbox exited, so the kernel killed its whole pid namespace; a host
    # view of the sleepers (they would be reparented to the zygote) shows none left.
    sleepers = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert sleepers == []
    next_job = daemon.execute("import os; print(sorted(p for p in os.listdir('/proc') if p.isdigit()))")
    assert next_job.stdout == b"['1']\n"


def test_each_job_gets_a_fresh_sandbox(daemon):
    uids = {daemon.execute("print(open('/proc/self/uid_map').read().split()[1])").stdout for _ in range(3)}
    if os.geteuid() == 0:
        assert len(uids) == 3  # each box has its own outside uid
