"""chaos/stack/images/prepare.py (scripts/prepare_docker.py): the machine's apt sources become the base image's
(Debian's suites only)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from chaos.stack.images import prepare as prepare_module


@pytest.fixture(scope="module")
def prepare() -> ModuleType:
    return prepare_module


@pytest.fixture
def machine(tmp_path: Path) -> Path:
    apt = tmp_path / "etc" / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text(
        "# a comment\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://mirror.example/debian bookworm-updates main\n"
        "deb-src http://mirror.example/debian bookworm main\n"
    )
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n"
        "# http://snapshot.example/archive/debian/20250520T000000Z\n"
        "URIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main contrib\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        "\n"
        "Types: deb\n"
        "URIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
        "\n"
        "Types: deb\n"
        "URIs: http://disabled.example/debian\n"
        "Suites: bookworm\n"
        "Enabled: no\n"
    )
    (apt / "sources.list.d" / "nodesource.list").write_text(
        "deb https://deb.nodesource.example/node_20.x nodistro main\n"
    )
    (apt / "sources.list.d" / "cloud.list.disabled-by-farm").write_text("deb https://cloud.example/apt cloud main\n")
    return tmp_path


def test_every_enabled_deb_source_is_read_from_both_formats(prepare: ModuleType, machine: Path) -> None:
    found = {(source.uri, source.suites) for source in prepare.apt_sources(machine)}
    assert found == {
        ("http://mirror.example/debian", ("bookworm-updates",)),
        ("http://mirror.example/debian", ("bookworm", "bookworm-updates")),
        ("http://mirror.example/debian-security", ("bookworm-security",)),
        ("https://deb.nodesource.example/node_20.x", ("nodistro",)),
    }


def test_only_the_releases_debian_suites_reach_the_image(prepare: ModuleType, machine: Path) -> None:
    sources = prepare.debian_sources("bookworm", prepare.apt_sources(machine))
    assert {source.uri for source in sources} == {
        "http://mirror.example/debian",
        "http://mirror.example/debian-security",
    }
    assert prepare.main_mirror("bookworm", sources) == "http://mirror.example/debian"
    rendered = prepare.render_sources(sources)
    assert "nodesource" not in rendered
    assert "Suites: bookworm-security\nComponents: main\n" in rendered
    assert "Components: main contrib" in rendered
    with pytest.raises(prepare.PrepareError, match="no apt source for 'trixie'"):
        prepare.main_mirror("trixie", prepare.debian_sources("trixie", prepare.apt_sources(machine)))
