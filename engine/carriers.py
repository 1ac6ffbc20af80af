"""Mobile carriers: the "Phone Provider" list, and each carrier's e-mail-to-SMS gateway.

A text message to a member is sent as a short e-mail to ``<10 digits>@<gateway domain>``;
the carrier turns it into an SMS. The gateway domains below are the carriers' published
ones, as collected in the public lists of carrier gateways (the ``email_sms_mms_gateways``
list by CubicleSoft and the list derived from Wikipedia's "SMS gateway" article), checked
against each other. US carriers have been retiring these gateways in favour of registered
business messaging (10DLC): ``retired_on`` holds the day a carrier stopped (or will stop)
accepting mail, as the carriers announced it (AT&T 2025-06-17; T-Mobile stopped delivering
in December 2024; Verizon and the brands on its network 2027-03-31; Sprint's gateway went
with its network in 2022). From that day the gateway is refused for the carrier, so an
enrollment with Text for that carrier is a clear error instead of a message lost. Analysts
extend or override the table in ``routing.yaml`` (``notifications.carriers``), for example
with the gateway domain of a paid e-mail-to-SMS provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType

__all__ = ["SHIPPED_CARRIERS", "Carrier"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Carrier:
    """A mobile carrier members pick from the Phone Provider list."""

    key: str  # lower case, as enrollment requests name it
    name: str  # display name
    gateway: str | None  # e-mail-to-SMS domain; None when the carrier has none
    retired_on: date | None = None  # the gateway stops accepting mail on this day

    def gateway_open(self, on: date) -> bool:
        """Whether mail to the gateway can be delivered on day ``on``."""
        return self.gateway is not None and (self.retired_on is None or on < self.retired_on)

    def gateway_problem(self, on: date) -> str | None:
        """Why no text message can reach this carrier's members on day ``on``, or None."""
        if self.gateway is None:
            return f"{self.name} has no e-mail-to-SMS gateway configured"
        if not self.gateway_open(on):
            return (f"{self.name} retired its e-mail-to-SMS gateway ({self.gateway}) on "
                    f"{self.retired_on}; set notifications.carriers.{self.key}.gateway in "
                    f"routing.yaml to a gateway that delivers")
        return None


_VERIZON_SUNSET = date(2027, 3, 31)


def _table(*carriers: Carrier) -> Mapping[str, Carrier]:
    return MappingProxyType({carrier.key: carrier for carrier in carriers})


#: The major US carriers, by key.
SHIPPED_CARRIERS: Mapping[str, Carrier] = _table(
    Carrier(key="verizon", name="Verizon", gateway="vtext.com", retired_on=_VERIZON_SUNSET),
    Carrier(key="att", name="AT&T", gateway="txt.att.net", retired_on=date(2025, 6, 17)),
    Carrier(key="tmobile", name="T-Mobile", gateway="tmomail.net", retired_on=date(2024, 12, 1)),
    Carrier(key="sprint", name="Sprint", gateway="messaging.sprintpcs.com",
            retired_on=date(2022, 6, 30)),
    Carrier(key="uscellular", name="UScellular", gateway="email.uscc.net"),
    Carrier(key="cricket", name="Cricket Wireless", gateway="sms.cricketwireless.net"),
    Carrier(key="boost", name="Boost Mobile", gateway="sms.myboostmobile.com"),
    Carrier(key="metropcs", name="Metro by T-Mobile", gateway="mymetropcs.com"),
    Carrier(key="googlefi", name="Google Fi", gateway="msg.fi.google.com"),
    Carrier(key="consumer", name="Consumer Cellular", gateway="mailmymobile.net"),
    Carrier(key="cspire", name="C Spire", gateway="cspire1.com"),
    Carrier(key="xfinity", name="Xfinity Mobile", gateway="vtext.com", retired_on=_VERIZON_SUNSET),
    Carrier(key="visible", name="Visible", gateway="vtext.com", retired_on=_VERIZON_SUNSET),
)
