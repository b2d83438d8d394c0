"""Parameters from any source by case-insensitive name (contract §3.1), and identifiers."""

from __future__ import annotations

import pytest

from postventa.domain.errors import PostventaError, RefusalKind
from postventa.domain.parameters import MAX_ID, Parameters, parse_identifier
from postventa.domain.send_request import UploadedFile


def conflict_code(*sources) -> str:
    with pytest.raises(PostventaError) as caught:
        Parameters.collect(sources)
    assert caught.value.refusal.kind is RefusalKind.INVALID
    return caught.value.refusal.code


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("API_KEY", "API_KEY"),
        ("api_key", "API_KEY"),
        ("Api_Key", "API_KEY"),
        ("accountId", "accountId"),
        ("accountID", "accountId"),
        ("ACCOUNTID", "accountId"),
        ("accountid", "accountId"),
        ("ORDERID", "orderId"),
        ("Message", "message"),
        ("MESSAGEOPTIONS", "messageOptions"),
        ("messageoptions", "messageOptions"),
        ("FILE", "file"),
        ("filebase64", "fileBase64"),
        ("DocumentName", "documentName"),
        ("DOCUMENTEXTENSION", "documentExtension"),
    ],
)
def test_names_match_case_insensitively(given, canonical):
    parameters = Parameters.collect([[(given, "7")]])

    assert parameters.has(canonical)
    assert parameters.raw(canonical) == "7"


def test_values_from_query_json_and_form_are_merged():
    query = [("API_KEY", "secret"), ("accountId", "5")]
    json_body = [("messageOptions", 4)]
    form = [("message", "Hola")]

    parameters = Parameters.collect([query, json_body, form])

    assert parameters.values == {
        "API_KEY": "secret",
        "accountId": "5",
        "messageOptions": 4,
        "message": "Hola",
    }


def test_same_name_twice_with_the_same_value_is_fine():
    parameters = Parameters.collect([[("accountId", "5"), ("ACCOUNTID", "5")]])

    assert parameters.raw("accountId") == "5"


@pytest.mark.parametrize(
    ("first", "second"),
    [("5", 5), (5, "5"), (True, "true"), ("false", False), (2.5, "2.5")],
)
def test_the_same_value_across_sources_and_types_is_fine(first, second):
    parameters = Parameters.collect([[("accountId", first)], [("accountid", second)]])

    assert parameters.raw("accountId") == first  # the first value given is kept


@pytest.mark.parametrize(
    ("first", "second"),
    [("5", "6"), ("5", 6), (5, 6), ("Hola", "hola"), ("5", " 5"), (True, False), ("1", True)],
)
def test_the_same_name_with_different_values_is_refused(first, second):
    assert conflict_code([("accountId", first)], [("ACCOUNTID", second)]) == "conflicting_parameter"


def test_conflict_within_one_source_is_refused():
    assert conflict_code([("message", "a"), ("MESSAGE", "b")]) == "conflicting_parameter"


def test_conflict_message_names_the_parameter():
    with pytest.raises(PostventaError) as caught:
        Parameters.collect([[("api_key", "a")], [("API_KEY", "b")]])

    assert "API_KEY" in caught.value.refusal.message


def test_two_files_under_one_name_conflict():
    first = UploadedFile("a.pdf", b"%PDF-")
    second = UploadedFile("a.pdf", b"%PDF-")

    assert conflict_code([("file", first)], [("FILE", second)]) == "conflicting_parameter"


@pytest.mark.parametrize("empty", ["", None])
def test_empty_values_count_as_absent(empty):
    parameters = Parameters.collect([[("message", empty), ("accountId", "5")]])

    assert not parameters.has("message")
    assert parameters.raw("message") is None
    assert parameters.text("message") is None


@pytest.mark.parametrize("empty", ["", None])
def test_an_empty_value_does_not_conflict_with_a_real_one(empty):
    before = Parameters.collect([[("message", empty)], [("message", "Hola")]])
    after = Parameters.collect([[("message", "Hola")], [("message", empty)]])

    assert before.raw("message") == "Hola"
    assert after.raw("message") == "Hola"


def test_unknown_names_are_ignored():
    parameters = Parameters.collect([[("foo", "1"), ("callback", "x"), ("accountId", "5"), ("foo", "2")]])

    assert parameters.values == {"accountId": "5"}


def test_known_names_can_be_restricted():
    parameters = Parameters.collect([[("API_KEY", "k"), ("message", "Hola")]], known=("API_KEY", "accountId"))

    assert parameters.values == {"API_KEY": "k"}


def test_text_reads_numbers_as_their_decimal_text():
    parameters = Parameters.collect([[("message", 42), ("documentName", 1.5)]])

    assert parameters.text("message") == "42"
    assert parameters.text("documentName") == "1.5"


@pytest.mark.parametrize("value", [True, ["a"], {"a": 1}])
def test_text_refuses_values_that_are_not_text(value):
    parameters = Parameters.collect([[("message", value)]])

    with pytest.raises(PostventaError) as caught:
        parameters.text("message")

    assert caught.value.refusal.code == "invalid_parameter_type"


@pytest.mark.parametrize(
    ("value", "expected"), [(1, 1), ("42", 42), (" 42 ", 42), (MAX_ID, MAX_ID), ("007", 7)]
)
def test_parse_identifier_accepts_positive_integers(value, expected):
    assert parse_identifier(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        "0",
        "-1",
        "+5",
        4.0,
        "4.0",
        "4a",
        "",
        " ",
        True,
        False,
        "٣",
        "²",
        "１",
        2**63,
        str(2**63),
        None,
        [1],
    ],
)
def test_parse_identifier_refuses_anything_else(value):
    assert parse_identifier(value) is None


def test_max_id_is_the_largest_64_bit_signed_integer():
    assert MAX_ID == 2**63 - 1


def test_identifier_is_none_when_absent_and_refused_with_the_given_code_when_malformed():
    parameters = Parameters.collect([[("accountId", "abc"), ("orderId", "12")]])

    assert parameters.identifier("orderId", code="order_id_invalid") == 12
    assert Parameters().identifier("accountId", code="account_id_invalid") is None
    with pytest.raises(PostventaError) as caught:
        parameters.identifier("accountId", code="account_id_invalid")
    assert caught.value.refusal.code == "account_id_invalid"
    assert "accountId" in caught.value.refusal.message
