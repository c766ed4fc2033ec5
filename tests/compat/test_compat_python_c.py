"""A job should end and import like `python -c CODE` run in its working directory.

Workloads rely on interpreter shutdown: multiprocessing finalizes pools and unlinks its
/dev/shm semaphores from an atexit hook, concurrent.futures and plain non-daemon threads
are joined before exit, and logging flushes its handlers. They also import helper
modules shipped next to the code with `files=`.
"""
import pytest

pytestmark = pytest.mark.integration


def test_atexit_handlers_run_when_the_code_ends(run_clean):
    code = ("import atexit\n"
            "atexit.register(print, 'atexit ran')\n"
            "print('body done')\n")
    assert run_clean(code) == "body done\natexit ran\n"


def test_non_daemon_threads_are_joined_before_the_job_ends(run_clean):
    code = ("import threading, time\n"
            "def late():\n"
            "    time.sleep(0.5)\n"
            "    print('thread finished', flush=True)\n"
            "threading.Thread(target=late).start()\n"
            "print('body done', flush=True)\n")
    assert run_clean(code) == "body done\nthread finished\n"


def test_a_module_passed_with_files_is_importable(run_clean):
    assert run_clean("import helper; print(helper.answer())",
                     files={"helper.py": b"def answer():\n    return 6 * 7\n"}) == "42\n"
