"""Package authenticity: the two SOL004 security options (MEC 037 clauses 6.2.2, 6.2.3 and 6.3).

- Option 1 (signed manifest): the manifest ends with a PEM ``-----BEGIN CMS-----`` block, a detached
  CMS signature over the rest of the manifest. The signing certificate is inside the CMS structure or
  in the file named by ``ETSI-Entry-Certificate`` in TOSCA.meta (MEC 037 clause 6.2.3). Once the
  signature holds, the digests in the manifest vouch for every file (``csar.verify_manifest_digests``),
  so every file must be listed there (``csar.unlisted_members``, refused by :func:`policy_check`).
- Option 2 (signed archive): the upload is a zip holding ``<base>.csar`` (or ``.zip``), the detached CMS
  signature ``<base>.cms`` over the CSAR bytes and, unless the certificate is in the signature,
  ``<base>.cert`` (MEC 037 clause 6.2.3). It is verified before the CSAR is opened.

In both options the signer's certificate must chain to the operator's trusted CA bundle and be valid
now; every failure is a :class:`SignatureError` (422) whose detail names the file and says what to do.

Why the ``openssl cms -verify`` command and not a Python library: ``cryptography`` (50.x here) can build
CMS signatures (``PKCS7SignatureBuilder``) and read the certificates in one, but has no API that
verifies a CMS/PKCS#7 signature. Doing it ourselves (parse the SignerInfo with asn1crypto, compare the
messageDigest attribute, check the signature, build and check the chain) would be hand-written crypto.
OpenSSL does all of it (signed attributes, signature, chain building, validity at the current time),
is maintained, and ships on every Debian host, so no new Python dependency is needed. It is called
with a list of arguments (no shell) and a timeout; its exit status and stderr become the reason.
Trust is limited to the operator's bundle: ``-CAfile`` plus ``-no-CApath -no-CAstore`` (without those
openssl would also trust the system CA directory). ``-purpose any`` because provider certificates are
rarely issued for S/MIME; ``-binary`` so no line-ending canonicalisation touches the signed bytes.
``cryptography`` is used only to read certificates for the messages and the reported subject.

Signed content of a signed manifest (:func:`split_signed_manifest`), byte for byte: find the one
``-----BEGIN CMS-----`` ... ``-----END CMS-----`` block and drop it together with the ASCII whitespace
(space, tab, CR, LF, VT, FF) that follows ``-----END CMS-----``; the signed content is everything before
``-----BEGIN CMS-----`` followed by everything after that whitespace, unchanged. So the line break that
ends the last manifest line before the block belongs to the signed content, and the line break after
``-----END CMS-----`` does not. This is the same cut ``csar.parse_manifest`` makes (its pattern, applied
to bytes), so what is verified is what is parsed. A signer therefore signs the manifest exactly as it
will stand before the block, ending with a line break, then appends the block (``sign.py`` does).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import shutil
import stat
import subprocess
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from meao.catalogue.csar import TOSCA_META
from meao.catalogue.integrity import CHUNK
from meao.problems import OnboardingError, ProblemError

OPTION_1 = "OPTION_1"
OPTION_2 = "OPTION_2"
MAX_SIGNATURE_BYTES = 1024 * 1024  # a .cms or .cert file; real ones are a few KiB
OPENSSL_TIMEOUT = 60  # seconds, plus time proportional to the signed content (see _timeout_for)

_CMS_BLOCK = re.compile(rb"-----BEGIN CMS-----.*?-----END CMS-----\s*", re.DOTALL)
_PEM_BODY = re.compile(rb"-----BEGIN (CMS|PKCS7)-----(.*?)-----END \1-----", re.DOTALL)
_PACKAGE_SUFFIXES = (".csar", ".zip")

# openssl "Verify error:" texts (X509_verify_cert_error_string) that mean "not trusted".
_UNTRUSTED = ("unable to get local issuer certificate", "unable to get issuer certificate",
              "self-signed certificate", "self signed certificate", "unable to verify the first certificate",
              "certificate signature failure", "invalid CA certificate", "path length constraint exceeded")


@dataclass(frozen=True)
class SignatureResult:
    """Outcome of the authenticity check; ``option`` is SOL005's ``OPTION_1`` / ``OPTION_2``.

    ``certificate_pem`` is the signer's certificate, reported as AppPkgInfo ``signingCertificate``
    (MEC 010-2 clause 6.2.3.3).
    """

    signed: bool
    option: str | None
    signer_subject: str | None
    certificate_pem: str | None

    @classmethod
    def unsigned(cls) -> SignatureResult:
        """The result for a package that carries no signature."""
        return cls(signed=False, option=None, signer_subject=None, certificate_pem=None)


class SignatureError(OnboardingError, title="Package signature rejected"):
    """The package's signature is missing, malformed, untrusted, expired or does not match (422)."""


