"""Attribute filters: validation names the bad parameter; evaluation follows the documented rules."""

from __future__ import annotations

from typing import Any

import pytest

from assistant_kit.errors import InvalidRequestError
from assistant_kit.retrieval.filters import matches, validate_filter

ATTRS = {"author": "ada", "year": 2021, "score": 4.5, "draft": False}


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"type": "eq", "key": "author", "value": "ada"}, True),
        ({"key": "author", "value": "ada"}, True),  # type defaults to eq
        ({"type": "eq", "key": "author", "value": "bob"}, False),
        ({"type": "ne", "key": "author", "value": "bob"}, True),
        ({"type": "ne", "key": "missing", "value": "bob"}, True),
        ({"type": "eq", "key": "missing", "value": "bob"}, False),
        ({"type": "gt", "key": "year", "value": 2020}, True),
        ({"type": "gte", "key": "year", "value": 2021}, True),
        ({"type": "lt", "key": "score", "value": 4.5}, False),
        ({"type": "lte", "key": "score", "value": 4.5}, True),
        ({"type": "gt", "key": "author", "value": "aaa"}, True),  # strings compare with strings
        ({"type": "gt", "key": "author", "value": 3}, False),  # but never with numbers
        ({"type": "eq", "key": "draft", "value": False}, True),
        ({"type": "eq", "key": "year", "value": True}, False),
        ({"type": "gt", "key": "draft", "value": False}, False),
        ({"type": "in", "key": "year", "value": [2020, 2021]}, True),
        ({"type": "in", "key": "author", "value": ["bob", "eve"]}, False),
        ({"type": "nin", "key": "author", "value": ["bob", "eve"]}, True),
        ({"type": "nin", "key": "missing", "value": ["x"]}, True),
        (
            {
                "type": "and",
                "filters": [
                    {"type": "eq", "key": "author", "value": "ada"},
                    {
                        "type": "or",
                        "filters": [
                            {"type": "lt", "key": "year", "value": 2000},
                            {"type": "eq", "key": "draft", "value": False},
                        ],
                    },
                ],
            },
            True,
        ),
        (
            {
                "type": "or",
                "filters": [
                    {"type": "eq", "key": "author", "value": "x"},
                    {"type": "gt", "key": "year", "value": 3000},
                ],
            },
            False,
        ),
    ],
)
def test_matches(filter: dict[str, Any], expected: bool) -> None:
    assert matches(validate_filter(filter), ATTRS) is expected


@pytest.mark.parametrize(
    ("filter", "param"),
    [
        ("author=ada", "filters"),
        ({"type": "like", "key": "a", "value": "b"}, "filters.type"),
        ({"type": "eq", "key": 3, "value": "b"}, "filters.key"),
        ({"type": "eq", "key": "a"}, "filters.value"),
        ({"type": "eq", "key": "a", "value": {"x": 1}}, "filters.value"),
        ({"type": "eq", "key": "a", "value": None}, "filters.value"),
        ({"type": "in", "key": "a", "value": "b"}, "filters.value"),
        ({"type": "in", "key": "a", "value": [True]}, "filters.value"),
        ({"type": "eq", "key": "a", "value": "b", "extra": 1}, "filters.extra"),
        ({"type": "and", "filters": []}, "filters.filters"),
        (
            {"type": "or", "filters": [{"type": "eq", "key": "a", "value": "b"}, {"type": "gt", "key": "a"}]},
            "filters.filters[1].value",
        ),
    ],
)
def test_bad_filters_name_the_parameter(filter: Any, param: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        validate_filter(filter)
    assert err.value.param == param
