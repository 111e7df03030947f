"""Handlers of Mm1 application package management (MEC 010-2 clause 7.3): parse, call, render."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from flask import Response, request

from meao.api import negotiation, query
from meao.api.responses import Reply, accepted, base_url, created, listing, no_content, ok
from meao.api.security import request_tenant
from meao.api.subscriptions import SubscriptionHandlers
from meao.catalogue import packages
from meao.problems import Forbidden, NotAcceptable, NotFound, RangeNotSatisfiable
from meao.wire.links import APP_PKGM
from meao.wire.packages import app_pkg_info, app_pkg_info_modifications

SPEC = "mm1-app-pkgm.yaml"
DEFAULT_EXCLUDED = ("checksum", "softwareImages", "additionalArtifacts")
TEXT, ZIP = "text/plain; charset=utf-8", "application/zip"  # what GET …/appd and …/package_content offer


def _list(onboarded_only: bool) -> Reply:
    base, tenant = base_url(), request_tenant()
    return listing(lambda win: packages.list_packages(onboarded_only, tenant, win), lambda p: app_pkg_info(p, base),
                   SPEC, "AppPkgInfo", DEFAULT_EXCLUDED)


def list_packages(**_: Any) -> Reply:
    """GET /app_packages."""
    return _list(False)


def list_onboarded_packages(**_: Any) -> Reply:
    """GET /onboarded_app_packages."""
    return _list(True)


def create_package(body: dict[str, Any]) -> Reply:
    """POST /app_packages → 201 AppPkgInfo + Location; onboarding continues as a job."""
    return created(app_pkg_info(packages.create_package(body, request_tenant()), base_url()))


def create_onboarded_package(body: dict[str, Any]) -> Reply:
    """POST /onboarded_app_packages: the same as POST /app_packages (clause 7.3.1.3.1 names both URIs).

    The new package has no appDId until it is onboarded, so its ``Location`` is /app_packages/{appPkgId}.
    """
    return create_package(body)


def get_package(appPkgId: str) -> Reply:
    """GET /app_packages/{appPkgId}."""
    return ok(app_pkg_info(packages.get_package(pkg_id=appPkgId, tenant=request_tenant()), base_url()))


def get_onboarded_package(appDId: str) -> Reply:
    """GET /onboarded_app_packages/{appDId}."""
    return ok(app_pkg_info(packages.get_package(appd_id=appDId, tenant=request_tenant()), base_url()))


def _patch(pkg_id: str | None, appd_id: str | None, body: dict[str, Any]) -> Reply:
    pkg = packages.change_operational_state(pkg_id, appd_id, body["operationalState"], request_tenant())
    return ok(app_pkg_info_modifications(pkg.operational_state))


def patch_package(appPkgId: str, body: dict[str, Any]) -> Reply:
    """PATCH /app_packages/{appPkgId} (AppPkgInfoModifications)."""
    return _patch(appPkgId, None, body)


def patch_onboarded_package(appDId: str, body: dict[str, Any]) -> Reply:
    """PATCH /onboarded_app_packages/{appDId}."""
    return _patch(None, appDId, body)


def delete_package(appPkgId: str) -> Reply:
    """DELETE /app_packages/{appPkgId} → 204."""
    packages.delete_package(appPkgId, None, request_tenant())
    return no_content()


def delete_onboarded_package(appDId: str) -> Reply:
    """DELETE /onboarded_app_packages/{appDId} → 204."""
    packages.delete_package(None, appDId, request_tenant())
    return no_content()


# what exclude_default leaves out of the AppD (table 7.3.6.3.2-1)
APPD_DEFAULT_EXCLUDED = ("virtualComputeDescriptor", "swImageDescriptor", "virtualStorageDescriptor", "appExtCpd",
                         "terminateAppInstanceOpConfig", "changeAppInstanceStateOpConfig")
_SELECTORS = ("all_fields", "fields", "exclude_fields", "exclude_default")


def _appd_entry(appd: packages.AppDFiles) -> bytes:
    """The AppD's entry file as the request's MEC 009 query asks (table 7.3.6.3.2-1): 404 when ``filter``
    does not hold for it; reshaped by the attribute selectors, in the file's own format (JSON or YAML).
    Without a selector the file is returned as it is, a copy (table 7.3.6.3.2-2)."""
    raw = (appd.root / appd.names[0]).read_bytes()
    params = {k: request.args.get(k) for k in ("filter", *_SELECTORS)}
    if all(v is None for v in params.values()):
        return raw
    terms = query.parse_filter(params["filter"], query.ANY_TREE) if params["filter"] is not None else []
    is_json = raw.lstrip().startswith(b"{")
    doc = json.loads(raw) if is_json else yaml.safe_load(raw)  # onboarding checked it (no YAML bomb)
    if not isinstance(doc, dict):
        doc = {}
    if terms and not query.matches(doc, terms):
        raise NotFound(f"the AppD of package {appd.pkg_id} does not match the filter {params['filter']}")
    if all(params[k] is None for k in _SELECTORS):
        return raw
    (doc,) = query.select_fields([doc], params, query.ANY_TREE, APPD_DEFAULT_EXCLUDED)
    if is_json:
        return json.dumps(doc, indent=2).encode()
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()


def _appd(pkg_id: str | None, appd_id: str | None) -> Response:
    appd = packages.onboarded_appd(pkg_id, appd_id, request_tenant())
    root, files = appd.root, appd.names
    # table 7.3.6.3.2-2: text/plain only for an AppD in one file, application/zip always
    kind = negotiation.request_prefers([TEXT, ZIP] if len(files) == 1 else [ZIP])
    if kind is None:
        if len(files) > 1 and negotiation.request_accepts(TEXT):
            raise NotAcceptable(f"the AppD of package {appd.pkg_id} spans {len(files)} files ({', '.join(files)}); "
                                "ask for application/zip to get them all")
        raise NotAcceptable("the AppD is available as text/plain (single file) or application/zip; "
                            "send an Accept header with one of them")
    entry = _appd_entry(appd)
    if kind == TEXT:
        return Response(entry, 200, content_type=TEXT)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(files[0], entry)
        for name in files[1:]:
            zf.write(root / name, name)
    return Response(buf.getvalue(), 200, content_type=ZIP)


def get_appd(appPkgId: str, **_: Any) -> Response:
    """GET /app_packages/{appPkgId}/appd."""
    return _appd(appPkgId, None)


def get_onboarded_appd(appDId: str, **_: Any) -> Response:
    """GET /onboarded_app_packages/{appDId}/appd."""
    return _appd(None, appDId)


def put_appd(appPkgId: str) -> Reply:
    """PUT /app_packages/{appPkgId}/appd: not supported, and clause 7.3.6.3.3 says so with a 403, not a 405.

    Whether the package exists or not. No ``**kwargs``: Connexion then does not read the request body.
    """
    raise Forbidden("PUT is not supported on the application descriptor resource (ETSI GS MEC 010-2 clause "
                    "7.3.6.3.3): an AppD changes only by onboarding a new application package")


def put_onboarded_appd(appDId: str) -> Reply:
    """PUT /onboarded_app_packages/{appDId}/appd: 403, as PUT /app_packages/{appPkgId}/appd."""
    return put_appd(appDId)


def _file_range(path: Path, start: int, end: int) -> Iterator[bytes]:
    with path.open("rb") as fh:
        fh.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = fh.read(min(left, 1024 * 1024))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def _content(pkg_id: str | None, appd_id: str | None) -> Response:
    path = packages.onboarded_archive(pkg_id, appd_id, request_tenant())
    if not negotiation.request_accepts(ZIP):  # table 7.3.7.3.2-2: the content is a ZIP file
        raise NotAcceptable("the package content is an application/zip file; send an Accept header that "
                            "allows it (or none)")
    size = path.stat().st_size
    headers = {"Accept-Ranges": "bytes", "Content-Type": ZIP}
    spec = request.headers.get("Range")
    if not spec:
        return Response(_file_range(path, 0, size - 1), 200, headers={**headers, "Content-Length": str(size)})
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", spec)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        raise RangeNotSatisfiable(f"Range {spec!r} is not a single 'bytes=start-end' range", size=size)
    if m.group(1) == "":
        start, end = max(size - int(m.group(2)), 0), size - 1
    else:
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(f"Range {spec!r} lies outside the {size}-byte package", size=size)
    headers.update({"Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(end - start + 1)})
    return Response(_file_range(path, start, end), 206, headers=headers)


def get_package_content(appPkgId: str, **_: Any) -> Response:
    """GET /app_packages/{appPkgId}/package_content (Range → 206/416)."""
    return _content(appPkgId, None)


def get_onboarded_package_content(appDId: str, **_: Any) -> Response:
    """GET /onboarded_app_packages/{appDId}/package_content."""
    return _content(None, appDId)


# No ``**kwargs`` on the two PUT handlers: Connexion would read the whole body into memory to offer it
# as ``body``. Without it the body is streamed to disk as it arrives, and a cut upload is seen as such.
def put_package_content(appPkgId: str) -> Reply:
    """PUT /app_packages/{appPkgId}/package_content → 202; processing continues as a job."""
    packages.upload_content(appPkgId, None, request.stream, request_tenant(), request.content_length)
    return accepted()


def put_onboarded_package_content(appDId: str) -> Reply:
    """PUT /onboarded_app_packages/{appDId}/package_content → 202."""
    packages.upload_content(None, appDId, request.stream, request_tenant(), request.content_length)
    return accepted()


# subscriptions (clauses 7.3.3-7.3.4): the handlers both Mm1 APIs share
list_subscriptions, create_subscription, get_subscription, delete_subscription = SubscriptionHandlers(
    APP_PKGM).operations()
