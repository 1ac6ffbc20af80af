"""The member aggregate with an injected clock: every transition and expiry boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from membership import events as ev
from membership.errors import AlreadyEnrolled, PolicyViolation, TransitionRefused
from membership.model import (
    EnrollmentStatus,
    Member,
    MembershipStatus,
    Preferences,
    refuse_duplicate,
)
from membership.policies import ThrottlePolicy
from membership.tokens import ActivationToken, new_token_text
from tests.fakes import CountingRandom, ReversibleBox

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
H72 = timedelta(hours=72)
BOX = ReversibleBox()


def _token(random: CountingRandom, now: datetime = T0) -> tuple[str, ActivationToken]:
    text = new_token_text(random)
    return text, ActivationToken.issue(text, BOX, now, H72)


def _pending(random: CountingRandom | None = None) -> tuple[Member, str]:
    text, token = _token(random or CountingRandom())
    member = Member.enroll(member_id="m1", patient_id="p1", preferences=Preferences(email="a@b.c"),
                           proxy_only=False, mode="automated", enrolled_by="EMR", token=token,
                           passphrase_hash=None, printed_activation=False, now=T0)
    return member, text


def _active() -> tuple[Member, str]:
    member, text = _pending()
    member.activate(token=text, username="ann", password_hash="h1", preferences=member.preferences,
                    minor=False, now=T0)
    return member, text


def test_enrollment_issues_the_token_and_makes_the_member_pending_at_once() -> None:
    member, _ = _pending()
    assert member.enrollment_status is EnrollmentStatus.YES
    assert member.membership_status is MembershipStatus.PENDING
    assert member.token is not None and member.token.expires_at == T0 + H72
    [event] = member.events
    assert isinstance(event, ev.MemberEnrolled) and event.new_status == "pending"


@pytest.mark.parametrize(("offset", "expired"), [(-1, False), (0, False), (1, True)])
def test_token_expiry_boundary(offset: int, expired: bool) -> None:
    member, text = _pending()
    at = T0 + H72 + timedelta(seconds=offset)
    refusal = member.activation_refusal(token=text, now=at)
    assert (refusal == "the token expired") is expired
    assert refusal is None or expired


def test_an_expired_token_leaves_the_member_pending() -> None:
    member, text = _pending()
    with pytest.raises(TransitionRefused, match="expired"):
        member.activate(token=text, username="u", password_hash="h", preferences=member.preferences,
                        minor=False, now=T0 + H72 + timedelta(seconds=1))
    assert member.membership_status is MembershipStatus.PENDING


def test_activation_makes_the_member_active_and_spends_the_token() -> None:
    member, text = _active()
    assert member.membership_status is MembershipStatus.ACTIVE
    assert member.token is None and member.username == "ann" and member.password_hash == "h1"
    assert isinstance(member.events[-1], ev.MemberActivated)
    assert member.activation_refusal(token=text, now=T0) is not None


def test_activation_below_the_minimum_age_gives_inactive_minor() -> None:
    member, text = _pending()
    member.activate(token=text, username="kid", password_hash="h", preferences=member.preferences,
                    minor=True, now=T0)
    assert member.membership_status is MembershipStatus.INACTIVE_MINOR


def test_wrong_token_is_refused() -> None:
    member, _ = _pending()
    assert member.activation_refusal(token="WRONG", now=T0) is not None


@pytest.mark.parametrize("hours", [1, 36, 72])
def test_renew_within_bounds(hours: int) -> None:
    member, text = _pending()
    later = T0 + timedelta(hours=100)  # expired
    member.renew_token(hours=hours, reason="called in", maximum=H72, now=later, actor="staff")
    assert member.token is not None and member.token.expires_at == later + timedelta(hours=hours)
    assert member.activation_refusal(token=text, now=later) is None  # the same token works again
    assert isinstance(member.events[-1], ev.TokenRenewed)


@pytest.mark.parametrize("hours", [0, 73])
def test_renew_out_of_bounds_is_refused(hours: int) -> None:
    member, _ = _pending()
    with pytest.raises(PolicyViolation, match="between 1 and 72"):
        member.renew_token(hours=hours, reason="x", maximum=H72, now=T0, actor="staff")


def test_renew_is_repeatable_and_needs_a_reason() -> None:
    member, _ = _pending()
    with pytest.raises(PolicyViolation, match="reason"):
        member.renew_token(hours=5, reason="  ", maximum=H72, now=T0, actor="staff")
    for n in range(3):
        member.renew_token(hours=5, reason=f"try {n}", maximum=H72, now=T0, actor="staff")
    assert sum(isinstance(e, ev.TokenRenewed) for e in member.events) == 3


def test_regenerate_invalidates_the_old_token_at_once() -> None:
    random = CountingRandom()
    member, old = _pending(random)
    new_text, new_token = _token(random)
    member.regenerate_token(new_token=new_token, hours=10, reason="lost e-mail", maximum=H72,
                            notify=True, now=T0, actor="staff")
    assert member.activation_refusal(token=old, now=T0) is not None
    assert member.activation_refusal(token=new_text, now=T0) is None
    assert member.token is not None and member.token.expires_at == T0 + timedelta(hours=10)
    event = member.events[-1]
    assert isinstance(event, ev.TokenRegenerated) and event.notify


@pytest.mark.parametrize("hours", [0, 73])
def test_regenerate_bounds(hours: int) -> None:
    random = CountingRandom()
    member, _ = _pending(random)
    with pytest.raises(PolicyViolation):
        member.regenerate_token(new_token=_token(random)[1], hours=hours, reason="r", maximum=H72,
                                notify=False, now=T0, actor="staff")


def test_token_operations_need_a_pending_member() -> None:
    member, _ = _active()
    with pytest.raises(TransitionRefused, match="active, not pending"):
        member.resend_token(now=T0, actor="staff")
    with pytest.raises(TransitionRefused):
        member.renew_token(hours=1, reason="r", maximum=H72, now=T0, actor="staff")


def test_resend_gives_the_same_sealed_token() -> None:
    member, text = _pending()
    assert BOX.open(member.resend_token(now=T0, actor="staff")) == text


def test_deactivate_and_reactivate() -> None:
    member, _ = _active()
    member.deactivate(reason="deceased", now=T0, actor="staff")
    assert member.membership_status is MembershipStatus.INACTIVE
    assert member.events[-1].old_status == "active" and member.events[-1].new_status == "inactive"
    member.reactivate(reason="error", now=T0, actor="staff")
    assert member.membership_status is MembershipStatus.ACTIVE
    assert member.enrollment_status is EnrollmentStatus.YES


def test_refused_status_changes() -> None:
    pending, _ = _pending()
    with pytest.raises(TransitionRefused, match="only an activated member"):
        pending.deactivate(reason="r", now=T0, actor="s")
    with pytest.raises(TransitionRefused, match="only an inactive member"):
        pending.reactivate(reason="r", now=T0, actor="s")
    active, _ = _active()
    with pytest.raises(TransitionRefused):
        active.reactivate(reason="r", now=T0, actor="s")
    with pytest.raises(PolicyViolation, match="reason"):
        active.deactivate(reason="", now=T0, actor="s")


def test_a_pending_or_active_patient_is_never_enrolled_twice() -> None:
    pending, _ = _pending()
    with pytest.raises(AlreadyEnrolled, match="already a pending member"):
        refuse_duplicate(pending)
    active, _ = _active()
    with pytest.raises(AlreadyEnrolled, match="already a active member"):
        refuse_duplicate(active)
    active.deactivate(reason="r", now=T0, actor="s")
    with pytest.raises(TransitionRefused, match="reactivate"):
        refuse_duplicate(active)
    refuse_duplicate(None)


def test_failed_attempts_lock_the_token_then_the_lock_ends() -> None:
    member, text = _pending()
    throttle = ThrottlePolicy(failures=3, window=timedelta(minutes=5), lock=timedelta(minutes=5))
    for second in range(3):
        member.refuse_activation(reason="wrong passphrase", now=T0 + timedelta(seconds=second),
                                 throttle=throttle)
    locked_at = T0 + timedelta(seconds=2)
    assert member.activation_refusal(token=text, now=locked_at) == \
        "the token is locked after repeated failed attempts"
    last = member.events[-1]
    assert isinstance(last, ev.ActivationRefused) and last.locked
    assert member.activation_refusal(token=text, now=locked_at + timedelta(minutes=5)) is None


def test_failures_outside_the_window_do_not_add_up() -> None:
    member, text = _pending()
    throttle = ThrottlePolicy(failures=3, window=timedelta(minutes=5), lock=timedelta(minutes=5))
    for minutes in (0, 6, 12):
        member.refuse_activation(reason="x", now=T0 + timedelta(minutes=minutes), throttle=throttle)
    assert member.activation_refusal(token=text, now=T0 + timedelta(minutes=12)) is None


def test_preferences_change_needs_a_reason_from_staff() -> None:
    member, _ = _pending()
    with pytest.raises(PolicyViolation):
        member.update_preferences(preferences=Preferences(email="n@b.c"), reason="", now=T0,
                                  actor="staff")
    member.update_preferences(preferences=Preferences(email="n@b.c"), reason="moved", now=T0,
                              actor="staff")
    event = member.events[-1]
    assert isinstance(event, ev.PreferencesChanged) and event.fields == ("email",)


def test_password_reset_and_history() -> None:
    member, _ = _active()
    reset_text = "RESETTOKEN"
    member.request_password_reset(reset=ActivationToken.issue(reset_text, BOX, T0, timedelta(hours=24)),
                                  now=T0, actor="staff")
    with pytest.raises(TransitionRefused, match="expired"):
        member.complete_password_reset(token=reset_text, password_hash="h2", history=2,
                                       now=T0 + timedelta(hours=24, seconds=1))
    member.complete_password_reset(token=reset_text, password_hash="h2", history=2, now=T0)
    assert member.password_hash == "h2" and member.password_history == ("h1",)
    assert member.reset is None


def test_a_reset_token_is_valid_to_its_second_and_works_once() -> None:
    member, _ = _active()
    member.request_password_reset(reset=ActivationToken.issue("ONCE", BOX, T0, timedelta(hours=24)),
                                  now=T0, actor=member.id)
    end = T0 + timedelta(hours=24)
    assert member.reset_refusal(token="ONCE", now=end) is None  # valid up to its last second
    assert member.reset_refusal(token="ONCE", now=end + timedelta(seconds=1)) == "the reset token expired"
    member.complete_password_reset(token="ONCE", password_hash="h2", history=5, now=end)
    with pytest.raises(TransitionRefused, match="does not match"):
        member.complete_password_reset(token="ONCE", password_hash="h3", history=5, now=end)


def test_pending_member_cannot_reset_a_password() -> None:
    member, _ = _pending()
    with pytest.raises(TransitionRefused):
        member.request_password_reset(reset=ActivationToken.issue("X", BOX, T0, H72), now=T0,
                                      actor="staff")


def test_hash_upgrade_only_when_the_password_did_not_change() -> None:
    member, _ = _active()
    assert not member.upgrade_password_hash(expected="other", new_hash="h9", now=T0)
    assert member.upgrade_password_hash(expected="h1", new_hash="h9", now=T0)
    assert member.password_hash == "h9"


def test_password_expiry() -> None:
    member, _ = _active()
    assert not member.password_expired(T0 + timedelta(days=999), None)
    assert not member.password_expired(T0 + timedelta(days=90), timedelta(days=90))
    assert member.password_expired(T0 + timedelta(days=90, seconds=1), timedelta(days=90))
