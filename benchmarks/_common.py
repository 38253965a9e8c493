"""Shared by the benchmark scripts: print a result row as JSON and append it to a results file."""
import json


def emit(row: dict, out: str | None = None) -> None:
    print(json.dumps(row), flush=True)
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(row) + "\n")


def error_text(e: Exception, limit: int = 300) -> str:
    """The first line of an exception: one failing variant is recorded, the sweep goes on."""
    return f"{type(e).__name__}: {str(e).splitlines()[0][:limit]}" if str(e) else type(e).__name__
