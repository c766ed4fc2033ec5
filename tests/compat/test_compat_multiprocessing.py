"""multiprocessing: pools under fork, spawn and forkserver; /dev/shm semaphores; shared memory.

Functions used by spawn/forkserver children live in a module passed with files=: a job's
code has no file, so (exactly as with `python -c` or a REPL) children started fresh
cannot import functions defined in `__main__`. Under fork they can, and that is tested too.
"""
import numpy as np
import pytest

pytestmark = pytest.mark.integration

MODULE = rb"""
import os, time

def square(x):
    return x * x

def whoami(x):
    return x, os.getpid()

def locked_increments(lock, counter, n):
    for _ in range(n):
        with lock:
            counter.value += 1

def bounded(sem, lock, active, peak, rounds):
    for _ in range(rounds):
        with sem:
            with lock:
                active.value += 1
                peak.value = max(peak.value, active.value)
            time.sleep(0.002)
            with lock:
                active.value -= 1

def produce(queue, start, count):
    for i in range(start, start + count):
        queue.put(i)
    queue.put(None)

def wait_then_report(event, barrier, queue, ident):
    event.wait(60)
    barrier.wait(60)
    queue.put(("ready", ident))

def double_shared(name, n):
    from multiprocessing import shared_memory
    import numpy as np
    shm = shared_memory.SharedMemory(name=name)
    try:
        arr = np.ndarray((n,), dtype=np.float64, buffer=shm.buf)
        arr *= 2
        del arr
    finally:
        shm.close()

def fill_list(name):
    from multiprocessing import shared_memory
    sl = shared_memory.ShareableList(name=name)
    try:
        sl[0] = sl[0] + 1
        sl[1] = "changed"
    finally:
        sl.shm.close()

def record(shared_dict, key):
    shared_dict[key] = key * 10
"""

FILES = {"mpwork.py": MODULE}
PRELUDE = "import os, sys\nsys.path.insert(0, os.getcwd())\n"


FORK_POOL = r"""
import concurrent.futures, json, multiprocessing, os

def cube(x):          # defined in __main__: fine for forked workers
    return x ** 3

def whoami(x):
    return x, os.getpid()

if __name__ == "__main__":
    method = multiprocessing.get_start_method()
    with multiprocessing.Pool(2) as pool:
        cubes = pool.map(cube, range(20))
        star = pool.starmap(pow, [(2, 10), (3, 4)])
        async_result = pool.apply_async(sum, ([1, 2, 3],)).get(60)
        workers = {pid for _, pid in pool.map(whoami, range(8), chunksize=1)}
    with concurrent.futures.ProcessPoolExecutor(max_workers=2) as ex:
        executor = list(ex.map(cube, range(5)))
    print(json.dumps({"method": method, "cubes": cubes, "star": star, "async": async_result,
                      "executor": executor, "worker_pids": len(workers),
                      "workers_are_children": os.getpid() not in workers}))
"""


def test_pool_with_the_default_fork_start_method(run_json):
    report = run_json(FORK_POOL)
    assert report == {"method": "fork", "cubes": [x ** 3 for x in range(20)], "star": [1024, 81],
                      "async": 6, "executor": [0, 1, 8, 27, 64],
                      "worker_pids": report["worker_pids"], "workers_are_children": True}
    assert 1 <= report["worker_pids"] <= 2


FRESH_POOL = PRELUDE + r"""
import json, multiprocessing
import mpwork

if __name__ == "__main__":
    ctx = multiprocessing.get_context(METHOD)
    with ctx.Pool(2) as pool:
        squares = pool.map(mpwork.square, range(50))
        unordered = sorted(pool.imap_unordered(mpwork.square, range(10)))
        owners = pool.map(mpwork.whoami, range(8), chunksize=1)
    print(json.dumps({"method": ctx.get_start_method(), "squares": squares, "unordered": unordered,
                      "order": [x for x, _ in owners],
                      "child_pids_are_not_ours": all(pid != os.getpid() for _, pid in owners)}))
"""


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_pool_with_a_fresh_interpreter_start_method(run_json, method):
    report = run_json(FRESH_POOL.replace("METHOD", repr(method)), files=FILES)
    assert report == {"method": method, "squares": [x * x for x in range(50)],
                      "unordered": [x * x for x in range(10)], "order": list(range(8)),
                      "child_pids_are_not_ours": True}