def split_signed_manifest(raw: bytes, *, manifest_name: str = "manifest") -> tuple[bytes, str | None]:
    """Split a manifest into (signed content, PEM CMS block or None); see the module docstring's rule.

    Raises SignatureError for an unterminated block or more than one block (SOL004 has one signature).
    """
    blocks = list(_CMS_BLOCK.finditer(raw))
    if not blocks:
        if b"-----BEGIN CMS-----" in raw:
            raise SignatureError(f"manifest {manifest_name} has '-----BEGIN CMS-----' without "
                                 "'-----END CMS-----'; append the complete PEM CMS signature block")
        return raw, None
    if len(blocks) > 1:
        raise SignatureError(f"manifest {manifest_name} has {len(blocks)} CMS signature blocks; SOL004 "
                             "option 1 appends exactly one, at the end of the manifest")
    block = blocks[0]
    try:
        pem = block.group(0).strip().decode("ascii")
    except UnicodeDecodeError as exc:
        raise SignatureError(f"manifest {manifest_name}: the CMS signature block has non-ASCII bytes; "
                             "it must be PEM (base64) text") from exc
    return raw[: block.start()] + raw[block.end():], pem


def verify_manifest_signature(manifest_text_without_cms: bytes, signature_pem: str, *, trusted_ca: Path,
                              certificate_pem: str | None, manifest_name: str) -> SignatureResult:
    """Verify a SOL004 option 1 manifest signature (MEC 037 clause 6.2.2, SOL004 clause 5).

    ``manifest_text_without_cms`` is the signed content from :func:`split_signed_manifest`;
    ``certificate_pem`` the content of the ``ETSI-Entry-Certificate`` file, if the package has one
    (MEC 037 clause 6.2.3). The signer's certificate must chain to ``trusted_ca`` and be valid now.
    """
    where = f"manifest {manifest_name}"
    der = _cms_der(signature_pem.encode("ascii", errors="replace"), where)
    with tempfile.TemporaryDirectory(prefix="meao-sig-") as tmp:
        content = Path(tmp) / "manifest"
        content.write_bytes(manifest_text_without_cms)
        signer_pem = _openssl_verify(content, der, trusted_ca=trusted_ca, certificate_pem=certificate_pem,
                                     where=where, content_label=f"manifest {manifest_name}",
                                     cert_hint="the file named by ETSI-Entry-Certificate in TOSCA.meta")
    return _result(OPTION_1, signer_pem)


