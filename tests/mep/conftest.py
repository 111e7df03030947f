"""Fixtures for the MEP's DNS driver against a real PowerDNS (deploy/pdns.sh).

The server is started once per session when its API does not answer, and reused when it does. Under
CI (``CI=true``) a PowerDNS that cannot start fails the run; elsewhere the DNS tests skip with why.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mecpm.mep.dns import DnsError, PowerDns, read_env_file
from tests.conftest import IN_CI, ROOT

PDNS_SH = ROOT / "deploy" / "pdns.sh"


def pdns_env_file() -> Path:
    """The settings file deploy/pdns.sh writes (it alone knows the default state dir)."""
    out = subprocess.run(["bash", str(PDNS_SH), "env"], capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def _connect(env_file: Path) -> PowerDns:
    dns = PowerDns.from_state_dir(env_file.parent)
    try:
        dns.ping()
    except DnsError:
        dns.close()
        raise
    return dns


@pytest.fixture(scope="session")
def powerdns() -> Iterator[PowerDns]:
    """A PowerDns bound to the server deploy/pdns.sh runs, started for the session when not answering."""
    env_file = pdns_env_file()
    try:
        dns = _connect(env_file)
    except DnsError:
        run = subprocess.run(["bash", str(PDNS_SH)], check=False, capture_output=True, text=True, timeout=900)
        try:
            if run.returncode != 0:
                raise DnsError(f"bash deploy/pdns.sh exited {run.returncode}: {run.stderr.strip()[-1500:]}")
            dns = _connect(env_file)
        except DnsError as exc:
            msg = f"PowerDNS is not available: {exc.detail}"
            if IN_CI:
                pytest.fail(msg)
            pytest.skip(msg)
    yield dns
    dns.close()


@pytest.fixture(scope="session")
def dns_address(powerdns: PowerDns) -> tuple[str, int]:
    """(host, port) where the PowerDNS of ``powerdns`` answers DNS queries."""
    host, _, port = read_env_file(pdns_env_file())["MEAO_MEP_DNS_ADDRESS"].rpartition(":")
    return host, int(port)


@pytest.fixture(scope="session")
def pdns_api_key(powerdns: PowerDns) -> str:
    """The API key of the PowerDNS of ``powerdns``."""
    return Path(read_env_file(pdns_env_file())["MEAO_MEP_DNS_API_KEY_FILE"]).read_text().strip()
