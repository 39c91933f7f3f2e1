"""The import: list albums at a source, encode their pending photos, store the faces.

One room, its modules in the order they depend on each other (each imports
only modules above it, so there is no import cycle):

- `summary.py`: `ImportSummary`, the counts and errors of a run (plain data).
- `control.py`: `RunControl`, the run's token, deadline and heartbeat, and
  `RunStopped` (out of time, or a signal).
- `workers.py`: `EncodeJob` → `encode_job()` → `EncodeResult`, what an
  encoding process runs (no Django), and `WorkerPool`, those processes.
- `jobs.py`: `jobs_for()`, the encoding jobs of claimed photos (their
  signed URLs refreshed first), shared by the importer and Celery tasks.
- `distributed.py`: beyond one machine: `wait()` for queued photos and
  `import_photo()`, the body of the Celery task.
- `tasks.py`: the Celery task `faces.import_photo` and `enqueue()`; the only
  module that imports Celery, loaded only with CELERY_BROKER_URL set.
- `albums.py`: `sync_albums()`, a source's albums and their photo rows,
  refusing to hide too many at once.
- `importer.py`: `run_import()`, the run itself, used by `import_albums`.

This package imports nothing at its own level: a spawned encoding worker
imports `faces.imports.workers` without loading Django models.
"""
