"""numpy: BLAS/LAPACK with OpenBLAS threads, FFT, random, Python threads and ro mounts."""
import os

import numpy as np
import pytest

pytestmark = pytest.mark.integration

LINALG = r"""
import json, os
import numpy as np

rng = np.random.default_rng(12345)
a = rng.standard_normal((500, 500))
b = rng.standard_normal((500, 500))
c = a @ b                                   # dgemm: OpenBLAS starts its worker threads here
blas_threads = len(os.listdir("/proc/self/task"))

u, s, vt = np.linalg.svd(a)
svd_error = float(np.max(np.abs((u * s) @ vt - a)))
x = np.linalg.solve(a, b[:, 0])
solve_residual = float(np.max(np.abs(a @ x - b[:, 0])))
inv_error = float(np.max(np.abs(np.linalg.inv(a) @ a - np.eye(500))))
sign, logdet = np.linalg.slogdet(a)
eig_sym = np.linalg.eigvalsh(a + a.T)

n = 4096
t = np.arange(n) / n
signal = np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 120 * t)
spectrum = np.abs(np.fft.rfft(signal))
fft_peaks = sorted(int(i) for i in np.argsort(spectrum)[-2:])
fft_roundtrip = float(np.max(np.abs(np.fft.irfft(np.fft.rfft(signal), n=n) - signal)))
fft2_error = float(np.max(np.abs(np.fft.ifft2(np.fft.fft2(a)).real - a)))

print(json.dumps({
    "cpus": len(os.sched_getaffinity(0)),
    "blas_threads": blas_threads,
    "matmul_sum": float(c.sum()),
    "matmul_trace": float(np.trace(c)),
    "matmul_row7": c[7, :5].tolist(),
    "singular_top3": s[:3].tolist(),
    "svd_error": svd_error,
    "solve_residual": solve_residual,
    "inv_error": inv_error,
    "slogdet": [float(sign), float(logdet)],
    "eig_sym_ends": [float(eig_sym[0]), float(eig_sym[-1])],
    "integers": rng.integers(0, 1_000_000, 8).tolist(),
    "normal_mean": float(rng.normal(3.0, 2.0, 200_000).mean()),
    "permutation": rng.permutation(10).tolist(),
    "legacy_seeded": np.random.RandomState(7).randint(0, 100, 6).tolist(),
    "fft_peaks": fft_peaks,
    "fft_roundtrip": fft_roundtrip,
    "fft2_error": fft2_error,
}))
"""


def test_linalg_random_and_fft(run_json):
    report = run_json(LINALG)

    rng = np.random.default_rng(12345)  # the same stream on the host: the reference
    a = rng.standard_normal((500, 500))
    b = rng.standard_normal((500, 500))
    c = a @ b
    s = np.linalg.svd(a, compute_uv=False)
    sign, logdet = np.linalg.slogdet(a)
    eig_sym = np.linalg.eigvalsh(a + a.T)

    if report["cpus"] >= 2:  # OpenBLAS parallelises a 500x500 dgemm when it has cores
        assert report["blas_threads"] >= 2, report
    assert report["matmul_sum"] == pytest.approx(float(c.sum()), rel=1e-9, abs=1e-6)
    assert report["matmul_trace"] == pytest.approx(float(np.trace(c)), rel=1e-9)
    assert np.allclose(report["matmul_row7"], c[7, :5], rtol=1e-12, atol=1e-9)
    assert np.allclose(report["singular_top3"], s[:3], rtol=1e-10)
    assert report["svd_error"] < 1e-9
    assert report["solve_residual"] < 1e-8
    assert report["inv_error"] < 1e-8
    assert report["slogdet"][0] == float(sign)
    assert report["slogdet"][1] == pytest.approx(float(logdet), rel=1e-10)
    assert np.allclose(report["eig_sym_ends"], [eig_sym[0], eig_sym[-1]], rtol=1e-10)
    # Random streams are bit-exact across machines for the same numpy and seed.
    assert report["integers"] == rng.integers(0, 1_000_000, 8).tolist()
    assert report["normal_mean"] == rng.normal(3.0, 2.0, 200_000).mean()
    assert report["permutation"] == rng.permutation(10).tolist()
    assert report["legacy_seeded"] == np.random.RandomState(7).randint(0, 100, 6).tolist()
    assert report["fft_peaks"] == [50, 120]
    assert report["fft_roundtrip"] < 1e-12
    assert report["fft2_error"] < 1e-9


THREADPOOL = r"""
import concurrent.futures, json, threading
import numpy as np

barrier = threading.Barrier(4, timeout=60)  # proves four workers really run side by side

def work(seed):
    barrier.wait()
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((300, 300))
    sym = m @ m.T + 300 * np.eye(300)       # BLAS inside a Python thread (GIL released)
    chol = np.linalg.cholesky(sym)
    return seed, threading.get_ident(), float(np.linalg.eigvalsh(sym)[-1]), float(np.abs(chol @ chol.T - sym).max())

with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    results = list(pool.map(work, range(8)))

print(json.dumps({
    "seeds": [r[0] for r in results],
    "distinct_threads": len({r[1] for r in results}),
    "largest_eigs": [r[2] for r in results],
    "chol_error": max(r[3] for r in results),
}))
"""


def test_numpy_in_a_thread_pool(run_json):
    report = run_json(THREADPOOL)

    expected = []
    for seed in range(8):
        m = np.random.default_rng(seed).standard_normal((300, 300))
        expected.append(np.linalg.eigvalsh(m @ m.T + 300 * np.eye(300))[-1])
    assert report["seeds"] == list(range(8))
    assert report["distinct_threads"] == 4
    assert np.allclose(report["largest_eigs"], expected, rtol=1e-10)
    assert report["chol_error"] < 1e-8


NPY_FROM_RO_MOUNT = r"""
import json
import numpy as np

grid = np.load("/data/grid.npy")
mapped = np.load("/data/grid.npy", mmap_mode="r")     # mmap of a file on a read-only bind
with np.load("/data/bundle.npz") as bundle:
    labels = bundle["labels"].tolist()
    weights = bundle["weights"]
print(json.dumps({
    "dtype": str(grid.dtype),
    "shape": list(grid.shape),
    "sum": int(grid.sum()),
    "corner": int(grid[-1, -1]),
    "mapped_equal": bool(np.array_equal(mapped, grid)),
    "mapped_is_memmap": isinstance(mapped, np.memmap),
    "col_means": grid.mean(axis=0)[:3].tolist(),
    "labels": labels,
    "weights_dot": float(weights @ weights),
}))
"""


def test_numpy_load_from_a_read_only_mount(run_json, out_dir):
    grid = np.arange(600 * 400, dtype=np.int64).reshape(600, 400) * 3 - 7
    np.save(os.path.join(out_dir, "grid.npy"), grid)
    weights = np.linspace(0.0, 1.0, 101)
    np.savez(os.path.join(out_dir, "bundle.npz"), labels=np.array(["a", "bb", "ccc"]), weights=weights)

    report = run_json(NPY_FROM_RO_MOUNT,
                      mounts=[{"host": out_dir, "sandbox": "/data", "ro": True}])

    assert report == {
        "dtype": "int64",
        "shape": [600, 400],
        "sum": int(grid.sum()),
        "corner": int(grid[-1, -1]),
        "mapped_equal": True,
        "mapped_is_memmap": True,
        "col_means": grid.mean(axis=0)[:3].tolist(),
        "labels": ["a", "bb", "ccc"],
        "weights_dot": float(weights @ weights),
    }
