"""The MEP's DNS rules (MEC 011 DnsRule; MEC 010-2 6.2.1.13 DNSRuleDescriptor) in PowerDNS Authoritative.

Each rule's ``domainName`` gets a zone of its own in PowerDNS (the name is the zone apex, kind
``Native``), written through the PowerDNS HTTP API only (the API purges PowerDNS's caches; SQL edits
stay hidden for up to a minute). A zone carries our SOA, whose minimum (negative TTL) is short so a
resolver does not cache an NXDOMAIN for an hour, an NS record naming the configured name server, and
the A and AAAA RRsets of the name's ACTIVE rules. A zone is created on first use and deleted when the
name has no record left. A name without a zone is NXDOMAIN on the PowerDNS of ``deploy/pdns.sh``, which
holds a root zone ``.`` for that (negative TTL 5 s); a PowerDNS without it answers REFUSED instead.
Names may nest (``app.example.net`` and ``eu.app.example.net``): PowerDNS answers from the closest zone.

PowerDNS replaces a whole (name, type) RRset at a time, so several rules for one FQDN must reach
``PowerDns.publish`` together: ``records_for`` groups a list of rules by name. Callers that publish
one name from several processes serialise those calls themselves (the last publish wins).

Settings come from the caller: the API URL, the API key and the NS name (see ``PowerDns``).
``PowerDns.from_state_dir`` reads what ``deploy/pdns.sh`` wrote, for tests and single-host set-ups.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import httpx

from meao.problems import BadRequest, ProblemError

# TTL of a rule without ``ttl`` (optional in MEC 011 and MEC 010-2): short, so that a rule that moves
# or goes INACTIVE reaches UEs behind caching resolvers within half a minute, long enough that a UE
# does not ask for every connection.
DEFAULT_TTL_S = 30
# SOA minimum and so the negative-caching TTL (RFC 2308: min(SOA TTL, SOA minimum)).
NEGATIVE_TTL_S = 5
MAX_TTL_S = 2**31 - 1  # RFC 2181 clause 8
SOA_TTL_S = 3600
NS_TTL_S = 3600
RRTYPES = ("A", "AAAA")
# MEC 011 DnsRule.ipAddressType -> the record type it makes
RRTYPE_OF_ADDRESS_TYPE = {"IP_V4": "A", "IP_V6": "AAAA"}

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")

Record = tuple[str, str, int]  # (rrtype 'A'|'AAAA', address, ttl)


class DnsError(ProblemError, status=502, title="MEP DNS error"):
    """PowerDNS refused or failed a request; ``detail`` names the server, the name and PowerDNS's words."""


class DnsUnavailable(DnsError, status=503, title="MEP DNS unavailable"):
    """PowerDNS's API cannot be reached: retry once it runs again."""


class InvalidDnsRule(BadRequest, ValueError):
    """A DNS rule or record is malformed (name, address, family, ttl); nothing was sent to PowerDNS."""


# ------------------------------------------------------------------------------------------ rules
def normalise_name(name: str) -> str:
    """``name`` as a lower-case FQDN without the trailing dot; raise InvalidDnsRule when it is not one.

    ``app.example.net`` and ``App.Example.NET.`` are the same name. At least two labels: a single
    label would become a top-level zone. Letters, digits, ``-`` and ``_`` only; no wildcard.
    """
    if not isinstance(name, str):
        raise InvalidDnsRule(f"domain name {name!r} is not a string")
    fqdn = name.strip().lower()
    fqdn = fqdn.removesuffix(".")
    labels = fqdn.split(".")
    if len(fqdn) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise InvalidDnsRule(
            f"domain name {name!r} is not a fully qualified domain name (two or more labels of letters, "
            "digits, '-' or '_', each 1-63 characters, 253 in all; a trailing dot is optional)")
    return fqdn


def _check_record(name: str, record: Any) -> Record:
    try:
        rrtype, address, ttl = record
    except (TypeError, ValueError):
        raise InvalidDnsRule(f"record {record!r} for {name} is not a (rrtype, address, ttl) triple") from None
    rrtype = str(rrtype).upper()
    if rrtype not in RRTYPES:
        raise InvalidDnsRule(f"record type {rrtype!r} for {name} is not one of {', '.join(RRTYPES)}")
    try:
        ip = ipaddress.ip_address(address)
    except (TypeError, ValueError):
        raise InvalidDnsRule(f"address {address!r} for {name} is not an IP address") from None
    wanted = ipaddress.IPv4Address if rrtype == "A" else ipaddress.IPv6Address
    if not isinstance(ip, wanted):
        raise InvalidDnsRule(f"address {address} for {name} is IPv{ip.version}, but the record type is "
                             f"{rrtype} (IP_V4 makes A records, IP_V6 AAAA records)")
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        raise InvalidDnsRule(f"address {address} for {name} has a zone index (%{ip.scope_id}), "
                             "which DNS cannot carry")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL_S:
        raise InvalidDnsRule(f"ttl {ttl!r} for {name} is not an integer from 0 to {MAX_TTL_S}")
    return rrtype, ip.compressed, ttl


