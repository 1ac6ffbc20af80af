"""Segments glued together: a lost segment separator leaves a segment inside another one.

A sender that drops the CR after ``PID|1||100^^^NGH^MR||DOE^JANE|||`` sends
``...|||PV1|1|O|...``: read as it is, PV1's fields become PID-10, PID-11, ... and PID-31 and
up, and nothing says so. A field that holds exactly a standard segment name and is followed
by more fields is taken for such a seam. Routes refuse the message there (``AR`` with ERR at
that segment and field) or, with ``glued_segments: split``, cut it into two segments and
apply it with a warning in the acknowledgement.

Z-segments and a few names that are also ordinary words or codes (LOC, ORG, ...) are not
looked for, and a header name (MSH, FHS, BHS) counts only when its encoding characters follow
(MSH is also a religion code, table 0006), so that a field holding such a value is never
mistaken for a seam.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import InvalidMessage
from inbound.hl7.reader import Er7Message

__all__ = ["SEGMENT_NAMES", "GluedSegment", "find_glued", "split_glued"]

#: The segment names of HL7 v2.1 to v2.8 (hl7apy's tables), less ordinary words and codes.
SEGMENT_NAMES = frozenset({
    "ABS", "ACC", "ADJ", "AFF", "AIG", "AIL", "AIP", "AIS", "AL1", "APR", "ARQ", "ARV", "AUT",
    "BHS", "BLC", "BLG", "BPO", "BPX", "BTS", "BTX", "BUI", "CDM", "CDO", "CER", "CM0", "CM1",
    "CM2", "CNS", "CSP", "CSR", "CSS", "CTD", "CTI", "DB1", "DG1", "DMI", "DON", "DPS", "DRG",
    "DSC", "DSP", "ECD", "ECR", "EQL", "EQP", "EQU", "ERQ", "ERR", "EVN", "FHS", "FT1", "FTS",
    "GOL", "GP1", "GP2", "GT1", "IAM", "IAR", "IIM", "ILT", "IN1", "IN2", "IN3", "INV", "IPC",
    "IPR", "ISD", "ITM", "IVC", "IVT", "LCC", "LCH", "LDP", "LRL", "MCP", "MFA", "MFE", "MFI",
    "MRG", "MSA", "MSH", "NCK", "NDS", "NK1", "NPU", "NSC", "NST", "NTE", "OBR", "OBX", "ODS",
    "ODT", "OM1", "OM2", "OM3", "OM4", "OM5", "OM6", "OM7", "OMC", "ORC", "ORO", "OVR", "PAC",
    "PCE", "PCR", "PD1", "PDA", "PDC", "PEO", "PES", "PID", "PKG", "PM1", "PMT", "PR1", "PRA",
    "PRB", "PRC", "PRD", "PRT", "PSG", "PSH", "PSL", "PSS", "PTH", "PV1", "PV2", "PYE", "QAK",
    "QID", "QPD", "QRD", "QRF", "QRI", "RCP", "RDF", "RDT", "RF1", "RFI", "RGS", "RMI", "ROL",
    "RQ1", "RQD", "RX1", "RXA", "RXC", "RXD", "RXE", "RXG", "RXO", "RXR", "RXV", "SAC", "SCD",
    "SCH", "SCP", "SDD", "SFT", "SGH", "SGT", "SHP", "SID", "SLT", "SPM", "SPR", "STF", "STZ",
    "TCC", "TCD", "TQ1", "TQ2", "TXA", "UAC", "UB1", "UB2", "URD", "URS", "VND", "VTQ",
})

_PATTERNS: dict[str, re.Pattern[str]] = {}
_HEADERS = frozenset({"MSH", "FHS", "BHS"})


@dataclass(frozen=True, slots=True)
class GluedSegment:
    """Where a segment name sits inside another segment."""

    holder: str  # the segment that holds it (PID)
    occurrence: int  # which of the holder's name (1 for the first PID)
    field: int  # the field holding the name
    name: str  # the glued segment's name (PV1)
    index: int  # the holder's position among the message's segments (0 = MSH)
    offset: int  # where the name starts in the holder's text

    @property
    def location(self) -> str:
        """``PID-10``, or ``PID(2)-10`` for the second PID."""
        label = self.holder if self.occurrence == 1 else f"{self.holder}({self.occurrence})"
        return f"{label}-{self.field}"

    def refusal(self) -> InvalidMessage:
        return InvalidMessage(
            f"{self.location} holds the segment name {self.name} followed by more fields: the "
            f"segment separator before {self.name} seems lost (segments glued together); "
            "resend with the segments apart, or set glued_segments: split on the route",
            self.location, code="100")

    def warning(self) -> str:
        return f"{self.location}: segment {self.name} was glued to {self.holder} and split off"


def find_glued(message: Er7Message) -> list[GluedSegment]:
    """Every field that holds a segment name followed by further fields."""
    separator = message.delimiters.field
    text = message.to_er7()
    pattern = _PATTERNS.get(separator)
    if pattern is None:
        sep = re.escape(separator)
        pattern = _PATTERNS.setdefault(separator, re.compile(f"{sep}([A-Z][A-Z0-9]{{2}})(?={sep})"))
    # The common case in one pass at C speed: no field anywhere is exactly a segment name.
    if not any(m.group(1) in SEGMENT_NAMES for m in pattern.finditer(text)):
        return []
    found: list[GluedSegment] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(text.split("\r")):
        name = raw[:3]
        seen[name] = seen.get(name, 0) + 1
        for match in pattern.finditer(raw, 3):
            start = match.start(1)
            if match.group(1) in SEGMENT_NAMES and _begins_segment(match.group(1), raw, match.end(),
                                                                   separator):
                # In MSH, field 1 is the separator itself: one more than the count before.
                field = raw.count(separator, 0, start) + (1 if name == "MSH" else 0)
                found.append(GluedSegment(name, seen[name], field, match.group(1), index, start))
    return found


def _begins_segment(name: str, raw: str, end: int, separator: str) -> bool:
    """A header segment (MSH, FHS, BHS) glued on is followed by its encoding characters; a
    field that merely holds the code (religion MSH, say) is not."""
    if name not in _HEADERS:
        return True
    following = raw[end + 1:].split(separator, 1)[0]
    return len(following) in (4, 5) and len(set(following)) == len(following) and not any(
        c.isalnum() for c in following)


def split_glued(message: Er7Message, glued: list[GluedSegment]) -> str:
    """The message's text with a segment separator put back before every glued name."""
    segments = message.to_er7().split("\r")
    for seam in sorted(glued, key=lambda g: (g.index, g.offset), reverse=True):
        raw = segments[seam.index]
        segments[seam.index] = raw[:seam.offset] + "\r" + raw[seam.offset:]
    return "\r".join(segments)