PRIMITIVES = PRELUDE + r"""
import json, multiprocessing
import mpwork

if __name__ == "__main__":
    ctx = multiprocessing.get_context(METHOD)

    lock = ctx.Lock()
    # spawn keeps named semaphores in /dev/shm until the resource tracker unlinks them;
    # fork unlinks them at once. Either way sem_open(3) went through /dev/shm.
    shm_sems = sorted(n for n in os.listdir("/dev/shm") if n.startswith("sem."))
    counter = ctx.Value("i", 0, lock=False)
    procs = [ctx.Process(target=mpwork.locked_increments, args=(lock, counter, 500)) for _ in range(4)]
    for p in procs: p.start()
    for p in procs: p.join(90)
    exitcodes = [p.exitcode for p in procs]

    sem = ctx.BoundedSemaphore(2)
    active, peak = ctx.Value("i", 0, lock=False), ctx.Value("i", 0, lock=False)
    procs = [ctx.Process(target=mpwork.bounded, args=(sem, lock, active, peak, 20)) for _ in range(4)]
    for p in procs: p.start()
    for p in procs: p.join(90)
    exitcodes += [p.exitcode for p in procs]

    queue = ctx.Queue()
    producers = [ctx.Process(target=mpwork.produce, args=(queue, 100 * k, 50)) for k in range(3)]
    for p in producers: p.start()
    received, done = [], 0
    while done < 3:
        item = queue.get(timeout=60)
        if item is None:
            done += 1
        else:
            received.append(item)
    for p in producers: p.join(90)
    exitcodes += [p.exitcode for p in producers]

    event, barrier, replies = ctx.Event(), ctx.Barrier(3), ctx.SimpleQueue()
    waiters = [ctx.Process(target=mpwork.wait_then_report, args=(event, barrier, replies, i)) for i in range(3)]
    for p in waiters: p.start()
    event.set()
    ready = sorted(replies.get()[1] for _ in range(3))
    for p in waiters: p.join(90)
    exitcodes += [p.exitcode for p in waiters]

    print(json.dumps({"method": ctx.get_start_method(), "exitcodes": exitcodes,
                      "counter": counter.value, "peak": peak.value, "active": active.value,
                      "received": sorted(received), "ready": ready,
                      "shm_sems_seen": len(shm_sems) > 0}))
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_locks_semaphores_queues_and_events(run_json, method):
    report = run_json(PRIMITIVES.replace("METHOD", repr(method)), files=FILES)
    assert report.pop("method") == method
    assert report.pop("exitcodes") == [0] * 14
    assert report.pop("counter") == 2000
    assert 1 <= report.pop("peak") <= 2
    assert report.pop("active") == 0
    assert report.pop("received") == sorted(100 * k + i for k in range(3) for i in range(50))
    assert report.pop("ready") == [0, 1, 2]
    assert report.pop("shm_sems_seen") is (method == "spawn")
    assert report == {}


SHARED_MEMORY = PRELUDE + r"""
import json, multiprocessing
from multiprocessing import shared_memory
import numpy as np
import mpwork

if __name__ == "__main__":
    ctx = multiprocessing.get_context("spawn")
    n = 1000
    shm = shared_memory.SharedMemory(create=True, size=n * 8)
    in_dev_shm = os.path.exists("/dev/shm/" + shm.name.lstrip("/"))
    arr = np.ndarray((n,), dtype=np.float64, buffer=shm.buf)
    arr[:] = np.arange(n)
    child = ctx.Process(target=mpwork.double_shared, args=(shm.name, n))
    child.start(); child.join(90)
    forked = multiprocessing.get_context("fork").Process(target=mpwork.double_shared, args=(shm.name, n))
    forked.start(); forked.join(90)
    total = float(arr.sum())
    del arr
    shm.close(); shm.unlink()
    gone = not os.path.exists("/dev/shm/" + shm.name.lstrip("/"))

    sl = shared_memory.ShareableList([41, "original", 2.5])
    child = ctx.Process(target=mpwork.fill_list, args=(sl.shm.name,))
    child.start(); child.join(90)
    shareable = list(sl)
    sl.shm.close(); sl.shm.unlink()

    with ctx.Manager() as manager:       # a server process spoken to over an AF_UNIX socket
        shared = manager.dict()
        procs = [ctx.Process(target=mpwork.record, args=(shared, k)) for k in range(3)]
        for p in procs: p.start()
        for p in procs: p.join(90)
        managed = dict(sorted(shared.items()))

    print(json.dumps({"exitcodes": [child.exitcode, forked.exitcode] + [p.exitcode for p in procs],
                      "in_dev_shm": in_dev_shm, "unlinked": gone, "total": total,
                      "shareable": shareable, "managed": managed}))
"""


def test_shared_memory_and_manager(run_json):
    report = run_json(SHARED_MEMORY, files=FILES)
    assert report == {"exitcodes": [0] * 5, "in_dev_shm": True, "unlinked": True,
                      "total": float(np.arange(1000).sum() * 4),
                      "shareable": [42, "changed", 2.5],
                      "managed": {"0": 0, "1": 10, "2": 20}}