def records_for(rules: Iterable[Mapping[str, Any]]) -> dict[str, list[Record]]:
    """Group MEC DnsRule dicts (camelCase, as on Mp1 and in the AppD) into records per name.

    Keys are normalised names (lower case, no trailing dot). Every name a rule mentions is a key; only
    rules in state ACTIVE contribute records, so a name whose rules are all INACTIVE maps to ``[]``
    and publishing it deletes it. A rule without ``ttl`` gets ``DEFAULT_TTL_S``. Raises InvalidDnsRule
    naming the rule when one is malformed.
    """
    grouped: dict[str, list[Record]] = {}
    for rule in rules:
        rule_id = rule.get("dnsRuleId", "?")
        state = rule.get("state")
        if state not in ("ACTIVE", "INACTIVE"):
            raise InvalidDnsRule(f"DNS rule {rule_id}: state {state!r} is not ACTIVE or INACTIVE")
        address_type = rule.get("ipAddressType")
        if address_type not in RRTYPE_OF_ADDRESS_TYPE:
            raise InvalidDnsRule(f"DNS rule {rule_id}: ipAddressType {address_type!r} is not IP_V4 or IP_V6")
        try:
            name = normalise_name(rule.get("domainName"))  # type: ignore[arg-type]
            record = _check_record(name, (RRTYPE_OF_ADDRESS_TYPE[address_type], rule.get("ipAddress"),
                                          rule.get("ttl", DEFAULT_TTL_S)))
        except InvalidDnsRule as exc:
            raise InvalidDnsRule(f"DNS rule {rule_id}: {exc.detail}") from None
        records = grouped.setdefault(name, [])
        if state == "ACTIVE":
            records.append(record)
    return grouped


def _rrsets(fqdn: str, records: list[Record]) -> list[dict[str, Any]]:
    """The A and AAAA RRsets of ``records``: a REPLACE per type present (smallest ttl), else a DELETE."""
    rrsets = []
    for rrtype in RRTYPES:
        of_type = [r for r in records if r[0] == rrtype]
        if not of_type:
            rrsets.append({"name": fqdn + ".", "type": rrtype, "changetype": "DELETE"})
            continue
        contents = sorted({address for _, address, _ in of_type})
        rrsets.append({"name": fqdn + ".", "type": rrtype, "changetype": "REPLACE",
                       "ttl": min(ttl for _, _, ttl in of_type),
                       "records": [{"content": c, "disabled": False} for c in contents]})
    return rrsets


