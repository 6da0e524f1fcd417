"""The two releases a local deployment's image drills roll out, built from the image the replicas run:

- the candidate (`<repository>:candidate`): the same code reporting another version (APP_VERSION), so a
  rolling deploy has something to deploy and each replica's version shows which release it runs;
- the broken one (`<repository>:broken`): ingest crashes (500) before it stores anything, while readiness and
  reads stay healthy — the release that passes a readiness-only check and is caught by post-deploy
  verification's write.

A team's staging names its own tags in its target file instead (docs/DEPLOYMENT.md). Built with `docker build`
from a context of two small files; nothing is pulled.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

BUILD_TIMEOUT_S = 300.0
BROKEN_APP = '''"""A broken release (built by chaos/deployment/variants.py): ingest crashes before storing anything."""

from service.asgi import app as _app


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/api/v1/events":
        raise RuntimeError("broken release: ingest crashes before it stores anything")
    await _app(scope, receive, send)
'''
CANDIDATE_DOCKERFILE = """\
FROM {base}
ENV APP_VERSION={version}
LABEL io.executable-runbook.release=candidate
"""
# The service's own entry point serving the broken module instead of service.asgi:app.
BROKEN_DOCKERFILE = """\
FROM {base}
ENV APP_VERSION={version} PYTHONPATH=/app
LABEL io.executable-runbook.release=broken
COPY broken_release.py /app/broken_release.py
CMD ["python", "-m", "service", "--bind", "0.0.0.0:8000", "--app", "broken_release:app"]
"""


class VariantError(RuntimeError):
    pass


def _build(tag: str, dockerfile: str, files: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="rb-variant-") as context:
        root = Path(context)
        (root / "Dockerfile").write_text(dockerfile, encoding="utf-8")
        for name, text in files.items():
            (root / name).write_text(text, encoding="utf-8")
        try:
            result = subprocess.run(
                ["docker", "build", "--quiet", "-t", tag, str(root)],
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise VariantError(f"building {tag} took longer than {BUILD_TIMEOUT_S:.0f} s") from None
    if result.returncode != 0:
        raise VariantError(f"building {tag} failed: {(result.stderr or result.stdout)[-2000:]}")


def build_release_variants(base: str, version: str = "0.0.0") -> tuple[str, str]:
    """Build the candidate and the broken release from `base` (an image reference); returns their tags."""
    repository = base.rsplit(":", 1)[0] if ":" in base.rsplit("/", 1)[-1] else base
    candidate, broken = f"{repository}:candidate", f"{repository}:broken"
    _build(candidate, CANDIDATE_DOCKERFILE.format(base=base, version=f"{version}+candidate"), {})
    _build(
        broken,
        BROKEN_DOCKERFILE.format(base=base, version=f"{version}+broken"),
        {"broken_release.py": BROKEN_APP},
    )
    return candidate, broken
