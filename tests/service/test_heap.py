"""The supervisor freezes the imported heap and raises the young generation's threshold before the workers fork
(service/heap.py), so that the collector does not walk the framework's objects on every request."""

from __future__ import annotations

import json
import subprocess
import sys

from service.heap import YOUNG_THRESHOLD

# Run in a process of its own: freezing pytest's heap would change the collector for every later test.
_PROBE = """
import gc, json, os
from hypercorn.config import Config
from service.supervisor import _preload_application
config = Config()
config.application_path = "scripts/bench_bare_app.py:app"
before = gc.get_freeze_count()
_preload_application(config)
read, write = os.pipe()
if os.fork() == 0:  # what a forked worker starts with
    os.write(write, json.dumps([gc.get_freeze_count(), gc.get_threshold()[0]]).encode())
    os._exit(0)
os.wait()
print(json.dumps({"before": before, "child": json.loads(os.read(read, 1000))}))
"""


def test_workers_start_with_the_imported_heap_frozen_and_a_larger_young_generation() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        env={"DATABASE_URL": "postgresql://unused@127.0.0.1/none", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout.splitlines()[-1])
    frozen, threshold = figures["child"]
    assert figures["before"] == 0
    assert frozen > 10_000, figures  # the imports: the framework, the app's modules
    assert threshold == YOUNG_THRESHOLD
