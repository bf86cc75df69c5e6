"""Campaigns through the GraphQL API (fakes behind the ports): create, launch, the queue's jobs, stats,
recipients, pause and resume, one-click unsubscribe from the link in the message, donor segments."""

from __future__ import annotations

from datetime import date
from typing import Any

from bloodbank.domain.blood import BloodGroup
from bloodbank.domain.eligibility import Sex
from bloodbank.domain.identity import Group, Identity
from bloodbank.domain.notifications import Channel
from bloodbank.domain.recipients import ImportCounts, ListMember, ListStatus, RecipientList
from tests.conftest import Api, World, error_codes

TEMPLATE = """mutation($input: CreateEmailTemplateInput!) { createEmailTemplate(input: $input) { id } }"""
CREATE = """mutation($input: CreateCampaignInput!) { createCampaign(input: $input) {
  id name status templateId listId segment { bloodGroups siteId eligibleNow } sendAt expiresAt } }"""
LAUNCH = "mutation($id: ID!) { launchCampaign(id: $id) { id status launchedAt } }"
PAUSE = "mutation($id: ID!) { pauseCampaign(id: $id) { status pauseReason } }"
RESUME = "mutation($id: ID!) { resumeCampaign(id: $id) { status pauseReason } }"
CANCEL = "mutation($id: ID!) { cancelCampaign(id: $id) { status finishedAt } }"
GET = """query($id: ID!) { getCampaign(id: $id) { id status finishedAt stats {
  recipients queued sent delivered bounced complained opened clicked unsubscribed suppressed failed } } }"""
LIST = "query($s: CampaignStatus) { listCampaigns(status: $s) { items { id status } nextToken } }"
RECIPIENTS = """query($id: ID!, $s: DeliveryStatus, $t: String) {
  listCampaignRecipients(campaignId: $id, status: $s, limit: 50, nextToken: $t) {
    items { email status messageId sentAt reason } nextToken } }"""
STAFF = Identity("staff-1", "staff-1", frozenset({Group.STAFF}), "access")


def data(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]
    return result


def staff(api: Api) -> str:
    return api.tokens("Staff", sub="staff-1")


def template(api: Api, text: str = "Hello {{ first_name }}. Stop: {{ unsubscribe_url }}") -> str:
    created = data(
        api.gql(
            TEMPLATE,
            {"input": {"name": "Appeal", "subject": "We need you, {{ first_name }}", "text": text,
                       "html": f"<p>{text}</p>"}},
            token=staff(api),
        )
    )  # fmt: skip
    return str(created["createEmailTemplate"]["id"])


def a_list(world: World, members: int) -> str:
    lists = world.container.campaigns.lists
    list_id = f"list-{members}"
    now = world.clock()
    lists.create(
        RecipientList(
            list_id, "Regulars", ListStatus.READY, ("first_name",), ImportCounts(), now, now, "staff-1"
        )
    )
    lists.add_members(
        list_id, [ListMember(f"r{n:03d}@example.org", {"first_name": f"R{n}"}) for n in range(members)]
    )
    return list_id


def create(api: Api, **fields: Any) -> dict[str, Any]:
    created: dict[str, Any] = data(api.gql(CREATE, {"input": fields}, token=staff(api)))["createCampaign"]
    return created


def run_jobs(world: World) -> None:
    world.campaign_queue.drain(world.container.campaigns.handle)


def test_a_campaign_from_create_to_sent_with_its_stats_and_recipients(api: Api, world: World) -> None:
    list_id = a_list(world, 60)
    created = create(api, name="Winter", templateId=template(api), listId=list_id)
    assert (created["status"], created["listId"], created["segment"]) == ("DRAFT", list_id, None)
    launched = data(api.gql(LAUNCH, {"id": created["id"]}, token=staff(api)))["launchCampaign"]
    assert launched["status"] == "SENDING"
    assert launched["launchedAt"] is not None
    run_jobs(world)
    got = data(api.gql(GET, {"id": created["id"]}, token=staff(api)))["getCampaign"]
    assert got["status"] == "SENT"
    zero = dict.fromkeys(["delivered", "bounced", "complained", "opened", "clicked", "unsubscribed"], 0)
    assert got["stats"] == {"recipients": 60, "queued": 0, "sent": 60, "suppressed": 0, "failed": 0, **zero}
    assert len({e.to for _, e in world.mailer.sent}) == 60
    first = data(api.gql(RECIPIENTS, {"id": created["id"], "s": "SENT"}, token=staff(api)))[
        "listCampaignRecipients"
    ]
    rest = data(
        api.gql(RECIPIENTS, {"id": created["id"], "s": "SENT", "t": first["nextToken"]}, token=staff(api))
    )
    items = first["items"] + rest["listCampaignRecipients"]["items"]
    assert len(items) == 60
    assert all(i["status"] == "SENT" and i["messageId"] for i in items)
    listed = data(api.gql(LIST, {"s": "SENT"}, token=staff(api)))["listCampaigns"]["items"]
    assert [c["id"] for c in listed] == [created["id"]]


