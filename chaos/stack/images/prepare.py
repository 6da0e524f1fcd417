"""Prepare this machine for the Docker backend: a running Docker engine and the images, without a registry.

    sudo .venv/bin/python scripts/prepare_docker.py   # engine + local images + the service image
    .venv/bin/python scripts/prepare_docker.py --check   # only report what is there (changes nothing)
    sudo python3 -m chaos.stack.images.prepare         # the same from the checkout's root, before .venv exists
                                                       # (it needs the standard library only)

Idempotent: what is already there is reused (a running engine, the imported base image, Docker's build cache),
so a second run takes seconds. Each step is logged with its duration.

1. **Engine.** Installs Debian's `docker.io` (dockerd, containerd, runc, iptables) and `docker-compose` when
   they are missing, checks that containers can run here (storage driver, cgroups, bridge networking with
   iptables NAT) and fails with a message naming what is missing when they cannot, then starts the engine:
   `systemctl start docker` under systemd, otherwise `dockerd` in the background (log: /var/log/dockerd.log).
2. **Base image.** `debootstrap --variant=minbase` of the release this machine runs, from the Debian mirror in
   its own apt sources, made slim like Debian's official images, with this machine's extra CA certificates
   (so pip inside a build trusts the same TLS as pip on the host), then `docker import` as
   runbook-local/debian:<release>.
3. **Stand-ins for the public images**, from Debian's packages on that base (chaos/stack/images/local/): Python 3.11
   (python:3.11-slim), PostgreSQL 15 (postgres:15) and Redis 7 (redis:7), with the official images'
   entrypoint conventions, so the same compose file and stack code run on either.
4. **The service image** from the repo's Dockerfile, on the public python:3.11-slim when the engine has it,
   else on the local stand-in (the BASE_IMAGE build argument); pip inside the build reaches PyPI.
5. **The harness image** (runbook-harness:local) from deploy/harness/Dockerfile on the same base: the package
   with its harness dependencies, whose entrypoint runs `conformance --base-url URL` and the operator checks
   against a deployment. Built from a staged copy of what it installs (the repo's .dockerignore admits the
   service image's files only), with RUNBOOK_COMMIT = `git rev-parse HEAD` (+dirty) as a build argument.

Needs root for steps 1-2 (installing packages, starting dockerd, debootstrap). Exit status 0 when everything
is ready, 1 when a step failed (the message says which and why), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from chaos.invocation import program_name
from chaos.stack.images import IMAGES, LOCAL_BASE_IMAGE, SERVICE_IMAGE, Role, resolve

REPO = Path(__file__).resolve().parents[3]  # the checkout whose Dockerfile builds the service image
# The harness image: its tag, its Dockerfile, and what its build context holds (paths in the checkout).
HARNESS_IMAGE = "runbook-harness:local"
HARNESS_DOCKERFILE = Path("deploy/harness/Dockerfile")
HARNESS_CONTEXT = ("pyproject.toml", "README.md", "requirements", "service", "chaos", "conformance", "deploy/harness")
LOCAL_DOCKERFILES = Path(__file__).resolve().parent / "local"
DOCKERD_LOG = Path("/var/log/dockerd.log")
DOCKERD_PIDFILE = Path("/run/rb-dockerd.pid")
ENGINE_START_TIMEOUT_S = 90.0
SUPPORTED_RELEASE = "bookworm"  # python3 is 3.11 and postgresql-15 exists there
BUILT_BY_LABEL = "io.executable-runbook.built-by=scripts/prepare_docker.py"

_started = time.monotonic()


class PrepareError(RuntimeError):
    """A step that cannot succeed on this machine; the message says what is missing and what to do."""


def log(message: str) -> None:
    print(f"[prepare-docker {time.monotonic() - _started:6.1f}s] {message}", flush=True)


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    log(f"== {title}")
    started = time.monotonic()
    yield
    log(f"== {title}: done in {time.monotonic() - started:.1f}s")


def run(
    command: Sequence[str],
    *,
    check: bool = True,
    quiet: bool = False,
    timeout: float | None = None,
    stdin: int | None = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; its output goes to our output unless `quiet` (then it is captured and shown on failure)."""
    if not quiet:
        log("$ " + " ".join(command))
    result = subprocess.run(
        list(command),
        check=False,
        text=True,
        stdin=stdin,
        capture_output=quiet,
        timeout=timeout,
        env=env,
    )
    if check and result.returncode != 0:
        detail = f"\n{(result.stdout or '')[-2000:]}{(result.stderr or '')[-2000:]}" if quiet else ""
        raise PrepareError(f"`{' '.join(command)}` exited with {result.returncode}{detail}")
    return result