# --------------------------------------------------------------------------------------- PowerDNS
class PowerDns:
    """A PowerDNS Authoritative server's HTTP API (``/api/v1``), holding one zone per published name.

    ``api_url`` is the server's webserver base (``http://127.0.0.1:8089``), ``api_key`` its
    ``api-key``. ``ns_name`` is the name server the zones' NS and SOA records name (where resolvers
    would find them; the MEP's resolvers forward to us directly, so it need not resolve).
    """

    def __init__(self, api_url: str, api_key: str, timeout_s: float = 5, server_id: str = "localhost", *,
                 ns_name: str = "ns.mep.invalid", negative_ttl_s: int = NEGATIVE_TTL_S) -> None:
        self.api_url = api_url.rstrip("/")
        self.server_id = server_id
        self._server = "/" + quote(server_id, safe="")
        self.ns_name = normalise_name(ns_name) + "."
        self.negative_ttl_s = negative_ttl_s
        # One client for every call. It would keep connections alive, but PowerDNS 4.7's webserver answers
        # `Connection: close`, so each call opens a loopback connection (a fraction of a millisecond).
        # The transport retries failed connects once; every call here is idempotent.
        self._http = httpx.Client(
            base_url=f"{self.api_url}/api/v1/servers",
            headers={"X-API-Key": api_key, "Accept": "application/json"}, timeout=timeout_s,
            transport=httpx.HTTPTransport(retries=1))

    @classmethod
    def from_state_dir(cls, path: str | Path, **kwargs: Any) -> Self:
        """Bind to the server ``deploy/pdns.sh`` runs from state dir ``path`` (its ``mep-dns.env``)."""
        settings = read_env_file(Path(path) / "mep-dns.env")
        try:
            url, key_file = settings["MEAO_MEP_DNS_API_URL"], settings["MEAO_MEP_DNS_API_KEY_FILE"]
            key = Path(key_file).read_text().strip()
        except (KeyError, OSError) as exc:
            raise DnsError(f"cannot read the PowerDNS settings in {path}: {exc}; "
                           "run `bash deploy/pdns.sh` to (re)create them") from None
        return cls(url, key, **kwargs)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------- calls
    def ping(self) -> str:
        """Check the API answers and accepts our key; return the server's version."""
        return self._call("GET", self._server, what="check the API").json().get("version", "?")

    def publish(self, name: str, records: list[Record]) -> None:
        """Make ``name`` answer exactly ``records`` (rrtype 'A'|'AAAA', address, ttl).

        Replaces the name's A and AAAA RRsets (a type with no record is deleted; a type's TTL is the
        smallest given for it); with no records at all the name's zone is deleted, so the name is
        NXDOMAIN. Everything is checked before the first call (InvalidDnsRule); each call is atomic
        in PowerDNS, and publishing again after a failure is safe.
        """
        fqdn = normalise_name(name)
        checked = [_check_record(fqdn, r) for r in records]
        zone = self._zone_path(fqdn)
        if not checked:
            self._call("DELETE", zone, what=f"delete zone {fqdn}", ok_missing=True)
            return
        rrsets = _rrsets(fqdn, checked)
        if self._call("PATCH", zone, json={"rrsets": rrsets}, what=f"update {fqdn}", ok_missing=True):
            return
        created = self._call("POST", self._server + "/zones", what=f"create zone {fqdn}", ok_conflict=True, json={
            "name": fqdn + ".", "kind": "Native",
            "rrsets": self._apex_rrsets(fqdn) + [r for r in rrsets if r["changetype"] == "REPLACE"]})
        if created is None:  # created by someone else meanwhile: update it
            self._call("PATCH", zone, json={"rrsets": rrsets}, what=f"update {fqdn}")
        # A new zone does not purge the NXDOMAIN the root zone answered for the name before (it stays
        # cached for the SOA minimum): flush the name's cache entries so it answers at once.
        self._call("PUT", f"{self._server}/cache/flush?domain={quote(fqdn + '.', safe='')}",
                   what=f"flush the cache of {fqdn}")

    def published(self, name: str) -> list[Record] | None:
        """The A and AAAA records ``name`` answers, sorted; None when it has no zone."""
        fqdn = normalise_name(name)
        response = self._call("GET", self._zone_path(fqdn), what=f"read zone {fqdn}", ok_missing=True)
        if response is None:
            return None
        return sorted((rrset["type"], record["content"], rrset["ttl"])
                      for rrset in response.json().get("rrsets", [])
                      if rrset["type"] in RRTYPES and rrset["name"] == fqdn + "."
                      for record in rrset["records"] if not record.get("disabled"))

    # ----------------------------------------------------------------------------------- helpers
    def _zone_path(self, fqdn: str) -> str:
        return f"{self._server}/zones/{quote(fqdn + '.', safe='')}"

    def _apex_rrsets(self, fqdn: str) -> list[dict[str, Any]]:
        # serial 0: the zone's soa_edit_api (DEFAULT) sets and bumps it on every change
        soa = f"{self.ns_name} hostmaster.{fqdn}. 0 10800 3600 604800 {self.negative_ttl_s}"
        return [{"name": fqdn + ".", "type": "SOA", "ttl": SOA_TTL_S,
                 "records": [{"content": soa, "disabled": False}]},
                {"name": fqdn + ".", "type": "NS", "ttl": NS_TTL_S,
                 "records": [{"content": self.ns_name, "disabled": False}]}]

    def _call(self, method: str, path: str, *, what: str, ok_missing: bool = False,
              ok_conflict: bool = False, json: Any = None) -> httpx.Response | None:
        """One API call; None for a 404 (``ok_missing``) or 409 (``ok_conflict``), DnsError otherwise."""
        where = f"PowerDNS API {self.api_url} (server {self.server_id})"
        try:
            try:
                response = self._http.request(method, path, json=json)
            except httpx.RemoteProtocolError:  # a kept-alive connection the server had closed: once more
                response = self._http.request(method, path, json=json)
        except httpx.TransportError as exc:
            raise DnsUnavailable(f"{where}: cannot {what}: {type(exc).__name__}: {exc or 'no answer'}. "
                                 "Is PowerDNS running (bash deploy/pdns.sh) and the API URL right?") from None
        if response.is_success:
            return response
        if (response.status_code == 404 and ok_missing) or (response.status_code == 409 and ok_conflict):
            return None
        said = _error_text(response)
        if response.status_code == 401:
            raise DnsError(f"{where}: cannot {what}: the API key was refused (401 {said}). Use the "
                           "server's api-key (deploy/pdns.sh writes it to the state dir's api-key file)")
        if response.status_code == 404 and path in (self._server, self._server + "/zones"):
            raise DnsError(f"{where}: cannot {what}: no server {self.server_id!r} (404 {said})")
        hint = (" Its database is not writable by the user PowerDNS runs as: chown the sqlite file and its "
                "directory." if "readonly database" in said else "")
        raise DnsError(f"{where}: cannot {what}: HTTP {response.status_code}: {said}.{hint}",
                       status=503 if response.status_code >= 500 else 502)


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("error") or body) if isinstance(body, dict) else str(body)
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a shell-style env file (comments and blank lines skipped, quotes honoured)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise DnsError(f"cannot read {path}: {exc.strerror}; run `bash deploy/pdns.sh` to create it") from None
    settings: dict[str, str] = {}
    for line in text.splitlines():
        for word in shlex.split(line, comments=True):
            key, sep, value = word.partition("=")
            if sep:
                settings[key] = value
    return settings