def test_the_one_click_link_in_the_message_unsubscribes_and_a_get_does_not(api: Api, world: World) -> None:
    campaign = create(api, name="W", templateId=template(api), listId=a_list(world, 2))["id"]
    api.gql(LAUNCH, {"id": campaign}, token=staff(api))
    run_jobs(world)
    _, message = world.mailer.sent[0]
    link = message.headers["List-Unsubscribe"].strip("<>")
    path = link.split("://", 1)[1].split("/", 1)[1]
    assert link in message.text
    assert api.client.get(f"/{path}").status_code == 200
    assert world.suppressions.entries == {}
    response = api.client.post(f"/{path}", content="List-Unsubscribe=One-Click",
                               headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert response.status_code == 200
    assert len(world.suppressions.entries) == 1
    recipients = data(api.gql(RECIPIENTS, {"id": campaign, "s": "UNSUBSCRIBED"}, token=staff(api)))
    assert [i["email"] for i in recipients["listCampaignRecipients"]["items"]] == [message.to]
    stats = data(api.gql(GET, {"id": campaign}, token=staff(api)))["getCampaign"]["stats"]
    assert stats["unsubscribed"] == 1


def test_pause_resume_and_cancel(api: Api, world: World) -> None:
    campaign = create(api, name="W", templateId=template(api), listId=a_list(world, 5))["id"]
    api.gql(LAUNCH, {"id": campaign}, token=staff(api))
    assert data(api.gql(PAUSE, {"id": campaign}, token=staff(api)))["pauseCampaign"] == {
        "status": "PAUSED", "pauseReason": "BY_USER"}  # fmt: skip
    run_jobs(world)
    assert world.mailer.sent == []
    assert data(api.gql(RESUME, {"id": campaign}, token=staff(api)))["resumeCampaign"]["status"] == "SENDING"
    run_jobs(world)
    assert len(world.mailer.sent) == 5
    done = api.gql(CANCEL, {"id": campaign}, token=staff(api))
    assert error_codes(done) == ["CONFLICT"]
    assert done["errors"][0]["extensions"]["errorType"] == "IllegalTransition"


def test_bad_requests_get_clear_errors(api: Api, world: World) -> None:
    template_id = template(api)
    both = api.gql(CREATE, {"input": {"name": "W", "templateId": template_id, "listId": "x",
                                      "segment": {"bloodGroups": ["O_NEG"]}}}, token=staff(api))  # fmt: skip
    assert error_codes(both) == ["BAD_USER_INPUT"]
    fields = {f["field"] for f in both["errors"][0]["extensions"]["fields"]}
    assert "input" in fields
    assert error_codes(api.gql(LAUNCH, {"id": "nope"}, token=staff(api))) == ["NOT_FOUND"]
    assert error_codes(api.gql(GET, {"id": "x"}, token=api.tokens("Donors"))) == ["FORBIDDEN"]
    assert error_codes(api.gql(GET, {"id": "x"}, token=api.tokens("Hospitals"))) == ["FORBIDDEN"]
    assert error_codes(api.gql(GET, {"id": "x"})) == ["UNAUTHENTICATED"]
    needs_group = template(api, "Your group {{ blood_group }}")
    campaign = create(api, name="W", templateId=needs_group, listId=a_list(world, 1))["id"]
    refused = api.gql(LAUNCH, {"id": campaign}, token=staff(api))
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    assert "blood_group" in refused["errors"][0]["message"]
    assert world.campaign_queue.jobs == []
    assert data(api.gql(GET, {"id": campaign}, token=staff(api)))["getCampaign"]["status"] == "DRAFT"


def test_a_donor_segment_mails_the_donors_who_agreed_to_email(api: Api, world: World) -> None:
    def donor(name: str, group: BloodGroup, channels: list[Channel], consent: bool = True) -> None:
        world.container.donors.register(
            STAFF,
            {"first_name": name, "last_name": "Donor", "email": f"{name.lower()}@example.org",
             "site_id": "site-north", "blood_group": group, "date_of_birth": date(1990, 1, 2),
             "sex": Sex.FEMALE, "weight_kg": 70.0,
             "notification_preferences": {"consent": consent, "channels": channels}},
        )  # fmt: skip

    donor("Ann", BloodGroup.O_NEG, [Channel.EMAIL])
    donor("Bea", BloodGroup.O_NEG, [Channel.SMS])  # no e-mail
    donor("Cat", BloodGroup.O_NEG, [Channel.EMAIL], consent=False)
    donor("Dee", BloodGroup.A_POS, [Channel.EMAIL])  # another group
    donor("Eve", BloodGroup.O_POS, [Channel.EMAIL])
    text = "Dear {{ first_name }} at {{ site_name }}. Stop: {{ unsubscribe_url }}"
    segment = {"bloodGroups": ["O_NEG", "O_POS"], "siteId": "site-north"}
    created = create(api, name="O", templateId=template(api, text), segment=segment)
    assert created["segment"] == {
        "bloodGroups": ["O_NEG", "O_POS"],
        "siteId": "site-north",
        "eligibleNow": False,
    }
    api.gql(LAUNCH, {"id": created["id"]}, token=staff(api))
    run_jobs(world)
    assert sorted(e.to for _, e in world.mailer.sent) == ["ann@example.org", "eve@example.org"]
    assert "Dear Ann at" in world.mailer.sent_to("ann@example.org")[0].text
