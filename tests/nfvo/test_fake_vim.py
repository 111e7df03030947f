"""The in-memory VIM double keeps the driver's contract for the cases callers handle."""

import hashlib
import io

import pytest

from meao.catalogue.appd import Checksum
from meao.nfvo.fake import FakeVim
from meao.nfvo.vim import ImageSpec, NoValidHost, QuotaExceeded, ServerFault

DATA = b"x" * 4096


def _spec() -> ImageSpec:
    return ImageSpec("app", "1", Checksum("sha-256", hashlib.sha256(DATA).hexdigest()))


def test_fake_boots_releases_and_sweeps_clean() -> None:
    vim = FakeVim()
    image = vim.ensure_image(_spec(), lambda: io.BytesIO(DATA), "pkg")
    flavor = vim.ensure_flavor(1, 512, 1)
    port = vim.create_port("net1", "i1", "cp1")
    server = vim.create_server("s", flavor, image, [port], "i1", availability_zone="az2")
    assert vim.wait_server_active(server, 1).availability_zone == "az2"
    assert vim.capacity().zones["az2"].ram_mb == 7680 - 512
    assert {i.kind for i in vim.sweep([]).items} == {"server", "port", "image"}
    vim.delete_server(server)
    vim.delete_port(port)
    assert vim.release_flavor(flavor) and vim.release_image(image, "pkg")
    assert not vim.sweep([])


def test_fake_reports_no_valid_host_fault_and_quota() -> None:
    vim = FakeVim(quota_instances=2)
    image = vim.ensure_image(_spec(), lambda: io.BytesIO(DATA), "pkg")
    with pytest.raises(NoValidHost):
        vim.wait_server_active(vim.create_server("big", vim.ensure_flavor(1, 16384, 1), image, [], "i1"), 1)
    vim.fail_next_boot = "disk on fire"
    with pytest.raises(ServerFault, match="disk on fire"):
        vim.wait_server_active(vim.create_server("bad", vim.ensure_flavor(1, 64, 1), image, [], "i2"), 1)
    with pytest.raises(QuotaExceeded):
        vim.create_server("third", vim.ensure_flavor(1, 64, 1), image, [], "i3")
