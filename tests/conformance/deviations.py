"""THE list of the deviations from MEC 010-2 v3.1.1 meao keeps on purpose, each with its reason.

tests/conformance shows each as an expected deviation (a strict xfail: once meao conforms, the entry
must go), and the README's "Conformance" section lists them.
"""

from __future__ import annotations

# (method, URI as the standard writes it, status code the standard lists) → why meao does not send it
STATUS_CODES: dict[tuple[str, str, int], str] = {
    ("POST", "/granting/v1/grants", 202): "grants are decided synchronously, within the request, from the "
    "database and cached capacity: asynchronous granting (optional in clause 7.5.1.3.1) is not offered",
    ("GET", "/granting/v1/grants/{grantId}", 202): "no grant is ever pending (granting is synchronous), so "
    "reading one never answers 202",
}

# (data type, attribute) → why an attribute of cardinality 1 (or 1..N) is optional in meao's schema
_UNTIL_ONBOARDED = ("known only from the package's AppD: absent while the package is CREATED, UPLOADING or "
                    "PROCESSING, or when onboarding failed (the standard's cardinality assumes an onboarded package)")
REQUIRED_ATTRIBUTES: dict[tuple[str, str], str] = {
    **{("AppPkgInfo", name): _UNTIL_ONBOARDED
       for name in ("appDId", "appName", "appSoftwareVersion", "appDVersion", "softwareImages", "mecInfo")},
    ("AppPkgNotification", "appDId"): "a package deleted before it was onboarded has no appDId; the "
    "notification leaves it out rather than send an empty string",
    ("InstantiateAppRequest", "selectedMECHostInfo"): "table 6.2.2.7.2-1 note 2: it applies to Mm3 only; on "
    "Mm1 the MEAO selects the host, and an OSS may send it as a preference",
    ("CancelMode", "CancelMode"): "the attribute may also be spelt cancelMode (a documented alias for "
    "clients of earlier meao versions); one of the two is required",
    ("ResourceDefinition", "resource"): "table 6.2.4.3.2-1 gives cardinality 1 but also says it shall be absent "
    "unless the resource is planned to be deleted or modified",
}
