"""Tenant isolation (``MEAO_TENANT_ISOLATION``) as query predicates, named once for every service.

A caller's tenant is None when isolation is off or when it is an operator without a tenant
(``meao.api.security.request_tenant``; any other caller without one is refused there): it sees
everything. Otherwise it sees, and may touch, only rows of its tenant; another tenant's ids are 404.
Rows created by a caller without a tenant have a NULL tenant.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_, true
from sqlalchemy.orm import InstrumentedAttribute


def visible(column: InstrumentedAttribute[str | None], tenant: str | None) -> ColumnElement[bool]:
    """Rows a caller of ``tenant`` may see: all of them for None, else its tenant's."""
    return true() if tenant is None else column == tenant


def owns(row_tenant: str | None, tenant: str | None) -> bool:
    """True when a caller of ``tenant`` may see a row of ``row_tenant``."""
    return tenant is None or row_tenant == tenant


def same_tenant(column: InstrumentedAttribute[str | None], tenant: str | None) -> ColumnElement[bool]:
    """Rows of exactly ``tenant`` (NULL matching NULL): the scope in which an appDId is unique."""
    return func.coalesce(column, "") == (tenant or "")


def notified(column: InstrumentedAttribute[str | None], resource_tenant: str | None) -> ColumnElement[bool]:
    """Subscriptions told about a resource of ``resource_tenant``: that tenant's and the operator's."""
    if resource_tenant is None:
        return column.is_(None)
    return or_(column.is_(None), column == resource_tenant)
