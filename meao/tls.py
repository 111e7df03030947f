"""HTTPS for ``meao serve``: certificate, key and, for mutual TLS, the CA that client certificates must chain to."""

from __future__ import annotations

import os
import ssl
from typing import Any

from meao.config import TlsSettings


def uvicorn_ssl_options(tls: TlsSettings) -> dict[str, Any]:
    """The ``ssl_*`` keyword arguments of ``uvicorn.run``; {} when TLS is off.

    A key password comes from ``MEAO_TLS_KEYFILE_PASSWORD`` (never from the command line). SystemExit
    names a missing or unreadable file, so a typo fails at start and not at the first handshake.
    """
    if not (tls.certfile or tls.keyfile or tls.client_ca):
        return {}
    if not tls.certfile or not tls.keyfile:
        raise SystemExit("meao: TLS needs both a certificate and its key (--certfile/--keyfile or "
                         "MEAO_TLS_CERTFILE/MEAO_TLS_KEYFILE)")
    for path in (tls.certfile, tls.keyfile, tls.client_ca):
        if path is not None and not os.access(path, os.R_OK):
            raise SystemExit(f"meao: cannot read the TLS file {path}")
    options: dict[str, Any] = {"ssl_certfile": str(tls.certfile), "ssl_keyfile": str(tls.keyfile)}
    if tls.keyfile_password:
        options["ssl_keyfile_password"] = tls.keyfile_password
    if tls.client_ca:
        options.update(ssl_ca_certs=str(tls.client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options