def succeeds(command: Sequence[str], timeout: float = 30.0) -> bool:
    try:
        return run(command, check=False, quiet=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise PrepareError(f"{what} needs root; run this script as root (e.g. with sudo)")


# -- packages ------------------------------------------------------------------------------------------


class Apt:
    def __init__(self) -> None:
        self._updated = False

    def install(self, packages: Sequence[str], why: str) -> None:
        require_root(f"installing {', '.join(packages)}")
        if shutil.which("apt-get") is None:
            raise PrepareError(f"{why}: {', '.join(packages)} must be installed, and this machine has no apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if not self._updated:
            run(["apt-get", "update", "-q"], env=env)
            self._updated = True
        log(f"installing {', '.join(packages)} ({why})")
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], env=env)


# -- the engine ------------------------------------------------------------------------------------------


def engine_answers() -> bool:
    return succeeds(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20)


def compose_command() -> list[str] | None:
    """`docker compose` (v2 plugin) when it works, else `docker-compose` (v1), else None."""
    if shutil.which("docker") and succeeds(["docker", "compose", "version"]):
        return ["docker", "compose"]
    if shutil.which("docker-compose") and succeeds(["docker-compose", "version"]):
        return ["docker-compose"]
    return None


def _mounted_under(path: Path) -> list[str]:
    mounts = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            target = line.split()[1].replace("\\040", " ")
            if target == str(path) or target.startswith(f"{path}/"):
                mounts.append(target)
    return sorted(mounts, key=len, reverse=True)


def _overlay_mount_works() -> bool:
    """Mount a tiny overlay where /var/lib/docker lives, as overlay2 will."""
    base = Path("/var/lib")
    probe = Path(tempfile.mkdtemp(prefix="rb-overlay-probe-", dir=base))
    try:
        for name in ("lower", "upper", "work", "merged"):
            (probe / name).mkdir()
        (probe / "lower" / "file").write_text("x")
        options = f"lowerdir={probe / 'lower'},upperdir={probe / 'upper'},workdir={probe / 'work'}"
        if not succeeds(["mount", "-t", "overlay", "overlay", "-o", options, str(probe / "merged")]):
            return False
        try:
            return (probe / "merged" / "file").read_text() == "x"
        finally:
            succeeds(["umount", str(probe / "merged")])
    finally:
        for target in _mounted_under(probe):
            succeeds(["umount", "-l", target])
        shutil.rmtree(probe, ignore_errors=True)


def choose_storage_driver(apt: Apt) -> str | None:
    """None lets dockerd choose (overlay2 works here); otherwise the driver to pass it."""
    if "overlay" in Path("/proc/filesystems").read_text() and _overlay_mount_works():
        log("storage: the kernel mounts overlay on /var/lib: overlay2")
        return None
    if Path("/dev/fuse").exists():
        if shutil.which("fuse-overlayfs") is None:
            apt.install(["fuse-overlayfs"], "overlay mounts fail here; fuse-overlayfs is the next best driver")
        log("storage: overlay mounts fail here; using fuse-overlayfs")
        return "fuse-overlayfs"
    log("storage: WARNING: neither overlay nor FUSE works here; falling back to vfs (slow, every layer copied)")
    return "vfs"


