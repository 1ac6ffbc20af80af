"""Printed activation letters: a PDF ready to print, fold and mail in a window envelope.

Rendered with fpdf2: pure Python (a plain ``pip install``, no compiler or system library),
Unicode TrueType fonts with subsetting, and an HTML subset (``write_html``) so the letter's
wording is an analysts' template like every other notification (``activation_letter.
letter.html``). The layout around it is fixed: the site's return address at the top, the
member's name and postal address where a US #10 window envelope shows them, then the
template. DejaVu fonts ship with the package, so names and addresses in any Latin, Greek or
Cyrillic script print as written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import as_file, files
from pathlib import Path

from babel.dates import format_date
from fpdf import FPDF, FontFace, TextStyle

from engine.notification_rules import NotificationRules
from mpi.model import Address, Demographics, PersonName
from outbound.notify.kinds import LETTER
from outbound.notify.render import NotificationRenderer

__all__ = ["ActivationLetter", "LetterPrinter", "postal_recipient", "render_letter", "render_letters"]

_FONT = "dejavu"
_MONO = "dejavumono"
_LEFT_MM = 22.0  # the window of a #10 envelope starts 7/8 inch from the left edge
_ADDRESS_TOP_MM = 50.0  # and about 2 inches from the top of a letter folded in three
_BODY_TOP_MM = 88.0


@dataclass(frozen=True, kw_only=True)
class ActivationLetter:
    """What one letter says: to whom, where, and the activation details."""

    member_id: str
    locale: str
    name: str
    address_lines: tuple[str, ...]  # as printed: street lines, then "City, ST 12345"
    token: str
    expires_at: datetime
    passphrase: str | None = None  # only when the policy sends passphrases


def postal_recipient(best: Demographics) -> tuple[str, tuple[str, ...]]:
    """The name and the address lines to print, from the MPI's best demographics.

    Prefers the official (else usual, else first) name and the home (else first current)
    address; ``ValueError`` when there is no address to mail to.
    """
    name = _pick_name(best.names)
    address = _pick_address(best.addresses)
    if address is None:
        raise ValueError("the patient has no postal address in the MPI")
    return name, _address_lines(address)


def _pick_name(names: Sequence[PersonName]) -> str:
    ranked = sorted(names, key=lambda n: {"official": 0, "usual": 1}.get(n.use, 2))
    if not ranked:
        return ""
    best = ranked[0]
    return " ".join(part for part in (best.prefix, *best.given, best.family, best.suffix) if part)


def _pick_address(addresses: Sequence[Address]) -> Address | None:
    current = [a for a in addresses if a.use not in {"old", "billing"} and (a.lines or a.city)]
    current.sort(key=lambda a: 0 if a.use == "home" else 1)
    return current[0] if current else None


def _address_lines(address: Address) -> tuple[str, ...]:
    city_line = " ".join(p for p in (f"{address.city}," if address.city else "", address.state,
                                     address.postal_code) if p).rstrip(",")
    foreign = address.country and address.country.upper() not in {"US", "USA", "UNITED STATES"}
    return tuple(line for line in (*address.lines, city_line, address.country if foreign else "")
                 if line)


class LetterPrinter:
    """Renders activation letters, one page each, into one PDF."""

    def __init__(self, rules: NotificationRules, renderer: NotificationRenderer | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.rules = rules
        self.renderer = renderer or NotificationRenderer(rules)
        self._now = now

    def render(self, letters: Iterable[ActivationLetter]) -> bytes:
        """A PDF with one page per letter; ``ValueError`` when there are none."""
        pdf = self._document()
        for letter in letters:
            self._page(pdf, letter)
        if pdf.page == 0:
            raise ValueError("no letters to print")
        return bytes(pdf.output())

    def _document(self) -> FPDF:
        pdf = FPDF(format=self.rules.letter.paper, unit="mm")
        fonts = files("outbound.notify") / "fonts"
        for style, file in (("", "DejaVuSans.ttf"), ("B", "DejaVuSans-Bold.ttf"),
                            ("I", "DejaVuSans.ttf"), ("BI", "DejaVuSans-Bold.ttf")):
            with as_file(fonts / file) as path:
                pdf.add_font(_FONT, style, str(path))
        with as_file(fonts / "DejaVuSansMono.ttf") as path:
            pdf.add_font(_MONO, "", str(Path(path)))
            pdf.add_font(_MONO, "B", str(Path(path)))
        pdf.set_title("Activation letter")
        pdf.set_creator("portalbridge")
        pdf.set_margins(_LEFT_MM, 15, _LEFT_MM)
        pdf.set_auto_page_break(auto=True, margin=18)
        return pdf

    def _page(self, pdf: FPDF, letter: ActivationLetter) -> None:
        locale = self.rules.locale_for(letter.locale)
        html = self.renderer.part(LETTER.name, locale, "letter.html", self._values(letter, locale))
        pdf.add_page()
        self._block(pdf, self.rules.letter.return_address, top=14, size=9)
        self._block(pdf, (letter.name, *letter.address_lines), top=_ADDRESS_TOP_MM, size=11)
        pdf.set_xy(_LEFT_MM, _BODY_TOP_MM)
        pdf.set_font(_FONT, size=11)
        pdf.write_html(html, font_family=_FONT, tag_styles=_TAG_STYLES, li_prefix_color=_DARK)

    def _values(self, letter: ActivationLetter, locale: str) -> dict[str, str]:
        printed_on = format_date(self._now(), "long", locale=locale.replace("-", "_"))
        values = {"name": letter.name, "token": letter.token, "printed_on": printed_on,
                  "expires_at": letter.expires_at.isoformat()}
        if letter.passphrase:
            values["passphrase"] = letter.passphrase
        return values

    @staticmethod
    def _block(pdf: FPDF, lines: Iterable[str], *, top: float, size: float) -> None:
        pdf.set_font(_FONT, size=size)
        pdf.set_xy(_LEFT_MM, top)
        for line in lines:
            pdf.cell(h=size * 0.47, text=line, new_x="LMARGIN", new_y="NEXT")


_DARK = (20, 40, 90)
_TAG_STYLES = {
    "h1": TextStyle(font_size_pt=16, color=_DARK, t_margin=4, b_margin=1, font_style="B"),
    "h2": TextStyle(font_size_pt=12, color=_DARK, t_margin=5, b_margin=1, font_style="B"),
    "code": FontFace(family=_MONO, size_pt=15, emphasis="BOLD"),
    "p": TextStyle(t_margin=0, b_margin=2.5),
}


def render_letters(letters: Iterable[ActivationLetter], rules: NotificationRules) -> bytes:
    """Many letters in one PDF (``portalbridge letters --pending``), one page each."""
    return LetterPrinter(rules).render(letters)


def render_letter(letter: ActivationLetter, rules: NotificationRules) -> bytes:
    """One letter as a PDF (the Workbench's activation-letter download)."""
    return render_letters([letter], rules)
