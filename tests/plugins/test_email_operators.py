"""Create, send (exactly once), metrics and list 1, against the sandbox through the real SDK."""

from __future__ import annotations

import pytest
from reengagement.errors import HubSpotError, HubSpotTransientError
from reengagement.operators.emails import (
    EmailMetricsOperator,
    SendEmailOperator,
    render_body,
)
from reengagement.operators.lists import BuildConfirmedListOperator, EnsureListOperator

from tests.plugins.conftest import CTA, SUB, contact_ids, create_op, run_operator


def emails_named(sandbox, name):
    page = sandbox.session.get(f"{sandbox.url}/marketing/v3/emails", params={"limit": 100}).json()
    return [e for e in page["results"] if e["name"] == name]


def test_create_builds_the_email_and_a_rerun_adopts_it(seeded, recipients):
    first = run_operator(create_op(recipients["list_id"]))
    second = run_operator(create_op(recipients["list_id"]))
    assert first == second
    (email,) = emails_named(seeded, "c · r1 · email")
    assert email["to"]["contactIlsLists"]["include"] == [recipients["list_id"]]
    assert email["to"]["suppressGraymail"] is False
    assert str(email["subscriptionDetails"]["subscriptionId"]) == SUB
    html = email["content"]["widgets"]["module-0-1-1"]["body"]["html"]
    assert 'href="https://www.example.com/still-subscribed?pp=c&amp;pp_round=1"' in html
    assert first["cta_url"] == CTA and "campaign_ids" not in first  # a draft's ids are not promised


def test_send_reads_the_campaign_ids_from_the_published_email(seeded, recipients):
    email = run_operator(create_op(recipients["list_id"]))
    draft = seeded.session.get(f"{seeded.url}/marketing/v3/emails/{email['email_id']}").json()
    assert not draft.get("primaryEmailCampaignId") and not draft.get("allEmailCampaignIds")
    sent = run_operator(SendEmailOperator(task_id="send_email", email_id=email["email_id"], cta_url=CTA))
    published = seeded.session.get(f"{seeded.url}/marketing/v3/emails/{email['email_id']}").json()
    assert sent["campaign_ids"] == [published["primaryEmailCampaignId"]] and sent["cta_url"] == CTA
    adopted = run_operator(SendEmailOperator(task_id="send_email", email_id=email["email_id"], cta_url=CTA))
    assert adopted == sent


def test_send_waits_for_campaign_ids_the_published_email_does_not_show_yet(seeded, recipients, monkeypatch):
    email = run_operator(create_op(recipients["list_id"]))
    send = SendEmailOperator(task_id="send_email", email_id=email["email_id"], cta_url=CTA)
    real_get, reads = SendEmailOperator._get, []

    def lagging(self):
        got = real_get(self)
        reads.append(got)
        if len(reads) <= 3:  # published, but the ids are not shown for the first reads
            got = {k: v for k, v in got.items() if k not in ("primaryEmailCampaignId", "allEmailCampaignIds")}
        return got

    monkeypatch.setattr(SendEmailOperator, "_get", lagging)
    sent = run_operator(send)
    assert sent["campaign_ids"] == [reads[-1]["primaryEmailCampaignId"]] and len(reads) > 3


def test_send_without_campaign_ids_fails_for_a_clear_not_a_second_send(seeded, recipients, monkeypatch):
    email = run_operator(create_op(recipients["list_id"]))
    send = SendEmailOperator(task_id="send_email", email_id=email["email_id"], cta_url=CTA)
    send.hook.timeout = (2.0, 0.5)
    real_get = SendEmailOperator._get
    monkeypatch.setattr(
        SendEmailOperator,
        "_get",
        lambda self: {
            k: v for k, v in real_get(self).items() if k not in ("primaryEmailCampaignId", "allEmailCampaignIds")
        },
    )
    with pytest.raises(HubSpotTransientError, match="no email campaign ids"):
        run_operator(send)
    assert seeded.admin("GET", "calls")["emails.publish"]["calls"] == 1


def test_create_from_a_template_needs_the_confirm_placeholder(seeded, recipients):
    made = seeded.session.post(
        f"{seeded.url}/marketing/v3/emails",
        json={
            "name": "designed template",
            "subject": "x",
            "content": {
                "widgets": {
                    "main": {
                        "body": {"html": '<a href="{{ confirm_url }}">Yes</a>'},
                        "id": "main",
                        "name": "main",
                        "type": "module",
                    }
                }
            },
        },
    ).json()
    result = run_operator(create_op(recipients["list_id"], template_email_id=made["id"]))
    (email,) = emails_named(seeded, "c · r1 · email")
    assert email["id"] == result["email_id"] != made["id"]
    assert "pp_round=1" in email["content"]["widgets"]["main"]["body"]["html"]
    bare = seeded.session.post(f"{seeded.url}/marketing/v3/emails", json={"name": "no cta", "subject": "x"}).json()
    with pytest.raises(HubSpotError, match="no \\{\\{ confirm_url \\}\\} link"):
        run_operator(create_op(recipients["list_id"], template_email_id=bare["id"], email_name="c · r2 · email"))