def unwrap_option2(zip_path: Path, dest_dir: Path, *, trusted_ca: Path,
                   max_bytes: int) -> tuple[Path, SignatureResult]:
    """Verify and unwrap a SOL004 option 2 envelope; anything else is returned untouched, unsigned.

    An upload is an envelope when it has no ``TOSCA-Metadata/TOSCA.meta`` and no root YAML file (so it
    cannot be a CSAR, SOL004 clause 4.1) and holds, at its root, ``<base>.csar`` or ``<base>.zip`` next
    to ``<base>.cms``. Only the zip's central directory is read to decide. An envelope must hold exactly
    those files plus an optional ``<base>.cert`` (MEC 037 clause 6.2.3), all plain file names. The
    inner CSAR is streamed to ``dest_dir/<base>.csar|zip`` (at most ``max_bytes``), the detached CMS
    signature is verified over its bytes, and its path is returned; on any failure nothing is left
    in ``dest_dir``.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError, ValueError):
        return zip_path, SignatureResult.unsigned()  # not a zip: extract_archive gives the reason
    with archive:
        infos = archive.infolist()
        if not _looks_like_envelope([info.filename for info in infos]):
            return zip_path, SignatureResult.unsigned()
        package, cms, cert = _envelope_members(infos, zip_path.name)
        where = f"option 2 package {zip_path.name}: signature {cms.filename} over {package.filename}"
        der = _cms_der(_read_small(archive, cms, zip_path.name), where)
        certificate_pem = None
        if cert is not None:
            certificate_pem = _read_small(archive, cert, zip_path.name).decode("ascii", errors="replace")
        dest_dir.mkdir(parents=True, exist_ok=True)
        target = dest_dir / package.filename
        _extract_limited(archive, package, target, max_bytes, zip_path.name)
        try:
            signer_pem = _openssl_verify(target, der, trusted_ca=trusted_ca, certificate_pem=certificate_pem,
                                         where=where, content_label=f"CSAR {package.filename}",
                                         cert_hint=f"{Path(package.filename).stem}.cert in the zip",
                                         timeout=_timeout_for(target.stat().st_size))
        except BaseException:
            target.unlink(missing_ok=True)
            raise
    return target, _result(OPTION_2, signer_pem)


def policy_check(result: SignatureResult, *, require_signed: bool, unlisted: Sequence[str] = (),
                 manifest_name: str = "manifest") -> None:
    """Apply the operator's policy and the signed-package rule; SignatureError (422) with the reason.

    - An unsigned package is refused when signatures are required (``MEAO_REQUIRE_SIGNED_PACKAGES``).
    - A signed package, or any package when signatures are required, must have every member listed
      with a digest in the manifest: ``unlisted`` (from ``csar.unlisted_members``) must be empty. The
      signature vouches for the manifest and the manifest's digests for the files; a file it does not
      list (TOSCA.meta, an AppD) could be replaced, the package re-pointed at another AppD, and still
      pass as signed. This holds for option 2 too: MEC 037 clause 6.2.2 has the manifest list all files.

    An unsigned package without the requirement is not held to the rule (today's behaviour: its
    manifest's digests are checked, but nothing claims the package is authentic).
    """
    missing = _unlisted_reason(unlisted, manifest_name)
    if require_signed and not result.signed:
        also = f"; also, its {missing}, and a signed package must list every file" if unlisted else ""
        raise SignatureError(
            "package is not signed, and this MEAO accepts only signed packages "
            "(MEAO_REQUIRE_SIGNED_PACKAGES): append a CMS signature to the manifest (SOL004 option 1) or "
            "upload a zip holding the CSAR, its .cms signature and .cert certificate (SOL004 option 2, "
            f"MEC 037 clause 6.2.3){also}")
    if unlisted and result.signed:
        raise SignatureError(
            f"the package is signed, but its {missing}: the signature does not cover them, so they could "
            "have been replaced. List every file of the package except the manifest and the "
            "ETSI-Entry-Certificate file with a Source/Algorithm/Hash block (MEC 037 clause 6.2.2, SOL004 "
            "clause 5), then sign the package again")


def _unlisted_reason(unlisted: Sequence[str], manifest_name: str, shown: int = 5) -> str:
    """'manifest m.mf does not list 7 files with a digest (a, b, c, d, e and 2 more)'."""
    names = ", ".join(unlisted[:shown])
    more = f" and {len(unlisted) - shown} more" if len(unlisted) > shown else ""
    return (f"manifest {manifest_name} does not list {len(unlisted)} "
            f"file{'s' if len(unlisted) != 1 else ''} with a digest ({names}{more})")


def is_option2_envelope(zip_path: Path) -> bool:
    """True when the upload is shaped like a SOL004 option 2 envelope (only its file list is read)."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            return _looks_like_envelope(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _looks_like_envelope(names: list[str]) -> bool:
    if TOSCA_META in names:
        return False
    root = [n for n in names if "/" not in n and "\\" not in n]
    if any(n.lower().endswith((".yaml", ".yml")) for n in root):
        return False  # a CSAR without TOSCA.meta (SOL004 clause 4.1)
    cms_bases = {n.removesuffix(".cms") for n in root if n.endswith(".cms")}
    return any(Path(n).stem in cms_bases for n in root if n.endswith(_PACKAGE_SUFFIXES))


def _envelope_members(infos: list[zipfile.ZipInfo],
                      upload: str) -> tuple[zipfile.ZipInfo, zipfile.ZipInfo, zipfile.ZipInfo | None]:
    expected = ("it must hold exactly <name>.csar, <name>.cms and optionally <name>.cert "
                "(SOL004 option 2, MEC 037 clause 6.2.3)")
    names = [_plain_file_name(info, upload) for info in infos]
    if len(set(names)) != len(names):
        raise SignatureError(f"option 2 package {upload} holds a file name twice; {expected}")
    packages = [i for i in infos if i.filename.endswith(_PACKAGE_SUFFIXES)]
    if len(packages) != 1:
        raise SignatureError(f"option 2 package {upload} holds {len(packages)} CSAR files; {expected}")
    package = packages[0]
    base = Path(package.filename).stem
    by_name = {i.filename: i for i in infos}
    cms = by_name.get(f"{base}.cms")
    cert = by_name.get(f"{base}.cert")
    extra = sorted(set(names) - {package.filename, f"{base}.cms", f"{base}.cert"})
    if cms is None or extra:
        raise SignatureError(f"option 2 package {upload} holds {', '.join(sorted(names))}; {expected}")
    return package, cms, cert


def _plain_file_name(info: zipfile.ZipInfo, upload: str) -> str:
    name = info.filename
    if (not name or "/" in name or "\\" in name or "\x00" in name or name in (".", "..")
            or name.startswith(".") or any(ord(c) < 32 for c in name)):
        raise SignatureError(f"option 2 package {upload}: member {name!r} is not a plain file name; the "
                             "CSAR, .cms and .cert files must sit at the root of the zip")
    ftype = stat.S_IFMT(info.external_attr >> 16)
    if ftype and ftype != stat.S_IFREG:
        raise SignatureError(f"option 2 package {upload}: member {name!r} is not a regular file")
    if info.flag_bits & 0x1:
        raise SignatureError(f"option 2 package {upload}: member {name!r} is encrypted; not supported")
    return name


def _read_small(archive: zipfile.ZipFile, info: zipfile.ZipInfo, upload: str) -> bytes:
    if info.file_size > MAX_SIGNATURE_BYTES:
        raise SignatureError(f"option 2 package {upload}: {info.filename} is {info.file_size} bytes, above "
                             f"the {MAX_SIGNATURE_BYTES}-byte limit for a signature or certificate file")
    try:
        with archive.open(info) as src:
            data = src.read(MAX_SIGNATURE_BYTES + 1)
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError) as exc:
        raise SignatureError(f"option 2 package {upload}: {info.filename} cannot be read: {exc}") from exc
    if len(data) > MAX_SIGNATURE_BYTES:
        raise SignatureError(f"option 2 package {upload}: {info.filename} is larger than its header says")
    return data


