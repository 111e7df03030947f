"""The VIM driver is a choice of configuration (MEAO_VIM_DRIVER); callers only ever ask get_vim."""

from collections.abc import Iterator

import pytest

from meao.config import get_settings, load_settings, set_settings
from meao.nfvo.drivers import forget_vims, get_vim
from meao.nfvo.fake import FakeVim


@pytest.fixture()
def fake_driver(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    before = get_settings()
    monkeypatch.setenv("MEAO_VIM_DRIVER", "fake")
    set_settings(load_settings())
    forget_vims()
    yield
    forget_vims()
    set_settings(before)


def test_fake_driver_is_chosen_by_configuration_one_per_cloud(fake_driver: None) -> None:
    pop1 = get_vim("pop1")
    assert isinstance(pop1, FakeVim)
    assert get_vim("pop1") is pop1
    assert get_vim("pop2") is not pop1


def test_unknown_driver_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEAO_VIM_DRIVER", "vmware")
    with pytest.raises(SystemExit, match="MEAO_VIM_DRIVER='vmware' is not one of openstack, fake"):
        load_settings()


def test_default_driver_is_openstack() -> None:
    assert load_settings().vim.driver == "openstack"
