"""Standard library workloads jobs lean on: subprocess, sqlite3, tempfile/shutil, threads, asyncio."""
import hashlib

import pytest

pytestmark = pytest.mark.integration

SUBPROCESS = r"""
import json, subprocess, sys

py = subprocess.run([sys.executable, "-c", "import sys, numpy; print(int(numpy.arange(10).sum()), sys.argv[1:])", "a", "b"],
                    capture_output=True, text=True, check=True)
shell = subprocess.run(["/bin/sh", "-c", "echo hi | tr a-z A-Z"], capture_output=True, text=True, check=True)
piped = subprocess.run([sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])"],
                       input="stressed", capture_output=True, text=True, check=True)
status = subprocess.run(["/bin/sh", "-c", "exit 7"]).returncode
with subprocess.Popen(["/bin/sh", "-c", "cat; echo done >&2"], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
    out, err = proc.communicate(b"via popen\n", timeout=60)
shell_true = subprocess.check_output("printf '%s-' one two | wc -c", shell=True, text=True)
env = subprocess.run([sys.executable, "-c", "import os; print(os.environ['CHILD_VAR'])"],
                     env={"CHILD_VAR": "passed"}, capture_output=True, text=True, check=True)
print(json.dumps({"py": py.stdout, "shell": shell.stdout, "piped": piped.stdout, "status": status,
                  "popen": [out.decode(), err.decode(), proc.returncode],
                  "shell_true": shell_true.strip(), "env": env.stdout}))
"""


def test_subprocess(run_json):
    assert run_json(SUBPROCESS) == {
        "py": "45 ['a', 'b']\n", "shell": "HI\n", "piped": "desserts\n", "status": 7,
        "popen": ["via popen\n", "done\n", 0], "shell_true": "8", "env": "passed\n"}


SQLITE = r"""
import json, sqlite3

def exercise(conn):
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL)")
    with conn:  # a committed transaction
        conn.executemany("INSERT INTO t (name, score) VALUES (?, ?)",
                         [(f"n{i}", i * 1.5) for i in range(100)])
    try:
        with conn:  # rolled back: the second insert violates NOT NULL
            conn.execute("INSERT INTO t (name, score) VALUES ('ghost', 1)")
            conn.execute("INSERT INTO t (name, score) VALUES (NULL, 1)")
    except sqlite3.IntegrityError:
        pass
    conn.create_function("double", 1, lambda x: 2 * x)
    return {
        "count": conn.execute("SELECT COUNT(*) FROM t").fetchone()[0],
        "ghost": conn.execute("SELECT COUNT(*) FROM t WHERE name = 'ghost'").fetchone()[0],
        "sum": conn.execute("SELECT SUM(score) FROM t WHERE id % 2 = 0").fetchone()[0],
        "top": conn.execute("SELECT name, double(score) FROM t ORDER BY score DESC LIMIT 2").fetchall(),
    }

memory = exercise(sqlite3.connect(":memory:"))

disk = sqlite3.connect("/tmp/compat.db")
mode = disk.execute("PRAGMA journal_mode=WAL").fetchone()[0]   # WAL: mmap'd -shm file, fcntl locks
on_disk = exercise(disk)
reader = sqlite3.connect("file:/tmp/compat.db?mode=ro", uri=True)
seen_by_reader = reader.execute("SELECT COUNT(*) FROM t").fetchone()[0]
reader.close()
disk.close()
reopened = sqlite3.connect("/tmp/compat.db")
after_reopen = reopened.execute("SELECT MAX(id) FROM t").fetchone()[0]
reopened.execute("VACUUM")
reopened.close()
print(json.dumps({"memory": memory, "disk": on_disk, "journal_mode": mode,
                  "reader": seen_by_reader, "reopened_max_id": after_reopen}))
"""


def test_sqlite3_in_memory_and_on_disk(run_json):
    expected = {"count": 100, "ghost": 0, "sum": sum(i * 1.5 for i in range(100) if (i + 1) % 2 == 0),
                "top": [["n99", 297.0], ["n98", 294.0]]}
    assert run_json(SQLITE) == {"memory": expected, "disk": expected, "journal_mode": "wal",
                                "reader": 100, "reopened_max_id": 100}


TEMPFILES = r"""
import json, os, shutil, tempfile

with tempfile.NamedTemporaryFile("w+", suffix=".txt") as named:
    named.write("named temp file")
    named.flush()
    named.seek(0)
    named_result = [named.read(), os.path.dirname(named.name), os.path.exists(named.name)]
named_gone = not os.path.exists(named.name)

fd, path = tempfile.mkstemp(prefix="job-", suffix=".bin")
os.write(fd, bytes(range(256)) * 64)
os.close(fd)
mkstemp_mode = oct(os.stat(path).st_mode & 0o777)

with tempfile.TemporaryDirectory() as tmp:
    os.makedirs(os.path.join(tmp, "tree", "deep"))
    copied = shutil.copy(path, os.path.join(tmp, "tree", "copy.bin"))
    shutil.copy2(path, os.path.join(tmp, "tree", "deep", "copy2.bin"))
    shutil.copytree(os.path.join(tmp, "tree"), os.path.join(tmp, "tree2"))
    moved = shutil.move(os.path.join(tmp, "tree2"), os.path.join(tmp, "renamed"))
    across = shutil.move(os.path.join(tmp, "renamed", "copy.bin"), "/dev/shm/moved.bin")  # another tmpfs
    listing = sorted(os.path.relpath(os.path.join(d, f), tmp) for d, _, fs in os.walk(tmp) for f in fs)
    sizes = sorted({os.path.getsize(os.path.join(tmp, p)) for p in listing})
    archive = shutil.make_archive(os.path.join(tmp, "bundle"), "gztar", root_dir=tmp, base_dir="tree")
    shutil.unpack_archive(archive, os.path.join(tmp, "unpacked"))
    unpacked = sorted(os.listdir(os.path.join(tmp, "unpacked", "tree")))
    tmpdir_parent = os.path.dirname(tmp)
with open(across, "rb") as fh:
    across_ok = fh.read() == bytes(range(256)) * 64
os.unlink(across)
os.unlink(path)
print(json.dumps({"named": named_result, "named_gone": named_gone, "mkstemp_mode": mkstemp_mode,
                  "copied": os.path.basename(copied), "moved": os.path.basename(moved),
                  "listing": listing, "sizes": sizes, "unpacked": unpacked, "across_ok": across_ok,
                  "tmpdir_parent": tmpdir_parent, "tmp_cleaned": not os.path.exists(tmp),
                  "gettempdir": tempfile.gettempdir()}))
"""


