"""Long-running work (imports, key rotation, reports, PDF batches) with progress and retry.

Jobs run in-process on a small thread pool by default (embedded set-up) or on RQ workers when
``RSO_REDIS_URL`` is set (``rso worker``). Either way the job's row in ``jobs`` carries its
status and progress, so pages can show it and a restarted worker can resume or fail it.
"""
