"""``portalbridge config check`` for notifications: every kind renders in every locale.

For each configured locale and each kind, every template part must exist (in the analysts'
folder or among the shipped ones) and render with the kind's sample context; subjects must
be one line, text messages must fit ``sms_max_parts`` parts, and the letter must lay out as
a PDF. Problems name the template file, so an analyst knows which one to fix.
"""

from __future__ import annotations

from datetime import UTC, datetime

from babel import Locale, UnknownLocaleError

from engine.notification_rules import NotificationRules
from engine.notifications import DeliveryFailed
from outbound.notify.kinds import KINDS, LETTER, Kind
from outbound.notify.letters import ActivationLetter, LetterPrinter
from outbound.notify.render import NotificationRenderer
from outbound.notify.smstext import split_parts, to_gsm
from outbound.notify.templates import template_name

__all__ = ["check_templates", "count_templates"]


def count_templates(rules: NotificationRules) -> int:
    """How many template files the configured locales use."""
    return len(rules.locales) * sum(len(kind.parts) for kind in KINDS.values())


def check_templates(rules: NotificationRules) -> list[str]:
    """Every problem with the notification templates of ``rules``; empty when all render."""
    folder = rules.templates_folder
    if folder is not None and not folder.is_dir():
        return [f"notifications.templates_folder: {folder} is not a folder"]
    renderer = NotificationRenderer(rules)
    problems: list[str] = []
    for locale in rules.locales:
        if not _known_locale(locale):
            problems.append(f"notifications.locales: '{locale}' is not a locale Babel knows")
            continue
        for kind in KINDS.values():
            problems += _kind_problems(renderer, locale, kind)
    return problems


def _known_locale(locale: str) -> bool:
    try:
        Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return False
    return True


def _kind_problems(renderer: NotificationRenderer, locale: str, kind: Kind) -> list[str]:
    context = renderer.context(kind, locale, kind.sample)
    problems = [problem for part in kind.parts
                if (problem := renderer.templates.problem(locale, kind.name, part, context))]
    if problems:
        return problems
    if "subject.txt" in kind.parts:
        problems += _subject_problems(renderer, locale, kind)
    if "sms.txt" in kind.parts:
        problems += _sms_problems(renderer, locale, kind)
    if kind is LETTER:
        problems += _letter_problems(renderer, locale)
    return problems


def _subject_problems(renderer: NotificationRenderer, locale: str, kind: Kind) -> list[str]:
    subject = renderer.email(kind.name, locale, kind.sample).subject
    return [] if subject else [f"{template_name(locale, kind.name, 'subject.txt')}: renders empty"]


def _sms_problems(renderer: NotificationRenderer, locale: str, kind: Kind) -> list[str]:
    parts = split_parts(to_gsm(renderer.sms(kind.name, locale, kind.sample)))
    limit = renderer.rules.sms_max_parts
    if len(parts) <= limit:
        return []
    return [f"{template_name(locale, kind.name, 'sms.txt')}: the sample needs {len(parts)} text "
            f"messages (notifications.sms_max_parts is {limit})"]


def _letter_problems(renderer: NotificationRenderer, locale: str) -> list[str]:
    sample = LETTER.sample
    letter = ActivationLetter(
        member_id="sample", locale=locale, name=sample["name"], token=sample["token"],
        address_lines=("1234 Elm Street, Apt 5", "Springfield, IL 62704"),
        expires_at=datetime.fromisoformat(sample["expires_at"]), passphrase=sample["passphrase"])
    try:
        LetterPrinter(renderer.rules, renderer, now=lambda: datetime.now(UTC)).render([letter])
    except DeliveryFailed as exc:
        return [exc.reason]
    except Exception as exc:  # noqa: BLE001 - fpdf2 reports layout problems with many types
        return [f"{template_name(locale, LETTER.name, 'letter.html')}: cannot lay out the letter "
                f"({type(exc).__name__}: {exc})"]
    return []
