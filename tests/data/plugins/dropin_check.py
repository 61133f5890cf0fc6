"""conf.d/disk_free.py: a `disk_free` check type, up while a filesystem has room."""

import shutil

from hafm.hooks import CheckType, ProbeResult, check_keys, hookimpl


def validate(options):
    problems = check_keys(options, required=("path", "min_free_mb"))
    if not isinstance(options.get("min_free_mb", 0), int):
        problems.append(("min_free_mb", "must be an integer"))
    return problems


def create(check):
    path, min_free = check.options["path"], check.options["min_free_mb"]

    async def probe():
        free_mb = shutil.disk_usage(path).free // 2**20
        return ProbeResult(ok=free_mb >= min_free, detail=f"{free_mb} MiB free on {path}")

    return probe


@hookimpl
def hafm_register_check_types():
    return [CheckType(name="disk_free", validate=validate, create=create)]
