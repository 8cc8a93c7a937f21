"""A warm process for short ``imgsuite`` jobs.

A Python process with numpy, SimpleITK and pydicom imported costs 0.3-0.5 s before any work: more than a
whole plastimatch DRR, so short single jobs run from a shell script lose to plastimatch's C++ although the
work itself is faster (issue 19). ``imgsuite warm start`` starts one process per interpreter, package and
environment that has imported the job packages. Each later ``imgsuite CMD ...`` (a small client importing
the standard library only) connects to it over a Unix socket; the warm process forks a child that runs
CMD with the caller's arguments, working folder, environment, umask and standard streams (the file
descriptors themselves are passed, so output reaches the caller's terminal or pipe directly) and sends
back the child's exit status. Each job starts from the imported state and ends with its own process: no
job sees another's state, and jobs run side by side.

- ``IMGSUITE_WARM=1``: start the warm process on the first call if none runs; ``IMGSUITE_WARM=0``: never
  use one. Unset: use one if it runs (``imgsuite warm start``).
- The process stops after ``--idle`` minutes without a job, on ``imgsuite warm stop``, or when another
  process takes its socket. A different interpreter, package version, package files or import-time
  environment (``OMP_*``, ``PYTHON*``, ...) gets a process of its own, so a stale one is never used.
- Commands that run servers or their own pools (:data:`COLD_COMMANDS`) always run in the calling process.
"""

# commands that keep running servers, browsers or worker pools: nothing to gain and threads to lose in a fork
COLD_COMMANDS = frozenset({"warm", "cohort", "index", "review", "view", "demo", "nuclei-train"})
