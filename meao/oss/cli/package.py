"""``meao package``: application packages (Mm1 app_pkgm, MEC 010-2 clause 7.3)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from meao.oss.cli.invocation import api_options, client
from meao.oss.cli.onboarding import check_digest, create_from_file, finish_package, upload
from meao.oss.cli.output import emit_one, output_options
from meao.oss.cli.progress import status_line, wait_options
from meao.oss.cli.verbs import api_group, delete_command, list_command, show_command
from meao.oss.client import MeaoClient, file_digest, read_manifest_metadata

PACKAGE_COLUMNS = ("id", "appDId", "appName", "onboardingState", "operationalState", "usageState")

package = api_group("package", "Application packages (Mm1 app_pkgm, MEC 010-2 clause 7.3).")

list_command(package, "List application packages.", PACKAGE_COLUMNS,
             lambda made, filter_: made.pkgm.list_packages(filter_),
             [click.option("--filter", "filter_", metavar="EXPR",
                           help="MEC 009 filter, e.g. '(eq,operationalState,ENABLED)'")])
show_command(package, "pkg_id", "Show one application package (AppPkgInfo).",
             lambda made, pkg_id: made.pkgm.get_package(pkg_id))


def _properties(pairs: Sequence[str]) -> dict[str, str] | None:
    data = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--property")
        data[key] = value
    return data or None


@package.command("create")
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="local package zip: the MEAO reads it as a file:// URI (same machine, under "
                   "MEAO_PKG_FILE_ROOT), else the CLI uploads it")
@click.option("--path", "uri", metavar="URI", help="http(s) or file URI the MEAO fetches the package from")
@click.option("--checksum-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="with --path: a local copy of the package, to compute its checksum")
@click.option("--checksum", "checksum_hash", metavar="HEX", help="with --path: the package's checksum")
@click.option("--algorithm", type=click.Choice(["SHA-224", "SHA-256", "SHA-384", "SHA-512"]), default="SHA-256",
              show_default=True, help="checksum algorithm")
@click.option("--name", help="appPkgName [default with --file: vnf_product_name of the manifest]")
@click.option("--version", "pkg_version", help="appPkgVersion [default with --file: vnf_package_version]")
@click.option("--provider", help="appProvider")
@click.option("--property", "properties", multiple=True, metavar="KEY=VALUE", help="userDefinedData entry")
@wait_options
@api_options
@output_options
def package_create(file_: Path | None, uri: str | None, checksum_file: Path | None, checksum_hash: str | None,
                   algorithm: str, name: str | None, pkg_version: str | None, provider: str | None,
                   properties: tuple[str, ...], wait: bool) -> None:
    """Create an application package; the MEAO fetches it from --path, or reads/receives --file.

    \b
    meao package create --name N --version V --checksum-file pkg.zip --path https://repo/pkg.zip
    meao package create --file pkg.zip --wait
    """
    if (file_ is None) == (uri is None):
        raise click.UsageError("give either --file FILE or --path URI")
    if file_ is not None and (checksum_file or checksum_hash):
        raise click.UsageError("--checksum/--checksum-file go with --path; --file computes the checksum")
    if uri is not None:
        if not name or not pkg_version:
            raise click.UsageError("--path needs --name and --version")
        if (checksum_file is None) == (checksum_hash is None):
            raise click.UsageError("--path needs either --checksum-file FILE or --checksum HEX")
    user_data = _properties(properties)
    made = client()
    with status_line() as line:
        if file_ is not None:
            meta = read_manifest_metadata(file_)
            name = name or meta.get("vnf_product_name")
            pkg_version = pkg_version or meta.get("vnf_package_version")
            if not name or not pkg_version:
                raise click.UsageError(f"{file_} has no manifest metadata to name it; give --name and --version")
            info = create_from_file(made, file_, name, pkg_version, algorithm, provider, user_data, wait, line)
        else:
            digest = file_digest(checksum_file, algorithm) if checksum_file else str(checksum_hash)
            created = made.pkgm.create_package(str(name), str(pkg_version), str(uri), digest, algorithm, provider,
                                               user_data)
            info = finish_package(made, created["id"], wait, line)
    emit_one(info)


@package.command("upload")
@click.argument("pkg_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@wait_options
@api_options
@output_options
def package_upload(pkg_id: str, file: Path, wait: bool) -> None:
    """Upload the content of a CREATED package (PUT package_content), streamed with progress."""
    made = client()
    check_digest(made.pkgm.get_package(pkg_id), file)
    with status_line() as line:
        upload(made, pkg_id, file, line)
        info = finish_package(made, pkg_id, wait, line)
    emit_one(info)


def _state_command(verb: str, state: str, help: str) -> None:
    def run(pkg_id: str) -> None:
        client().pkgm.set_package_state(pkg_id, state)

    package.command(verb, help=help)(click.argument("pkg_id")(api_options(run)))


_state_command("enable", "ENABLED", "Enable an onboarded package: it can be instantiated again.")
_state_command("disable", "DISABLED", "Disable an onboarded package: no new instances (existing ones keep running).")


def _delete(made: MeaoClient, pkg_id: str, disable_first: bool) -> None:
    if disable_first:
        info = made.pkgm.get_package(pkg_id)
        if info.get("onboardingState") == "ONBOARDED" and info.get("operationalState") == "ENABLED":
            made.pkgm.set_package_state(pkg_id, "DISABLED")
    made.pkgm.delete_package(pkg_id)


delete_command(package, "pkg_ids", "PKG_ID...",
               "Delete application packages (an onboarded one must be DISABLED and NOT_IN_USE).", _delete,
               [click.option("--disable", "disable_first", is_flag=True, help="disable an ENABLED package first")])
