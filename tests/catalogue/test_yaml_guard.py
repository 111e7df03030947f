"""Tests of the streaming YAML pre-check (meao/catalogue/yaml_guard.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from meao.catalogue.yaml_guard import check_yaml_file
from meao.problems import OnboardingError

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
j: &j [*i,*i,*i,*i,*i,*i,*i,*i,*i]
k: &k [*j,*j,*j,*j,*j,*j,*j,*j,*j]
l: &l [*k,*k,*k,*k,*k,*k,*k,*k,*k]
"""


def _write(tmp_path: Path, text: str | bytes, name: str = "app.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_ordinary_tosca_yaml_with_a_few_aliases_passes(tmp_path: Path) -> None:
    path = _write(tmp_path, "tosca_definitions_version: tosca_simple_yaml_1_3\n"
                            "x: &size 512 MiB\nnodes: {a: *size, b: [*size, 1, true]}\n")
    check_yaml_file(path)


def test_billion_laughs_alias_bomb_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, BILLION_LAUGHS)
    with pytest.raises(OnboardingError, match="app.yaml: .*possible alias bomb"):
        check_yaml_file(path)


def test_more_than_max_aliases_is_refused_even_when_cheap_to_expand(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n")
    with pytest.raises(OnboardingError, match="app.yaml: more than 100 YAML aliases"):
        check_yaml_file(path)


def test_alias_bomb_below_the_alias_limit_is_refused_by_its_expanded_size(tmp_path: Path) -> None:
    levels = ["l0: &l0 [x, x, x, x, x, x, x, x]"]
    levels += [f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 8) + "]" for n in range(1, 10)]
    path = _write(tmp_path, "\n".join(levels) + "\n")  # 72 aliases, 8**10 nodes once expanded
    with pytest.raises(OnboardingError, match="app.yaml: YAML document expands to more than"):
        check_yaml_file(path)


def test_nesting_deeper_than_the_limit_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: " + "[" * 100 + "]" * 100 + "\n")
    with pytest.raises(OnboardingError, match="app.yaml: YAML nesting deeper than 64 levels"):
        check_yaml_file(path)


def test_nesting_limit_is_configurable(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: {b: {c: {d: 1}}}\n")
    check_yaml_file(path, max_depth=4)
    with pytest.raises(OnboardingError, match="deeper than 3"):
        check_yaml_file(path, max_depth=3)


def test_non_utf8_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "description: caf\xe9\n".encode("latin-1"))
    with pytest.raises(OnboardingError, match="app.yaml: not valid UTF-8"):
        check_yaml_file(path)


def test_file_larger_than_max_bytes_is_refused_before_reading(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: " + "x" * 2000 + "\n")
    with pytest.raises(OnboardingError, match="app.yaml: YAML file is 2004 bytes, larger than the 1000"):
        check_yaml_file(path, max_bytes=1000)


def test_default_size_limit_is_4_mib(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: '" + "x" * (4 * 1024 * 1024) + "'\n")
    with pytest.raises(OnboardingError, match="larger than the 4194304 bytes"):
        check_yaml_file(path)


def test_invalid_yaml_is_refused_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(OnboardingError, match=r"app.yaml: not valid YAML: .*line \d+"):
        check_yaml_file(path)


def test_more_than_one_yaml_document_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: 1\n---\nb: 2\n")
    with pytest.raises(OnboardingError, match="more than one YAML document"):
        check_yaml_file(path)


def test_display_name_is_used_in_the_message(tmp_path: Path) -> None:
    path = _write(tmp_path, BILLION_LAUGHS)
    with pytest.raises(OnboardingError, match="^Definitions/app.yaml: ") as caught:
        check_yaml_file(path, display_name="Definitions/app.yaml")
    assert caught.value.status == 422
