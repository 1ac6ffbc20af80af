"""HL7 v2 data types (CX, XPN, XAD, XTN, DTM) read into the index's value types."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from engine.errors import InvalidMessage
from inbound.hl7.reader import HL7_NULL, Element
from mpi.model import Address, Identifier, PersonName, Telecom

__all__ = ["address", "dtm_date", "dtm_datetime", "identifier", "name", "telecom"]

_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$")

#: HL7 table 0200 name type -> FHIR NameUse.
_NAME_USE = {"L": "official", "D": "usual", "M": "maiden", "N": "nickname", "A": "usual",
             "C": "official", "B": "official", "S": "anonymous", "T": "temp", "U": ""}
#: HL7 table 0190 address type -> FHIR AddressUse.
_ADDRESS_USE = {"H": "home", "P": "home", "M": "home", "B": "work", "O": "work",
                "C": "temp", "BA": "old", "BI": "billing"}
#: HL7 table 0201 telecommunication use -> FHIR ContactPointUse.
_TELECOM_USE = {"PRN": "home", "ORN": "home", "WPN": "work", "VHN": "temp", "EMR": "",
                "ASN": "", "BPN": "work", "NET": ""}
#: HL7 table 0202 equipment type -> FHIR ContactPointSystem.
_EQUIPMENT = {"PH": "phone", "CP": "phone", "FX": "fax", "BP": "pager", "MD": "other",
              "TDD": "phone", "TTY": "phone", "SAT": "phone"}
_EMAIL_EQUIPMENT = {"INTERNET", "X.400"}


def _clean(value: str) -> str:
    return "" if value == HL7_NULL else value.strip()


def identifier(element: Element, default_authority: str,
               canonical_authority: Callable[..., str]) -> Identifier | None:
    """CX: ID (1), assigning authority HD (4: namespace & universal id), type code (5)."""
    value = _clean(element.component(1))
    if not value:
        return None
    type_code = _clean(element.component(5)).upper()
    authority = canonical_authority(_clean(element.component(4, 1)), _clean(element.component(4, 2)))
    if not authority and type_code not in {"SS", "SSN"}:
        authority = default_authority
    return Identifier(value, authority, type_code)


def name(element: Element) -> PersonName | None:
    """XPN: family (1.1), given (2), further given (3), suffix (4), prefix (5), type (7)."""
    family = _clean(element.component(1, 1))
    given = tuple(g for g in (_clean(element.component(2)), _clean(element.component(3))) if g)
    if not family and not given:
        return None
    return PersonName(family=family, given=given, suffix=_clean(element.component(4)),
                      prefix=_clean(element.component(5)),
                      use=_NAME_USE.get(_clean(element.component(7)).upper(), ""))


def address(element: Element) -> Address | None:
    """XAD: street (1.1), other designation (2), city (3), state (4), zip (5), country (6), type (7)."""
    # XAD-1 is SAD: line & street name & dwelling number; some senders split the line there.
    street = " ".join(x for x in (_clean(p) for p in element.subcomponents(1)[:3]) if x)
    lines = tuple(x for x in (street, _clean(element.component(2))) if x)
    result = Address(lines=lines, city=_clean(element.component(3)),
                     state=_clean(element.component(4)), postal_code=_clean(element.component(5)),
                     country=_clean(element.component(6)),
                     use=_ADDRESS_USE.get(_clean(element.component(7)).upper(), ""))
    return None if result == Address(use=result.use) else result


def telecom(element: Element, default_use: str) -> Telecom | None:
    """XTN: e-mail when the equipment is Internet/X.400 or the use is NET, else a number."""
    use_code = _clean(element.component(2)).upper()
    equipment = _clean(element.component(3)).upper()
    use = _TELECOM_USE.get(use_code, default_use) or default_use
    if equipment in _EMAIL_EQUIPMENT or use_code == "NET":
        address_ = _clean(element.component(4)) or _clean(element.component(1))
        return Telecom("email", address_, use) if address_ else None
    number = _number(element)
    if not number:
        return None
    if equipment == "CP":
        use = "mobile"
    return Telecom(_EQUIPMENT.get(equipment, "phone"), number, use)


def _number(element: Element) -> str:
    local = _clean(element.component(7))
    if not local:
        return _clean(element.component(1))
    country, area = _clean(element.component(5)), _clean(element.component(6))
    extension = _clean(element.component(8))
    number = f"+{country.lstrip('+')} " if country else ""
    number += f"({area}) {local}" if area else local
    return f"{number} x{extension}" if extension else number


def dtm_date(value: str, location: str) -> str:
    """A DTM/TS value as an ISO date, keeping its precision: 1961, 1961-06 or 1961-06-15."""
    parts = _dtm_parts(value, location)
    year, month, day = parts[0], parts[1], parts[2]
    return "-".join(p for p in (year, month, day) if p)


def dtm_datetime(value: str, location: str) -> str:
    """A DTM/TS value as ISO 8601, as precise as it was sent."""
    year, month, day, hour, minute, second, fraction, offset = _dtm_parts(value, location)
    text = "-".join(p for p in (year, month, day) if p)
    if hour:
        text += f"T{hour}:{minute or '00'}" + (f":{second}" if second else "") + (fraction or "")
        if offset:
            text += f"{offset[:3]}:{offset[3:]}"
    return text


def _dtm_parts(value: str, location: str) -> tuple[str, ...]:
    match = _DTM.match(value.strip())
    if match is None:
        raise InvalidMessage(f"{location} is not an HL7 date/time "
                             "(expected YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])", location, code="102")
    parts = tuple(p or "" for p in match.groups())
    try:
        date(int(parts[0]), int(parts[1] or 1), int(parts[2] or 1))
        if parts[3] and (int(parts[3]) > 23 or int(parts[4] or 0) > 59 or int(parts[5] or 0) > 60):
            raise ValueError("time out of range")
    except ValueError:
        raise InvalidMessage(f"{location} is not a valid calendar date or time", location,
                             code="102") from None
    return parts
