"""Donations through GraphQL: recording, refusals with reasons, eligibility, history, who sees what."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api, World, error_codes

REGISTER = "mutation($input: RegisterDonorInput!) { registerDonor(input: $input) { id version } }"
RECORD = """mutation($input: RecordDonationInput!) {
  recordDonation(input: $input) {
    din donorId siteId donationType collectedAt recordedBy haemoglobinGdl
    units { id din component bloodGroup status siteId collectedAt expiresAt }
  }
}"""
DONOR = """query($id: ID!, $limit: Int, $next: String) {
  getDonor(id: $id) {
    id donationCount lastDonationAt dateOfBirth sex
    address { line1 city postalCode country }
    notificationPreferences { consentedAt channels kinds }
    eligibility { donationType eligible nextEligibleAt reasons ruleSet }
    donations(limit: $limit, nextToken: $next) {
      items { din donationType units { id status } }
      nextToken
    }
  }
}"""
DONOR_INPUT = {
    "firstName": "Ann",
    "lastName": "Lee",
    "email": "ann@example.org",
    "siteId": "site-north",
    "bloodGroup": "A_POS",
    "dateOfBirth": "1990-01-02",
    "sex": "FEMALE",
    "weightKg": 70,
    "address": {"line1": "1 Main St", "city": "Chicago", "postalCode": "60601", "country": "us"},
    "notificationPreferences": {"consent": True, "channels": ["EMAIL"]},
}


def register(api: Api, **extra: Any) -> str:
    body = api.gql(REGISTER, {"input": {**DONOR_INPUT, **extra}}, token=api.tokens("Staff"))
    assert "errors" not in body, body
    return str(body["data"]["registerDonor"]["id"])


def record(api: Api, donor_id: str, token: str | None = None, **extra: Any) -> dict[str, Any]:
    values = {"donorId": donor_id, "donationType": "WHOLE_BLOOD", "haemoglobinGdl": 13.4, **extra}
    return api.gql(RECORD, {"input": values}, token=token or api.tokens("Staff", sub="nurse-1"))


def test_staff_record_a_donation_and_get_din_labelled_quarantined_units(api: Api, world: World) -> None:
    donor_id = register(api)
    body = record(api, donor_id)
    assert "errors" not in body, body
    donation = body["data"]["recordDonation"]
    assert donation["din"] == "W123426000001" + donation["din"][-1]
    assert (donation["donorId"], donation["siteId"], donation["recordedBy"]) == (
        donor_id,
        "site-north",
        "nurse-1",
    )
    assert donation["haemoglobinGdl"] == 13.4
    assert [(u["id"], u["component"], u["status"], u["bloodGroup"]) for u in donation["units"]] == [
        (donation["din"] + "-RC", "RED_CELLS", "QUARANTINED", "A_POS"),
        (donation["din"] + "-FP", "PLASMA", "QUARANTINED", "A_POS"),
    ]
    assert donation["units"][0]["expiresAt"] == "2027-01-03T09:00:00.000Z"  # 42 days
    # The thank-you went out on the channel the donor chose.
    assert [(m.kind.value, m.channel.value, m.to) for m in world.notifier.sent] == [
        ("DONATION_THANKS", "EMAIL", "ann@example.org")
    ]


def test_an_ineligible_donor_is_refused_with_reasons_and_nothing_is_written(api: Api, world: World) -> None:
    donor_id = register(api)
    record(api, donor_id)
    world.clock.advance(days=20)
    body = record(api, donor_id)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["errorType"] == "DonorNotEligible"
    assert error["extensions"]["reasons"] == [
        "56 days must pass after a whole blood donation (last on 2026-11-22)"
    ]
    assert error["extensions"]["nextEligibleAt"].startswith("2027-01-17T09:00:00")
    assert body["data"] is None
    assert len(world.donations.donations) == 1
    assert len(world.donations.units) == 2


def test_eligibility_and_history_on_the_donor(api: Api, world: World) -> None:
    donor_id = register(api)
    first = record(api, donor_id, donationType="PLATELETS")["data"]["recordDonation"]["din"]
    world.clock.advance(days=7)
    second = record(api, donor_id, donationType="PLATELETS")["data"]["recordDonation"]["din"]
    body = api.gql(DONOR, {"id": donor_id, "limit": 1}, token=api.tokens("Staff"))
    assert "errors" not in body, body
    donor = body["data"]["getDonor"]
    assert (donor["donationCount"], donor["dateOfBirth"], donor["sex"]) == (2, "1990-01-02", "FEMALE")
    assert donor["address"] == {
        "line1": "1 Main St",
        "city": "Chicago",
        "postalCode": "60601",
        "country": "US",
    }
    assert donor["notificationPreferences"]["channels"] == ["EMAIL"]
    assert donor["notificationPreferences"]["consentedAt"] == "2026-11-22T09:00:00.000Z"
    answers = {e["donationType"]: e for e in donor["eligibility"]}
    assert answers["PLATELETS"]["eligible"] is False
    assert answers["PLATELETS"]["ruleSet"] == "US-2026.1"
    assert answers["PLATELETS"]["nextEligibleAt"] == "2026-12-06T09:00:00.000Z"
    assert answers["WHOLE_BLOOD"]["reasons"] == [
        "7 days must pass after a platelets donation (last on 2026-11-29)"
    ]
    page = donor["donations"]
    assert [d["din"] for d in page["items"]] == [second]
    page2 = api.gql(DONOR, {"id": donor_id, "limit": 1, "next": page["nextToken"]}, token=api.tokens("Staff"))
    assert [d["din"] for d in page2["data"]["getDonor"]["donations"]["items"]] == [first]


def test_units_of_a_page_of_donations_are_read_in_one_batch(api: Api, world: World) -> None:
    donor_id = register(api)
    for _ in range(3):
        record(api, donor_id, donationType="PLASMA")
        world.clock.advance(days=28)
    world.donations.calls.clear()
    body = api.gql(DONOR, {"id": donor_id, "limit": 10}, token=api.tokens("Staff"))
    assert len(body["data"]["getDonor"]["donations"]["items"]) == 3
    assert [c[0] for c in world.donations.calls].count("get_many") == 1


def test_who_may_record_and_see_donations(api: Api) -> None:
    donor_id = register(api)
    assert error_codes(record(api, donor_id, token=api.tokens("Donors", sub=donor_id))) == ["FORBIDDEN"]
    assert error_codes(record(api, donor_id, token=api.tokens("Hospitals"))) == ["FORBIDDEN"]
    record(api, donor_id)
    # The donor sees their own donations and eligibility, but not the staff-only haemoglobin.
    own = api.gql(DONOR, {"id": donor_id}, token=api.tokens("Donors", sub=donor_id))
    assert "errors" not in own, own
    assert own["data"]["getDonor"]["donationCount"] == 1
    hb = api.gql(
        "query($id: ID!) { getDonor(id: $id) { donations { items { haemoglobinGdl } } } }",
        {"id": donor_id},
        token=api.tokens("Donors", sub=donor_id),
    )
    assert error_codes(hb) == ["FORBIDDEN"]
    notes = api.gql(
        "query($id: ID!) { getDonor(id: $id) { medicalNotes weightKg } }",
        {"id": donor_id},
        token=api.tokens("Donors", sub=donor_id),
    )
    assert error_codes(notes) == ["FORBIDDEN", "FORBIDDEN"]


def test_bad_donation_input_names_the_fields(api: Api) -> None:
    donor_id = register(api)
    body = record(api, donor_id, haemoglobinGdl=40, weightKg=2)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert {f["field"] for f in error["extensions"]["fields"]} == {"input.haemoglobinGdl", "input.weightKg"}
    assert error_codes(record(api, "nobody")) == ["NOT_FOUND"]
    assert error_codes(record(api, donor_id, donationType="BLOOD")) == ["BAD_USER_INPUT"]
    assert error_codes(record(api, donor_id, collectedAt="yesterday")) == ["BAD_USER_INPUT"]


def test_deferral_through_graphql(api: Api) -> None:
    donor_id = register(api)
    body = api.gql(
        """mutation($input: DeferDonorInput!) {
          deferDonor(input: $input) { id version deferrals { reason endsOn permanent note } }
        }""",
        {
            "input": {
                "donorId": donor_id,
                "reason": "RECENT_TRAVEL",
                "endsOn": "2027-03-01",
                "note": "Malaria area",
            }
        },
        token=api.tokens("Staff"),
    )
    assert "errors" not in body, body
    assert body["data"]["deferDonor"]["deferrals"] == [
        {"reason": "RECENT_TRAVEL", "endsOn": "2027-03-01", "permanent": False, "note": "Malaria area"}
    ]
    refused = record(api, donor_id)
    assert refused["errors"][0]["extensions"]["reasons"] == ["deferred until 2027-03-01 (recent travel)"]
    bad_date = api.gql(
        'mutation { deferDonor(input: {donorId: "x", reason: OTHER, endsOn: "2027-02-30"}) { id } }',
        token=api.tokens("Staff"),
    )
    assert error_codes(bad_date) == ["BAD_USER_INPUT"]


def test_a_donor_cannot_set_staff_only_fields(api: Api) -> None:
    donor = api.tokens("Donors", sub="self-1")
    body = api.gql(REGISTER, {"input": {**DONOR_INPUT, "bloodGroup": None, "weightKg": 80}}, token=donor)
    assert error_codes(body) == ["FORBIDDEN"]
    body = api.gql(
        REGISTER,
        {"input": {**DONOR_INPUT, "bloodGroup": None, "weightKg": None, "medicalNotes": "x"}},
        token=donor,
    )
    assert error_codes(body) == ["FORBIDDEN"]


def test_a_donor_changes_their_own_notification_preferences(api: Api, world: World) -> None:
    me = api.tokens("Donors", sub="self-2")
    body = api.gql(REGISTER, {"input": {**DONOR_INPUT, "bloodGroup": None, "weightKg": None}}, token=me)
    assert "errors" not in body, body
    update = """mutation($input: UpdateDonorInput!) {
      updateDonor(input: $input) { version notificationPreferences { consentedAt channels kinds } }
    }"""
    withdrawn = api.gql(
        update,
        {"input": {"id": "self-2", "expectedVersion": 1, "notificationPreferences": {"consent": False}}},
        token=me,
    )
    assert withdrawn["data"]["updateDonor"]["notificationPreferences"] == {
        "consentedAt": None,
        "channels": [],
        "kinds": ["DONATION_THANKS", "ELIGIBLE_AGAIN", "BLOOD_ISSUED", "APPEAL"],
    }
    world.clock.advance(days=1)
    again = api.gql(
        update,
        {
            "input": {
                "id": "self-2",
                "expectedVersion": 2,
                "notificationPreferences": {
                    "consent": True,
                    "channels": ["SMS"],
                    "kinds": ["ELIGIBLE_AGAIN"],
                },
            }
        },
        token=me,
    )
    prefs = again["data"]["updateDonor"]["notificationPreferences"]
    assert prefs == {
        "consentedAt": "2026-11-23T09:00:00.000Z",
        "channels": ["SMS"],
        "kinds": ["ELIGIBLE_AGAIN"],
    }