def engine_problems() -> list[str]:
    """What stops dockerd from running containers with bridge networking here (empty when nothing)."""
    problems = []
    cgroup = Path("/sys/fs/cgroup")
    if (cgroup / "cgroup.controllers").exists():
        controllers = (cgroup / "cgroup.controllers").read_text().split()
        missing = {"cpu", "memory", "pids"} - set(controllers)
        if missing:
            log(f"cgroups: v2 without {sorted(missing)} (limits on those are unavailable)")
    elif (cgroup / "freezer").is_dir() and (cgroup / "memory").is_dir():
        log("cgroups: v1 hierarchies (freezer, memory, ...) mounted")
    else:
        problems.append(
            "no usable cgroup hierarchy at /sys/fs/cgroup (need cgroup v2, or v1 with freezer and memory): "
            "containers cannot be created or paused"
        )
    if shutil.which("iptables") is None:
        problems.append("iptables is not installed (Debian's docker.io depends on it; install it)")
    elif not succeeds(["iptables", "-t", "nat", "-S"]):
        legacy_ok = shutil.which("iptables-legacy") is not None and succeeds(["iptables-legacy", "-t", "nat", "-S"])
        hint = (
            "; iptables-legacy works: `update-alternatives --set iptables /usr/sbin/iptables-legacy`"
            if legacy_ok
            else ""
        )
        problems.append(f"`iptables -t nat -S` fails: dockerd cannot publish ports or NAT containers{hint}")
    if shutil.which("ip") is not None:
        if succeeds(["ip", "link", "add", "rb-probe0", "type", "bridge"]):
            succeeds(["ip", "link", "delete", "rb-probe0"])
        else:
            problems.append("cannot create a bridge interface (`ip link add ... type bridge` fails)")
    forward = Path("/proc/sys/net/ipv4/ip_forward")
    if forward.exists() and forward.read_text().strip() != "1" and not os.access(forward, os.W_OK):
        problems.append("net.ipv4.ip_forward is 0 and cannot be changed: containers cannot reach each other")
    return problems


STALE_PIDFILES = (Path("/var/run/docker.pid"), Path("/var/run/docker/containerd/containerd.pid"))


def _process_state(pid: int) -> str | None:
    """The process's state letter (Z for a zombie), None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def clear_stale_pidfiles() -> None:
    """A dockerd (or its containerd) that was killed leaves its pid file, and dockerd refuses to start while
    that pid exists, even as a zombie nobody reaped: remove pid files whose process is gone or a zombie."""
    for pidfile in STALE_PIDFILES:
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            continue
        state = _process_state(pid)
        if state is None or state == "Z":
            log(f"engine: removing {pidfile} (pid {pid} is {'a zombie' if state else 'gone'})")
            pidfile.unlink(missing_ok=True)
        elif pidfile.name == "docker.pid":
            raise PrepareError(
                f"dockerd (pid {pid}) is running but does not answer `docker info`; see {DOCKERD_LOG}, or stop it"
            )


def start_engine(apt: Apt) -> None:
    if engine_answers():
        version = run(["docker", "info", "--format", "{{.ServerVersion}}"], quiet=True).stdout.strip()
        log(f"engine: Docker {version} already answers")
        return
    require_root("starting the Docker engine")
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        apt.install(["docker.io"], "no Docker engine here")
    problems = engine_problems()
    if problems:
        raise PrepareError("Docker cannot run containers on this machine:\n  - " + "\n  - ".join(problems))
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        run(["systemctl", "start", "docker"])
    else:
        clear_stale_pidfiles()
        driver = choose_storage_driver(apt)
        command = ["dockerd", "--host=unix:///var/run/docker.sock"]
        if driver:
            command.append(f"--storage-driver={driver}")
        log(f"engine: no systemd; starting `{' '.join(command)}` in the background (log: {DOCKERD_LOG})")
        DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
        with DOCKERD_LOG.open("ab") as output:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        with contextlib.suppress(OSError):
            DOCKERD_PIDFILE.write_text(f"{process.pid}\n")
        deadline = time.monotonic() + ENGINE_START_TIMEOUT_S
        while not engine_answers():
            if process.poll() is not None:
                raise PrepareError(f"dockerd exited with {process.returncode}:\n{_tail(DOCKERD_LOG)}")
            if time.monotonic() > deadline:
                raise PrepareError(
                    f"dockerd did not answer within {ENGINE_START_TIMEOUT_S:.0f}s:\n{_tail(DOCKERD_LOG)}"
                )
            time.sleep(0.5)
        log(f"engine: dockerd (pid {process.pid}) answers")
    if not engine_answers():
        raise PrepareError("the Docker engine was started but does not answer `docker info`")
    info = run(["docker", "info", "--format", "{{.ServerVersion}} {{.Driver}} cgroup v{{.CgroupVersion}}"], quiet=True)
    log(f"engine: Docker {info.stdout.strip()}")


def ensure_compose(apt: Apt) -> None:
    found = compose_command()
    if found is None:
        apt.install(["docker-compose"], "no `docker compose` plugin or `docker-compose` here")
        found = compose_command()
    if found is None:
        raise PrepareError("neither `docker compose` nor `docker-compose` works after installing docker-compose")
    version = run([*found, "version"], quiet=True).stdout.splitlines()[0].strip()
    log(f"compose: `{' '.join(found)}` ({version})")


def _tail(path: Path, lines: int = 25) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


# -- the base image ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None


def machine_release() -> str:
    fields = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    codename = fields.get("VERSION_CODENAME", "").strip('"')
    if fields.get("ID", "").strip('"') != "debian" or not codename:
        raise PrepareError("this machine is not Debian (see /etc/os-release); pass --release and --mirror")
    return codename


def apt_sources(root: Path = Path("/")) -> list[AptSource]:
    """Every enabled `deb` source in /etc/apt/sources.list and sources.list.d (one-line and deb822 files)."""
    found: list[AptSource] = []
    etc = root / "etc" / "apt"
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for path in files:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                line = line.split("#", 1)[0].strip()
                match = re.fullmatch(
                    r"deb\s+(?:\[(?P<options>[^\]]*)\]\s+)?(?P<uri>\S+)\s+(?P<suite>\S+)\s*(?P<rest>.*)", line
                )
                if match:
                    options = dict(item.split("=", 1) for item in (match["options"] or "").split() if "=" in item)
                    found.append(
                        AptSource(
                            match["uri"], (match["suite"],), tuple(match["rest"].split()), options.get("signed-by")
                        )
                    )
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        with contextlib.suppress(OSError):
            for stanza in re.split(r"\n\s*\n", path.read_text()):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line:
                        continue
                    name, _, value = line.partition(":")
                    fields[name.strip().lower()] = value.strip()
                if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
                    continue
                suites = tuple(fields.get("suites", "").split())
                for uri in fields.get("uris", "").split():
                    found.append(
                        AptSource(uri, suites, tuple(fields.get("components", "").split()), fields.get("signed-by"))
                    )
    return found


def debian_sources(release: str, sources: list[AptSource]) -> list[AptSource]:
    """The machine's sources for this Debian release (main archive, -updates, -security), nothing third-party."""
    wanted = {release, f"{release}-updates", f"{release}-security"}
    return [
        AptSource(source.uri, tuple(s for s in source.suites if s in wanted), source.components, source.signed_by)
        for source in sources
        if wanted & set(source.suites)
    ]


