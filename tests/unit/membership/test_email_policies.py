"""Each e-mail policy in each mode, required fields and ages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from membership.enrollment import age_on, check_field_formats, choose_email, fields_match
from membership.errors import EnrollmentRefused, PolicyViolation
from membership.policies import (
    DEFAULT_REQUIRED_FIELDS,
    AutomatedEmailPolicy,
    EnrollmentMode,
    MembershipPolicies,
    PointOfCareEmailPolicy,
    RequiredField,
)
from mpi.model import Address, Demographics, Telecom

WITH_MPI = Demographics(emails=(Telecom("email", "mpi@example.org"),), ssn="123-45-6789",
                        mothers_maiden_name="O'Brien",
                        addresses=(Address(postal_code="02139"),))
WITHOUT_MPI = Demographics()
AUTO, POC = EnrollmentMode.AUTOMATED, EnrollmentMode.POINT_OF_CARE


def _auto(policy: AutomatedEmailPolicy) -> MembershipPolicies:
    return MembershipPolicies(automated_email=policy)


def _poc(policy: PointOfCareEmailPolicy) -> MembershipPolicies:
    return MembershipPolicies(point_of_care_email=policy)


def test_automated_use_supplied() -> None:
    policies = _auto(AutomatedEmailPolicy.USE_SUPPLIED)
    assert choose_email(AUTO, policies, "given@x.org", WITH_MPI).email == "given@x.org"
    with pytest.raises(EnrollmentRefused, match="supplies none"):
        choose_email(AUTO, policies, "", WITH_MPI)


def test_automated_use_mpi() -> None:
    policies = _auto(AutomatedEmailPolicy.USE_MPI)
    decision = choose_email(AUTO, policies, "given@x.org", WITH_MPI)
    assert (decision.email, decision.source) == ("mpi@example.org", "mpi")
    with pytest.raises(EnrollmentRefused, match="MPI has none"):
        choose_email(AUTO, policies, "given@x.org", WITHOUT_MPI)


def test_point_of_care_accept_user_supplied() -> None:
    policies = _poc(PointOfCareEmailPolicy.ACCEPT_USER_SUPPLIED)
    assert choose_email(POC, policies, "given@x.org", WITH_MPI).email == "given@x.org"
    nothing = choose_email(POC, policies, "", WITH_MPI)
    assert nothing.email == "" and nothing.printed_activation


def test_point_of_care_use_mpi_else_printed() -> None:
    policies = _poc(PointOfCareEmailPolicy.USE_MPI_ELSE_PRINTED)
    assert choose_email(POC, policies, "given@x.org", WITH_MPI).email == "mpi@example.org"
    printed = choose_email(POC, policies, "given@x.org", WITHOUT_MPI)
    assert printed.email == "" and printed.printed_activation


def test_point_of_care_user_supplied_if_no_mpi() -> None:
    policies = _poc(PointOfCareEmailPolicy.USER_SUPPLIED_IF_NO_MPI)
    assert choose_email(POC, policies, "given@x.org", WITH_MPI).email == "mpi@example.org"
    assert choose_email(POC, policies, "given@x.org", WITHOUT_MPI).email == "given@x.org"
    assert choose_email(POC, policies, "", WITHOUT_MPI).printed_activation


def test_required_fields_match_the_mpi_loosely_but_completely() -> None:
    fields = DEFAULT_REQUIRED_FIELDS
    assert fields_match(fields, {"ssn": "123456789", "mothers_maiden_name": "o'brien"}, WITH_MPI) is None
    assert fields_match(fields, {"ssn": "123456780", "mothers_maiden_name": "OBrien"},
                        WITH_MPI) == "ssn does not match the MPI"
    assert fields_match(fields, {"ssn": "", "mothers_maiden_name": ""}, WITHOUT_MPI) is not None


def test_custom_field_with_format_rule() -> None:
    postal = (RequiredField(name="postal_code", display="ZIP code", pattern=r"\d{5}"),)
    with pytest.raises(PolicyViolation, match="ZIP code is not in the expected format"):
        check_field_formats(postal, {"postal_code": "0213"})
    with pytest.raises(PolicyViolation, match="ZIP code is required"):
        check_field_formats(postal, {})
    check_field_formats(postal, {"postal_code": "02139"})
    assert fields_match(postal, {"postal_code": "02139"}, WITH_MPI) is None


@pytest.mark.parametrize(("birth", "age"), [("2013-03-01", 13), ("2013-03-02", 12), ("2013", None),
                                            ("", None)])
def test_age_on(birth: str, age: int | None) -> None:
    assert age_on(birth, datetime(2026, 3, 1, tzinfo=UTC)) == age
