"""Batch jobs over photo sets: `hida-rt batch` (or `python -m hida_rt.batch`).

- `__main__`: the command line (options, the in-process run, the summary);
- `job`: the per-image work both runs share (Task, Outcome, Settings, Sketcher) and `plan`;
- `files`: where a job reads and writes (folders, globs, pyarrow URIs; atomic writes, resuming);
- `ray_job`: the same work on a Ray Data actor pool (`--ray`; Ray is imported only there).
"""
