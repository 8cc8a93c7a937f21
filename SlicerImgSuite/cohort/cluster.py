"""The Dask client a cohort runs on: a ``LocalCluster`` by default, or an existing scheduler.

We do not schedule anything ourselves: Dask's scheduler places the tasks, moves them off a worker
that died and enforces each worker's memory limit. What we add is one thread per worker for every
numeric library (SimpleITK, BLAS/OpenMP, numba), so that N workers use N cores and not N x cores.
"""

from __future__ import annotations

import contextlib
import os

from ..errors import ImgSuiteError

# Read by the libraries when a worker process starts (a LocalCluster's workers inherit them).
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": "1",
}


def pin_threads() -> None:
    """Hold SimpleITK, BLAS/OpenMP (threadpoolctl) and numba to one thread in this process."""
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    with contextlib.suppress(Exception):  # threadpoolctl is a core dependency; numba may be absent
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    with contextlib.suppress(Exception):
        import numba

        numba.set_num_threads(1)


def _worker_plugin(modules: tuple[str, ...] = ()):
    """A worker plugin: :func:`pin_threads`, then import ``modules`` (the job's libraries), on every
    worker, also on workers that join later, so the first case of each worker does not pay them."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class PrepareWorker(WorkerPlugin):
        name = "imgsuite-prepare-worker"
        idempotent = True

        def setup(self, worker):
            import importlib

            pin_threads()
            for module in modules:
                importlib.import_module(module)

    return PrepareWorker()


@contextlib.contextmanager
def cohort_client(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    memory_limit: str | None = "auto",
    job: str | None = None,
):
    """Yield a ``distributed.Client``: connected to ``scheduler``, or to a new ``LocalCluster``.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``; a dask-jobqueue cluster's
        ``cluster.scheduler_address``). Its workers should run with :data:`SINGLE_THREAD_ENV`.
    workers : int, optional
        Worker processes of the local cluster (default: the CPU count), one thread each.
    memory_limit : str, optional
        Per-worker memory limit of the local cluster (``"4GiB"``; ``"auto"`` shares the machine's
        memory). A worker over it is restarted by its nanny and the case it ran becomes an error row.
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler and workers:
        raise ImgSuiteError("give --scheduler or --workers, not both (a scheduler brings its own workers)")
    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise ImgSuiteError(f"cannot reach the Dask scheduler ({exc})", scheduler) from None
        cluster = None
    else:
        n = (os.cpu_count() or 1) if workers is None else workers
        if n < 1:
            raise ImgSuiteError(f"--workers must be at least 1, got {n}")
        # Dask's nanny puts pre-spawn-environ into the environment before it starts (and restarts) a
        # worker, so OpenMP/BLAS read one thread when they load; a worker that set them itself would
        # be too late. One case per worker thread at a time (worker-saturation 1.0): a worker that
        # dies (memory limit) takes only its own case with it, not a case queued behind it. A case
        # whose worker dies is tried once more (a crash of another cause), not Dask's three more times:
        # a case over the memory limit would cost a worker restart each time.
        saved = {k: os.environ.get(k) for k in SINGLE_THREAD_ENV}
        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", None) or {}) | SINGLE_THREAD_ENV
        settings = {
            "distributed.scheduler.worker-saturation": 1.0,
            "distributed.nanny.pre-spawn-environ": environ,
            "distributed.scheduler.allowed-failures": _allowed_failures(),
        }
        with dask.config.set(settings):
            cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                memory_limit=memory_limit,
                dashboard_address=":0",  # a free port: several cohorts may run on one machine
            )
        client = Client(cluster)
    try:
        from .jobs import JOB_MODULES

        client.register_plugin(_worker_plugin(JOB_MODULES.get(job, ())))
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
            _restore(saved)  # the nanny wrote the single-thread settings into this process's environment


def _allowed_failures() -> int:
    """1, unless the user's Dask configuration (a file, ``dask.config.set``) chose other than Dask's default 3."""
    import dask

    configured = dask.config.get("distributed.scheduler.allowed-failures", 3)
    return 1 if configured == 3 else int(configured)


def _restore(saved: dict) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def dashboard_text(client) -> str:
    """One line for the user: where Dask's dashboard is, or how to get one."""
    if not _has_bokeh() and client.cluster is not None:
        return "Dask dashboard: off (pip install 'bokeh>=3.1' to watch the workers)"
    return f"Dask dashboard: {client.dashboard_link}"


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None