def main_mirror(release: str, sources: list[AptSource]) -> str:
    for source in sources:
        if release in source.suites:
            return source.uri
    raise PrepareError(
        f"no apt source for {release!r} in /etc/apt/sources.list*; pass --mirror http://<debian mirror>/debian"
    )


def render_sources(sources: list[AptSource]) -> str:
    stanzas = []
    for source in sources:
        lines = [
            "Types: deb",
            f"URIs: {source.uri}",
            f"Suites: {' '.join(source.suites)}",
            f"Components: {' '.join(source.components or ('main',))}",
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
        ]
        stanzas.append("\n".join(lines))
    return "\n\n".join(stanzas) + "\n"


SLIM_DPKG_EXCLUDES = """\
# As in Debian's official slim images: no documentation, manual pages or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
"""

APT_CONTAINER_CONF = """\
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
"""


def image_exists(image: str) -> bool:
    return succeeds(["docker", "image", "inspect", "--format", "{{.Id}}", image])


def build_base(args: argparse.Namespace, apt: Apt) -> None:
    if image_exists(args.base_image) and not args.rebuild_base:
        log(f"base: {args.base_image} is there (cached; --rebuild-base makes it again)")
        return
    require_root("debootstrap")
    if shutil.which("debootstrap") is None:
        apt.install(["debootstrap"], "to build the base image from Debian's packages")
    release = args.release or machine_release()
    if release != SUPPORTED_RELEASE:
        log(f"WARNING: {release} is not {SUPPORTED_RELEASE}; the images need python3 3.11 and postgresql-15")
    sources = debian_sources(release, apt_sources())
    mirror = args.mirror or main_mirror(release, sources)
    if not sources:
        sources = [AptSource(mirror, (release,), ("main",), None)]
    log(f"base: debootstrap {release} (minbase) from {mirror}")
    workdir = Path(tempfile.mkdtemp(prefix="rb-rootfs-", dir="/var/tmp"))
    rootfs = workdir / "rootfs"
    try:
        run(
            ["debootstrap", "--variant=minbase", "--include=ca-certificates", release, str(rootfs), mirror],
            quiet=True,
            timeout=1800,
        )
        _make_slim(rootfs, sources)
        log(f"base: importing the root filesystem as {args.base_image}")
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
        )
        try:
            run(
                [
                    "docker",
                    "import",
                    "--change",
                    "ENV LANG=C.UTF-8",
                    "--change",
                    'CMD ["bash"]',
                    "--change",
                    f"LABEL {BUILT_BY_LABEL}",
                    "-",
                    args.base_image,
                ],
                stdin=tar.stdout.fileno() if tar.stdout else None,
                quiet=True,
            )
        finally:
            if tar.stdout:
                tar.stdout.close()
            tar.wait()
        if tar.returncode != 0:
            raise PrepareError(f"tar of the root filesystem exited with {tar.returncode}")
    finally:
        for target in _mounted_under(workdir):  # debootstrap leaves /proc etc. mounted when it fails
            succeeds(["umount", "-l", target])
        shutil.rmtree(workdir, ignore_errors=True)


