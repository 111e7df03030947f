"""MEC 009 attribute selectors (clause 6.18) with nested default exclusions (e.g. MEC 010-2 table 7.4.1.3.2-1)."""

from __future__ import annotations

import copy

from meao.api.query import select_fields

TREE = {"id": None, "operationParams": "*", "_links": {"self": {"href": None}, "operate": {"href": None},
                                                      "instantiate": {"href": None}}}
ITEM = {"id": "1", "operationParams": {"a": 1},
        "_links": {"self": {"href": "s"}, "operate": {"href": "o"}, "instantiate": {"href": "i"}}}
DEFAULTS = ("operationParams", "_links/operate", "_links/instantiate")


def _select(**params: str | None) -> dict:
    return select_fields([copy.deepcopy(ITEM)], params, TREE, DEFAULTS)[0]


def test_nested_default_exclusions_leave_their_parent_and_siblings() -> None:
    for params in ({}, {"exclude_default": ""}):
        assert _select(**params) == {"id": "1", "_links": {"self": {"href": "s"}}}


def test_fields_naming_a_default_excluded_path_or_its_parent_keep_it() -> None:
    assert set(_select(fields="_links")["_links"]) == {"self", "operate", "instantiate"}
    assert set(_select(fields="_links/operate")["_links"]) == {"self", "operate"}
    assert _select(fields="operationParams")["operationParams"] == {"a": 1}


def test_all_fields_keeps_everything_and_exclude_fields_alone_keeps_the_defaults() -> None:
    assert _select(all_fields="") == ITEM
    assert _select(exclude_fields="_links/self") == {"id": "1", "operationParams": {"a": 1},
                                                     "_links": {"operate": {"href": "o"}, "instantiate": {"href": "i"}}}