def _extract_limited(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, max_bytes: int,
                     upload: str) -> None:
    limit = (f"option 2 package {upload}: {info.filename} is larger than the {max_bytes}-byte limit "
             "(MEAO_MAX_UNPACKED_BYTES)")
    if info.file_size > max_bytes:
        raise SignatureError(limit)
    created = False
    written = 0
    try:
        with open(target, "xb") as out:
            created = True
            with archive.open(info) as src:
                while chunk := src.read(CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise SignatureError(limit)
                    out.write(chunk)
    except BaseException as exc:
        if not created:  # never delete a file this call did not create
            if isinstance(exc, FileExistsError):
                raise ProblemError(f"cannot unwrap option 2 package {upload}: {target} already exists") from exc
            raise
        target.unlink(missing_ok=True)
        if isinstance(exc, (zipfile.BadZipFile, EOFError, OSError, RuntimeError)):
            raise SignatureError(f"option 2 package {upload}: {info.filename} cannot be extracted, the zip "
                                 f"is corrupt or truncated: {exc}") from exc
        raise


def _cms_der(data: bytes, where: str) -> bytes:
    """The DER bytes of a CMS signature given as PEM (CMS or PKCS7 label) or as DER."""
    stripped = data.strip()
    if not stripped.startswith(b"-----BEGIN"):
        if stripped[:1] == b"\x30":
            return data  # DER: a SEQUENCE; openssl judges the rest
        raise SignatureError(f"{where}: the signature is neither PEM ('-----BEGIN CMS-----') nor DER CMS")
    match = _PEM_BODY.fullmatch(stripped)
    if match is None:
        raise SignatureError(f"{where}: the signature block is not one PEM '-----BEGIN CMS-----' ... "
                             "'-----END CMS-----' block")
    try:
        return base64.b64decode(b"".join(match.group(2).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"{where}: the CMS signature block is not valid base64: {exc}") from exc


def _openssl_verify(content: Path, der: bytes, *, trusted_ca: Path, certificate_pem: str | None, where: str,
                    content_label: str, cert_hint: str, timeout: int = OPENSSL_TIMEOUT) -> str:
    """Run ``openssl cms -verify`` over ``content``; return the signer's certificate (PEM)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ProblemError("the openssl command is not installed on this MEAO host; it is needed to verify "
                           "package signatures (install the Debian 'openssl' package)")
    ca_certs = _trusted_certificates(trusted_ca)
    with tempfile.TemporaryDirectory(prefix="meao-cms-") as tmp:
        sig = Path(tmp) / "signature.der"
        sig.write_bytes(der)
        signer = Path(tmp) / "signer.pem"
        args = [openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", str(sig),
                "-content", str(content), "-CAfile", str(trusted_ca), "-no-CApath", "-no-CAstore",
                "-purpose", "any", "-signer", str(signer), "-out", "/dev/null"]
        if certificate_pem:
            certfile = Path(tmp) / "entry.cert"
            certfile.write_text(certificate_pem, encoding="utf-8")
            args += ["-certfile", str(certfile)]
        try:
            proc = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise SignatureError(f"{where}: signature verification took longer than {timeout} s") from exc
        stderr = proc.stderr.decode("utf-8", errors="replace")
        if proc.returncode != 0:
            raise SignatureError(_reason(stderr, where=where, content_label=content_label, cert_hint=cert_hint,
                                         certs=_cms_certificates(der) + _pem_certificates(certificate_pem)
                                         + ca_certs))
        signer_pem = signer.read_text("ascii") if signer.exists() else ""
    if "-----BEGIN CERTIFICATE-----" not in signer_pem:
        raise SignatureError(f"{where}: openssl accepted the signature but reported no signer certificate")
    return signer_pem


def _reason(stderr: str, *, where: str, content_label: str, cert_hint: str,
            certs: list[x509.Certificate]) -> str:
    """Turn openssl's stderr into a reason that says what is wrong and what to do."""
    verify = re.search(r"Verify error:\s*(.+)", stderr)
    if verify:
        error = verify.group(1).strip()
        if "expired" in error or "not yet valid" in error:
            return (f"{where}: certificate rejected, {error}{_validity_detail(certs)}; re-sign the package "
                    "with a certificate that is valid now")
        if error in _UNTRUSTED or "issuer" in error:
            return (f"{where}: the signing certificate is not trusted ({error}): it does not chain to a CA "
                    "in the operator's trusted CA bundle (MEAO_TRUSTED_CA_FILE); sign with a certificate "
                    "from a trusted CA, or have the operator add the provider's CA to the bundle")
        return f"{where}: the signing certificate is rejected: {error}"
    if "signer certificate not found" in stderr:
        return (f"{where}: the signing certificate is neither inside the CMS signature nor in {cert_hint}; "
                "add it to one of them (MEC 037 clause 6.2.3)")
    if "content verify error" in stderr or "verification failure" in stderr:
        return (f"{where}: the signature does not match the {content_label}: it was changed after signing, "
                "or the signature was made over other data; re-sign the package")
    if "Error reading" in stderr or "asn1" in stderr.lower():
        return f"{where}: the signature is not a readable CMS (PKCS#7) SignedData structure"
    last = [line for line in stderr.splitlines() if line.strip()][-1:] or ["no message"]
    return f"{where}: the signature could not be verified (openssl: {last[0]})"


def _validity_detail(certs: list[x509.Certificate]) -> str:
    now = dt.datetime.now(dt.UTC)
    found = []
    for cert in certs:
        subject = cert.subject.rfc4514_string()
        if cert.not_valid_after_utc < now:
            found.append(f"'{subject}' expired on {cert.not_valid_after_utc.isoformat()}")
        elif cert.not_valid_before_utc > now:
            found.append(f"'{subject}' is valid only from {cert.not_valid_before_utc.isoformat()}")
    return f" (certificate {'; '.join(dict.fromkeys(found))})" if found else ""


def _trusted_certificates(trusted_ca: Path) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(trusted_ca.read_bytes())
    except (OSError, ValueError) as exc:
        raise ProblemError(f"the trusted CA bundle {trusted_ca} (MEAO_TRUSTED_CA_FILE) cannot be read as PEM "
                           f"certificates: {exc}; signed packages cannot be verified") from exc
    return certs


def _cms_certificates(der: bytes) -> list[x509.Certificate]:
    try:
        return list(pkcs7.load_der_pkcs7_certificates(der))
    except ValueError:
        return []  # no certificates inside, or unreadable: only used to word a message


def _pem_certificates(pem: str | None) -> list[x509.Certificate]:
    if not pem:
        return []
    try:
        return x509.load_pem_x509_certificates(pem.encode("ascii", errors="replace"))
    except ValueError:
        return []


def _result(option: str, signer_pem: str) -> SignatureResult:
    first = signer_pem[: signer_pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    first = first[first.index("-----BEGIN CERTIFICATE-----"):] + "\n"
    subject = x509.load_pem_x509_certificate(first.encode("ascii")).subject.rfc4514_string()
    return SignatureResult(signed=True, option=option, signer_subject=subject, certificate_pem=first)


def _timeout_for(size: int) -> int:
    return OPENSSL_TIMEOUT + size // (20 * 1024 * 1024)  # 20 MiB/s is far below openssl's SHA-256 speed