def _make_slim(rootfs: Path, sources: list[AptSource]) -> None:
    """What Debian's official images do to a debootstrap tree, plus the machine's apt sources and CAs."""
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(render_sources(sources))
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# no daemons start while images are built\nexit 101\n")
    policy.chmod(0o755)
    (rootfs / "etc/dpkg/dpkg.cfg.d").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/dpkg/dpkg.cfg.d/docker-slim").write_text(SLIM_DPKG_EXCLUDES)
    (rootfs / "etc/apt/apt.conf.d/docker-container").write_text(APT_CONTAINER_CONF)
    extra_cas = sorted(Path("/usr/local/share/ca-certificates").rglob("*.crt"))
    if extra_cas:
        target = rootfs / "usr/local/share/ca-certificates"
        for certificate in extra_cas:
            destination = target / certificate.relative_to("/usr/local/share/ca-certificates")
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(certificate, destination)
        run(["chroot", str(rootfs), "update-ca-certificates"], quiet=True)
        log(f"base: added this machine's CA certificates: {', '.join(c.name for c in extra_cas)}")
    for pattern in (
        "var/lib/apt/lists/*",
        "var/cache/apt/*.bin",
        "var/cache/apt/archives/*.deb",
        "var/cache/debconf/*-old",
        "var/log/*.log",
        "var/log/apt/*",
        "usr/share/doc/*/[!c]*",
        "usr/share/man/*",
        "usr/share/info/*",
    ):
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


# -- images built with docker build --------------------------------------------------------------------------


def docker_build(context: Path, tag: str, *, dockerfile: Path | None = None, build_args: dict[str, str]) -> None:
    env = dict(os.environ)
    if not succeeds(["docker", "buildx", "version"]):
        env["DOCKER_BUILDKIT"] = "0"  # no buildx plugin: the classic builder, without its deprecation error
    command = ["docker", "build", "--label", BUILT_BY_LABEL, "-t", tag]
    if dockerfile is not None:
        command += ["-f", str(dockerfile)]
    for name, value in build_args.items():
        command += ["--build-arg", f"{name}={value}"]
    run([*command, str(context)], env=env, timeout=1800)


def build_local_images(args: argparse.Namespace) -> None:
    for choice in IMAGES.values():
        role = choice.role
        with step(f"image {choice.local} (stand-in for {choice.public})"):
            docker_build(
                LOCAL_DOCKERFILES,
                choice.local,
                dockerfile=LOCAL_DOCKERFILES / f"{role}.Dockerfile",
                build_args={"BASE": args.base_image},
            )
    checks: dict[Role, list[str]] = {
        "python": ["python", "--version"],
        "postgres": ["postgres", "--version"],
        "redis": ["redis-server", "--version"],
    }
    for role, command in checks.items():
        image = IMAGES[role].local
        output = run(["docker", "run", "--rm", "--network", "none", image, *command], quiet=True).stdout.strip()
        log(f"{image}: {output.splitlines()[0] if output else '(no output)'}")


def build_service_image(args: argparse.Namespace) -> None:
    if not (REPO / "Dockerfile").is_file():
        raise PrepareError(f"no Dockerfile in {REPO}: the service image is built from a checkout of the repo")
    base = resolve("python")
    with step(f"image {args.service_image} from the repo's Dockerfile (BASE_IMAGE={base})"):
        docker_build(REPO, args.service_image, build_args={"BASE_IMAGE": base})


