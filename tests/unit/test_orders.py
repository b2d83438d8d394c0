"""Order facts of contract §2: logistic types, their Mercado Libre names, and status types."""

from __future__ import annotations

import pytest

from postventa.domain.orders import (
    LogisticType,
    OrderFacts,
    StatusType,
    marketplace_conversation,
    status_type_of,
    statuses_of_type,
)


@pytest.mark.parametrize(
    ("key", "label"),
    [
        (1, "to_be_agreed"),
        (2, "me1"),
        (3, "me2"),
        (4, "custom"),
        (5, "fulfillment"),
        (6, "flex"),
        (7, "pickup"),
        (8, "cross_docking"),
        (14, "courier"),
        (15, "flex-turbo"),
    ],
)
def test_logistic_type_keys_and_labels(key, label):
    assert LogisticType(key).label == label
    assert LogisticType.parse(key) is LogisticType(key)
    assert LogisticType.parse(str(key)) is LogisticType(key)
    assert LogisticType.parse(label) is LogisticType(key)
    assert LogisticType.parse(label.upper()) is LogisticType(key)


@pytest.mark.parametrize(
    ("mercadolibre", "key"),
    [
        ("not_specified", 1),
        ("default", 2),
        ("drop_off", 3),
        ("xd_drop_off", 3),
        ("custom", 4),
        ("fulfillment", 5),
        ("self_service", 6),
        ("cross_docking", 8),
        (" Self_Service ", 6),
    ],
)
def test_mercadolibre_logistic_types_map_to_alephee_keys(mercadolibre, key):
    assert LogisticType.from_mercadolibre(mercadolibre) is LogisticType(key)
    assert LogisticType.parse(mercadolibre) is LogisticType(key)


@pytest.mark.parametrize(
    "value", [0, 9, 16, -3, True, "9", "flex turbo", "", "unknown", "²", "٣", "0008", 4.0]
)
def test_unknown_logistic_types_parse_to_none(value):
    assert LogisticType.parse(value) is None


@pytest.mark.parametrize(
    ("status", "status_type"),
    [
        (0, StatusType.NEW),
        *[(status, StatusType.PENDING) for status in (10, 17, 20, 30, 31, 87, 89, 91, 92)],
        (80, StatusType.CLOSED),
        *[(status, StatusType.CANCELLED) for status in (11, 90, 93)],
    ],
)
def test_status_types(status, status_type):
    assert status_type_of(status) is status_type


def test_deleted_and_unknown_statuses_belong_to_no_type():
    assert status_type_of(70) is None
    assert status_type_of(12) is None


def test_statuses_of_each_type_for_filtering():
    assert statuses_of_type(StatusType.NEW) == [0]
    assert statuses_of_type(StatusType.PENDING) == [10, 17, 20, 30, 31, 87, 89, 91, 92]
    assert statuses_of_type(StatusType.CLOSED) == [80]
    assert statuses_of_type(StatusType.CANCELLED) == [11, 90, 93]


@pytest.mark.parametrize(
    ("marketplace", "expected"), [("MercadoLibre", True), ("mercadolibre", True), ("Dafiti", False)]
)
def test_is_mercadolibre(marketplace, expected):
    assert OrderFacts(marketplace, None, 10, None, None).is_mercadolibre is expected


def test_the_conversation_is_keyed_by_the_pack_or_else_the_numeric_order():
    assert marketplace_conversation(2000000001, "EXT-1") == 2000000001
    assert marketplace_conversation(None, "2000000123") == 2000000123
    assert marketplace_conversation(None, "EXT-1") is None
    assert marketplace_conversation(None, "²") is None  # a digit to str.isdigit, not an id