def test_body_without_cta_is_refused():
    with pytest.raises(ValueError, match="confirm_url"):
        render_body("<p>no link</p>", CTA)


def test_send_publishes_once_even_when_rerun(seeded, recipients):
    email = run_operator(create_op(recipients["list_id"]))
    sent = run_operator(SendEmailOperator(task_id="send_email", email_id=email["email_id"]))
    again = run_operator(SendEmailOperator(task_id="send_email", email_id=email["email_id"]))
    assert sent["sent_at"] and again["sent_at"] == sent["sent_at"]
    calls = seeded.admin("GET", "calls")
    assert calls["emails.publish"]["calls"] == 1
    sends = seeded.admin("GET", f"emails/{email['email_id']}/recipients")
    assert len(sends["recipients"]) == recipients["size"]


def test_a_publish_whose_answer_was_lost_is_not_repeated(seeded, recipients):
    email = run_operator(create_op(recipients["list_id"]))
    seeded.admin("POST", "faults", {"endpoint": "emails.publish", "kind": "drop_after", "count": 1})
    sent = run_operator(SendEmailOperator(task_id="send_email", email_id=email["email_id"]))
    assert sent["sent_at"]
    assert seeded.admin("GET", "calls")["emails.publish"]["calls"] == 1


def test_a_publish_answered_after_the_client_gave_up_is_seen_landing_and_not_repeated(seeded, recipients):
    email = run_operator(create_op(recipients["list_id"]))
    seeded.admin("POST", "faults", {"endpoint": "emails.publish", "kind": "latency", "seconds": 2.5, "count": 1})
    send = SendEmailOperator(task_id="send_email", email_id=email["email_id"])
    send.hook.timeout = (2.0, 1.5)  # gives up before HubSpot answers; then waits as long again for it to land
    assert run_operator(send)["sent_at"]
    assert seeded.admin("GET", "calls")["emails.publish"]["calls"] == 1
    assert len(seeded.admin("GET", f"emails/{email['email_id']}/recipients")["recipients"]) == recipients["size"]


def test_a_publish_that_failed_before_landing_is_sent_once_by_a_second_publish(seeded, recipients):
    email = run_operator(create_op(recipients["list_id"]))
    seeded.admin("POST", "faults", {"endpoint": "emails.publish", "kind": "error", "status": 503, "count": 1})
    send = SendEmailOperator(task_id="send_email", email_id=email["email_id"])
    send.hook.timeout = (2.0, 1.0)
    assert run_operator(send)["sent_at"]
    assert seeded.admin("GET", "calls")["emails.publish"]["calls"] == 2
    sends = seeded.admin("GET", f"emails/{email['email_id']}/recipients")["recipients"]
    assert len(sends) == len({r["contactId"] for r in sends}) == recipients["size"]


def test_a_publish_that_never_lands_fails_saying_what_to_do(seeded, recipients):
    email = run_operator(create_op(recipients["list_id"]))
    seeded.admin("POST", "faults", {"endpoint": "emails.publish", "kind": "drop_before", "count": 3})
    send = SendEmailOperator(task_id="send_email", email_id=email["email_id"])
    send.hook.timeout = (2.0, 0.5)
    with pytest.raises(HubSpotError, match=r"still shows it unsent\. Clear this task"):
        run_operator(send)
    assert seeded.admin("GET", f"emails/{email['email_id']}/recipients")["recipients"] == []


def test_send_on_a_starter_portal_fails_clearly(seeded, recipients):
    email = run_operator(create_op(recipients["list_id"]))
    seeded.admin("PUT", "settings", {"tier": "starter"})
    with pytest.raises(HubSpotError, match="marketing-email"):
        run_operator(SendEmailOperator(task_id="send_email", email_id=email["email_id"]))


def test_metrics_and_list_one_after_the_responses(seeded, recipients):
    created = run_operator(create_op(recipients["list_id"]))
    email = run_operator(
        SendEmailOperator(task_id="send_email", email_id=created["email_id"], cta_url=created["cta_url"])
    )
    seeded.admin("POST", "clock", {"advance_seconds": 60})
    metrics = run_operator(EmailMetricsOperator(task_id="review_metrics", email_id=email["email_id"]))
    assert metrics["sent"] == recipients["size"]
    assert metrics["delivered"] + metrics["bounce"] == metrics["sent"]
    assert metrics["click"] > 0
    confirmed = run_operator(
        EnsureListOperator(task_id="confirmed", list_name="c · confirmed", processing_type="MANUAL", poll_interval=0.1)
    )
    build = BuildConfirmedListOperator(task_id="build_confirmed_list", list_id=confirmed["list_id"], emails=[email])
    result = run_operator(build)
    clicked = set(contact_ids(seeded, "confirm_r1"))
    assert result["confirmed"] == len(clicked) and result["added"] == len(clicked)
    members = set(build.hook.iter_list_memberships(confirmed["list_id"]))
    assert members == clicked  # no unsubscribe-link clickers, no bot clicks
    rerun = run_operator(
        BuildConfirmedListOperator(task_id="build_confirmed_list", list_id=confirmed["list_id"], emails=[email])
    )
    assert rerun["added"] == 0 and rerun["size"] == len(clicked)