def checkout_commit(repo: Path = REPO) -> str:
    """`git rev-parse HEAD` of the checkout, with "+dirty" when tracked files differ from it (the image then holds
    code no commit names), or "unknown" outside a checkout: the harness image's RUNBOOK_COMMIT."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if not head:
        return "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def stage_harness_context(destination: Path, repo: Path = REPO) -> None:
    """Copy what the harness image installs into `destination`, the build context (no caches, no checkout)."""
    for name in HARNESS_CONTEXT:
        origin = repo / name
        if not origin.exists():
            raise PrepareError(f"{origin} is missing: the harness image is built from a checkout of the repo")
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, target)


def build_harness_image(args: argparse.Namespace) -> None:
    base = resolve("python")
    commit = checkout_commit()
    with step(f"image {args.harness_image} from {HARNESS_DOCKERFILE} (BASE_IMAGE={base}, RUNBOOK_COMMIT={commit})"):
        with tempfile.TemporaryDirectory(prefix="rb-harness-context-") as context:
            stage_harness_context(Path(context))
            docker_build(
                Path(context),
                args.harness_image,
                dockerfile=Path(context) / HARNESS_DOCKERFILE,
                build_args={"BASE_IMAGE": base, "RUNBOOK_COMMIT": commit},
            )
        size = run(["docker", "image", "inspect", "--format", "{{.Size}}", args.harness_image], quiet=True)
        log(f"{args.harness_image}: {int(size.stdout.strip()) / 1e6:.0f} MB")


def remove_superseded_images() -> None:
    """Earlier builds of these images, untagged by newer ones (nothing else: other dangling images stay)."""
    for label in ("io.executable-runbook.built-by", "org.opencontainers.image.title=executable-runbook"):
        run(["docker", "image", "prune", "--force", "--filter", f"label={label}"], quiet=True)


# -- report ---------------------------------------------------------------------------------------------------


def report() -> int:
    answers = engine_answers()
    log(f"engine: {'answers' if answers else 'not answering'}")
    compose = compose_command()
    log(f"compose: {' '.join(compose) if compose else 'missing'}")
    if not answers:
        return 1
    missing = []
    for image in [LOCAL_BASE_IMAGE, *(choice.local for choice in IMAGES.values()), SERVICE_IMAGE, HARNESS_IMAGE]:
        present = image_exists(image)
        log(f"image {image}: {'present' if present else 'missing'}")
        if not present:
            missing.append(image)
    for role in IMAGES:
        log(f"{role}: the Docker backend would use {resolve(role)}")
    return 0 if not missing and compose else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=program_name("chaos.stack.images.prepare"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", action="store_true", help="report the engine and images; change nothing")
    parser.add_argument("--rebuild-base", action="store_true", help="debootstrap the base image again")
    parser.add_argument("--release", help="Debian release of the base image (default: this machine's)")
    parser.add_argument("--mirror", help="Debian mirror (default: the one in this machine's apt sources)")
    parser.add_argument("--base-image", default=LOCAL_BASE_IMAGE, help=f"base image tag (default {LOCAL_BASE_IMAGE})")
    parser.add_argument("--service-image", default=SERVICE_IMAGE, help=f"service image tag (default {SERVICE_IMAGE})")
    parser.add_argument("--no-local-images", action="store_true", help="skip the base image and the stand-ins")
    parser.add_argument("--no-service-image", action="store_true", help="skip building the service image")
    parser.add_argument("--harness-image", default=HARNESS_IMAGE, help=f"harness image tag (default {HARNESS_IMAGE})")
    parser.add_argument("--no-harness-image", action="store_true", help="skip building the harness image")
    args = parser.parse_args(argv)
    if args.check:
        return report()
    log(f"preparing Docker on {platform.node()} ({platform.machine()}, kernel {platform.release()})")
    apt = Apt()
    try:
        with step("Docker engine"):
            start_engine(apt)
            ensure_compose(apt)
        if not args.no_local_images:
            with step(f"base image {args.base_image}"):
                build_base(args, apt)
            build_local_images(args)
        if not args.no_service_image:
            build_service_image(args)
        if not args.no_harness_image:
            build_harness_image(args)
        remove_superseded_images()
    except PrepareError as error:
        log(f"FAILED: {error}")
        return 1
    except subprocess.TimeoutExpired as error:
        log(f"FAILED: `{' '.join(map(str, error.cmd))}` took longer than {error.timeout:.0f}s")
        return 1
    log(f"ready in {time.monotonic() - _started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
