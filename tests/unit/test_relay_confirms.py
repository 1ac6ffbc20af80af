"""Matching the broker's confirms and returns to messages (windowed confirms)."""

from __future__ import annotations

from outbound.amqp_publisher import _Confirms
from outbound.ports import Delivery


def tracker(count: int) -> _Confirms:
    confirms = _Confirms(count)
    for index in range(count):
        confirms.published(index + 1, index, f"m{index}")
    return confirms


def test_a_multiple_ack_confirms_everything_up_to_its_tag() -> None:
    confirms = tracker(5)
    confirms.answered(3, True, ack=True)
    assert confirms.results[:3] == [Delivery.CONFIRMED] * 3
    assert list(confirms.waiting) == [4, 5]
    confirms.answered(5, False, ack=True)
    confirms.answered(4, False, ack=True)
    assert confirms.results == [Delivery.CONFIRMED] * 5 and not confirms.waiting


def test_a_nack_refuses_only_the_tags_it_names() -> None:
    confirms = tracker(3)
    confirms.answered(2, False, ack=False)
    confirms.answered(3, True, ack=True)
    assert confirms.results == [Delivery.CONFIRMED, Delivery.REFUSED, Delivery.CONFIRMED]
    assert "nack" in confirms.reasons[1]


def test_a_returned_message_is_unroutable_when_its_ack_arrives() -> None:
    confirms = tracker(2)
    confirms.returned_message("m1")
    confirms.answered(2, True, ack=True)
    assert confirms.results == [Delivery.CONFIRMED, Delivery.UNROUTABLE]


def test_giving_up_marks_what_was_still_waiting() -> None:
    confirms = tracker(3)
    confirms.answered(1, False, ack=True)
    confirms.give_up(Delivery.UNKNOWN, "connection lost")
    assert confirms.results == [Delivery.CONFIRMED, Delivery.UNKNOWN, Delivery.UNKNOWN]
    assert confirms.reasons == {}