def test_tempfile_and_shutil(run_json):
    assert run_json(TEMPFILES) == {
        "named": ["named temp file", "/tmp", True], "named_gone": True, "mkstemp_mode": "0o600",
        "copied": "copy.bin", "moved": "renamed",
        "listing": ["renamed/deep/copy2.bin", "tree/copy.bin", "tree/deep/copy2.bin"],
        "sizes": [16384], "unpacked": ["copy.bin", "deep"], "across_ok": True,
        "tmpdir_parent": "/tmp", "tmp_cleaned": True, "gettempdir": "/tmp"}


THREADS = r"""
import hashlib, json, queue, threading

N = 16
barrier = threading.Barrier(N, timeout=60)   # all sixteen alive at once
lock = threading.Lock()
local = threading.local()
digests, idents = {}, set()
work = queue.Queue()
for i in range(N * 4):
    work.put(i)
cond = threading.Condition()
finished = []

def worker(k):
    local.k = k
    barrier.wait()
    with lock:
        idents.add(threading.get_ident())
    while True:
        try:
            i = work.get_nowait()
        except queue.Empty:
            break
        digest = hashlib.sha256(str(i).encode() * 10_000).hexdigest()
        with lock:
            digests[i] = digest
    with cond:
        finished.append(local.k)
        cond.notify_all()

threads = [threading.Thread(target=worker, args=(k,), name=f"w{k}") for k in range(N)]
for t in threads:
    t.start()
with cond:
    all_done = cond.wait_for(lambda: len(finished) == N, timeout=60)
for t in threads:
    t.join(60)
timer_fired = threading.Event()
threading.Timer(0.01, timer_fired.set).start()
combined = hashlib.sha256("".join(digests[i] for i in sorted(digests)).encode()).hexdigest()
print(json.dumps({"distinct_threads": len(idents), "items": len(digests), "combined": combined,
                  "finished": sorted(finished), "all_done": all_done,
                  "timer": timer_fired.wait(60), "alive": sum(t.is_alive() for t in threads)}))
"""


def test_sixteen_threads(run_json):
    combined = hashlib.sha256("".join(hashlib.sha256(str(i).encode() * 10_000).hexdigest()
                                      for i in range(64)).encode()).hexdigest()
    assert run_json(THREADS) == {"distinct_threads": 16, "items": 64, "combined": combined,
                                 "finished": list(range(16)), "all_done": True,
                                 "timer": True, "alive": 0}


ASYNCIO = r"""
import asyncio, hashlib, json, os, sys

async def producer(q, n):
    for i in range(n):
        await q.put(i)
        await asyncio.sleep(0)
    await q.put(None)

async def consumer(q):
    total = 0
    while (item := await q.get()) is not None:
        total += item
    return total

async def handle(reader, writer):
    data = await reader.readline()
    writer.write(data.upper())
    await writer.drain()
    writer.close()

async def main():
    q = asyncio.Queue(maxsize=5)
    _, total = await asyncio.gather(producer(q, 100), consumer(q))
    slept = await asyncio.gather(*(asyncio.sleep(0.01 * k, result=k) for k in range(10)))
    loop = asyncio.get_running_loop()
    digest = await loop.run_in_executor(None, lambda: hashlib.sha256(b"x" * 1_000_000).hexdigest())
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "print('from child')",
                                                stdout=asyncio.subprocess.PIPE)
    child_out, _ = await proc.communicate()
    server = await asyncio.start_unix_server(handle, path="/tmp/echo.sock")
    async with server:
        reader, writer = await asyncio.open_unix_connection("/tmp/echo.sock")
        writer.write(b"ping over unix socket\n")
        await writer.drain()
        echoed = await reader.readline()
        writer.close()
        await writer.wait_closed()
    try:
        await asyncio.wait_for(asyncio.sleep(30), timeout=0.05)
        timed_out = False
    except asyncio.TimeoutError:
        timed_out = True
    return {"total": total, "slept": slept, "digest": digest, "child": child_out.decode(),
            "child_rc": proc.returncode, "echoed": echoed.decode(), "wait_for_timed_out": timed_out}

print(json.dumps(asyncio.run(main())))
"""


def test_asyncio_event_loop(run_json):
    assert run_json(ASYNCIO) == {
        "total": sum(range(100)), "slept": list(range(10)),
        "digest": hashlib.sha256(b"x" * 1_000_000).hexdigest(),
        "child": "from child\n", "child_rc": 0,
        "echoed": "PING OVER UNIX SOCKET\n", "wait_for_timed_out": True}
