"""The docker/ files, read as Docker and nginx would read them (no Docker engine here): what the build context
leaves out, and how the compose proxy forwards the client's address."""

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


# ---------------------------------------------------------------------------------------------- .dockerignore
def _pattern_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern as Docker matches it (Go's filepath.Match, plus `**` for any number of directories)."""
    parts, index = [], 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            parts.append(pattern[index : end + 1])
            index = end + 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts))


@cache
def _rules() -> list[tuple[bool, re.Pattern]]:
    """(is an exception, pattern) for every rule of .dockerignore, in order."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negated, _pattern_regex(pattern)))
    return rules


def excluded(path: str) -> bool:
    """Whether Docker leaves `path` out of the build context: the last rule matching it or a parent decides."""
    candidates = [path] + ["/".join(path.split("/")[:depth]) for depth in range(1, path.count("/") + 1)]
    verdict = False
    for negated, regex in _rules():
        if any(regex.fullmatch(candidate) for candidate in candidates):
            verdict = not negated
    return verdict


@pytest.mark.parametrize(
    "path",
    [
        "var/.env",  # the development credentials key and secret key
        "var/demo-tokens.json",
        "var/operator-password.txt",
        "var/postgres/data/global/pg_control",
        "docker/.env",
        ".env",
        "accounts/.env",
        ".git/config",
        ".git/objects/pack/pack-1.pack",
        ".venv/bin/python",
        "risk/__pycache__/api.cpython-311.pyc",
        "nija/settings/__pycache__/base.cpython-311.pyc",
        ".pytest_cache/v/cache/lastfailed",
        ".ruff_cache/0.17.6/123",
        ".mypy_cache/3.11/nija.json",
        ".hypothesis/examples/x",
        "staticfiles/admin/css/base.css",
    ],
)
def test_secrets_local_state_history_and_caches_never_reach_the_image(path):
    assert excluded(path)


def test_every_tracked_file_reaches_the_image():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()

    assert [path for path in tracked if excluded(path)] == []
    assert "manage.py" in tracked


# ---------------------------------------------------------------------------------------------- the compose proxy
def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())


def test_the_app_behind_the_compose_proxy_trusts_exactly_that_one_proxy():
    compose = _compose()
    app_services = [name for name, service in compose["services"].items() if "build" in service]

    assert sorted(app_services) == ["beat", "events", "migrate", "web", "worker"]
    for name in app_services:
        environment = compose["services"][name]["environment"]
        assert environment["TRUSTED_PROXY_COUNT"] == "1", name
        assert environment["DJANGO_SETTINGS_MODULE"] == "nija.settings.production", name
        assert environment["DJANGO_SECURE_PROXY_SSL_HEADER"] == "true", name


def _proxied_locations() -> list[str]:
    """The body of every nginx location block that passes requests on."""
    text = (ROOT / "docker" / "nginx.conf").read_text()
    blocks = re.findall(r"location[^{]*\{(.*?)\n    \}", text, flags=re.DOTALL)
    return [block for block in blocks if "proxy_pass" in block]


def test_the_compose_proxy_overwrites_forwarded_headers_instead_of_appending():
    locations = _proxied_locations()

    assert len(locations) == 2  # web and events
    for block in locations:
        headers = dict(re.findall(r"proxy_set_header\s+(\S+)\s+([^;]+);", block))
        assert headers["X-Forwarded-For"] == "$remote_addr"
        assert headers["X-Forwarded-Proto"] == "$scheme"
    assert "$proxy_add_x_forwarded_for" not in (ROOT / "docker" / "nginx.conf").read_text()


def test_uvicorn_never_rewrites_the_client_address_from_forwarded_headers():
    """One place reads X-Forwarded-For (nija.client_ip): uvicorn's own proxy-header handling would trust it from
    any local client under `make run`."""
    assert "--no-proxy-headers" in _compose()["services"]["events"]["command"]
    events = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("events:"))
    assert "--no-proxy-headers" in events


# ---------------------------------------------------------------------------------------------- volumes
def test_every_named_volume_an_app_service_mounts_is_a_directory_the_image_gives_its_user():
    """Docker creates a new named volume from the image's directory at the mount point, owner included, and
    root-owned when the image has none; the app runs as `nija`, so web's `cp` into /srv/static (and the Prometheus
    files) would be refused unless the image made those directories that user's."""
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"^USER nija$", dockerfile, flags=re.MULTILINE)
    made = {
        path for group in re.findall(r"install -d -o nija -g nija((?: /\S+)+)", dockerfile) for path in group.split()
    }
    compose = _compose()
    mounts = {
        (name, volume.split(":")[1])
        for name, service in compose["services"].items()
        if "build" in service
        for volume in service.get("volumes", [])
        if volume.split(":")[0] in compose["volumes"]
    }

    assert ("web", "/srv/static") in mounts
    assert sorted(target for _, target in mounts if target not in made) == []
