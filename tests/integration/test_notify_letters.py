"""Printed activation letters: parsed back from the PDF, and page 1 as a picture."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pypdfium2
import pytest
from pypdf import PdfReader

from mpi.model import Address, Demographics, PersonName
from outbound.notify import ActivationLetter, LetterPrinter, postal_recipient, render_letter, render_letters
from tests.unit.notify.notify_support import TOKEN, site_rules

RULES = site_rules(letter={"return_address": ["Good Health Hospital", "Patient Portal Office",
                                              "100 Main Street", "Springfield, IL 62701"]})
EXPIRES = datetime(2026, 3, 7, 20, 30, tzinfo=UTC)


def letter(**changes: object) -> ActivationLetter:
    values: dict[str, object] = {
        "member_id": "mem-42", "locale": "en-US", "name": "María José Gómez-Núñez",
        "address_lines": ("1234 Elm Street, Apt 5", "Springfield, IL 62704"), "token": TOKEN,
        "expires_at": EXPIRES, "passphrase": None}
    values.update(changes)
    return ActivationLetter(**values)  # type: ignore[arg-type]


def pages_text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def test_one_letter_holds_name_address_token_and_how_and_by_when_to_activate() -> None:
    pdf = render_letter(letter(passphrase="maple river lantern"), RULES)
    assert pdf.startswith(b"%PDF-")
    [text] = pages_text(pdf)
    for expected in ("María José Gómez-Núñez", "1234 Elm Street, Apt 5", "Springfield, IL 62704", TOKEN,
                     "maple river lantern", "Go to https://portal.example.org/activate",
                     "March 7, 2026", "the help desk at (555) 010-0100", "Good Health Hospital"):
        assert expected in text, expected
    assert text.index("Good Health Hospital") < text.index("María José") < text.index(TOKEN)


def test_the_passphrase_is_printed_only_when_the_policy_sends_it() -> None:
    [text] = pages_text(render_letter(letter(), RULES))
    assert TOKEN in text and "passphrase" not in text.lower()


def test_many_letters_one_pdf_one_page_each_in_each_members_locale() -> None:
    letters = [letter(member_id=f"mem-{n}", token=f"TOKEN-{n:04d}", locale="es-US" if n % 2 else "en-US",
                      name=f"Patient {n}", address_lines=(f"{n} Oak Ave", "Chicago, IL 60601"))
               for n in range(6)]
    texts = pages_text(render_letters(letters, RULES))
    assert len(texts) == 6
    for n, text in enumerate(texts):
        assert f"TOKEN-{n:04d}" in text and f"Patient {n}" in text and f"{n} Oak Ave" in text
        assert ("Active su cuenta" in text) == bool(n % 2)
    with pytest.raises(ValueError, match="no letters"):
        render_letters([], RULES)


def test_names_in_other_scripts_print_as_written() -> None:
    [text] = pages_text(render_letter(letter(name="Łukasz Żółć Ørsted Σωκράτης Дмитрий"), RULES))
    assert "Łukasz Żółć Ørsted Σωκράτης Дмитрий" in text


def test_page_one_as_a_picture_a_person_can_look_at(tmp_path: Path) -> None:
    pdf = LetterPrinter(RULES, now=lambda: datetime(2026, 3, 4, tzinfo=UTC)).render([letter()])
    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=1.5).to_pil()
    finally:
        document.close()
    path = tmp_path / "activation-letter-page-1.png"
    image.save(path)
    assert path.stat().st_size > 10_000
    assert image.size == (918, 1188)  # US Letter at 108 dpi
    grey = image.convert("L")
    dark = sum(grey.histogram()[:128])
    assert dark > 5_000, "the page should carry text"
    assert grey.getextrema()[1] == 255  # and white paper around it


def test_postal_recipient_from_the_mpi_best_demographics() -> None:
    best = Demographics(
        names=(PersonName(family="Gomez", given=("Maria",), use="usual"),
               PersonName(family="Gómez-Núñez", given=("María", "José"), prefix="Ms.", use="official")),
        addresses=(Address(lines=("9 Old Road",), city="Peoria", state="IL", postal_code="61602", use="old"),
                   Address(lines=("1234 Elm Street", "Apt 5"), city="Springfield", state="IL",
                           postal_code="62704", country="US", use="home")))
    assert postal_recipient(best) == ("Ms. María José Gómez-Núñez",
                                      ("1234 Elm Street", "Apt 5", "Springfield, IL 62704"))
    abroad = Demographics(names=(PersonName(family="Roy", given=("Anne",)),),
                          addresses=(Address(lines=("5 rue Haute",), city="Montréal", state="QC",
                                             postal_code="H2X 1Y4", country="CA"),))
    assert postal_recipient(abroad) == ("Anne Roy", ("5 rue Haute", "Montréal, QC H2X 1Y4", "CA"))
    with pytest.raises(ValueError, match="no postal address"):
        postal_recipient(Demographics(names=(PersonName(family="Doe"),)))
