"""Resolvers of campaigns: one function per field; authorization and rules live in the service."""

from __future__ import annotations

from bloodbank.domain.campaigns import Campaign, CampaignStatus, DeliveryStatus, Stats
from bloodbank.domain.deliveries import Delivery, Stage
from bloodbank.ports import Page
from bloodbank.services.donors import page_size
from resolvers.context import ResolverEvent


def create_campaign(event: ResolverEvent) -> Campaign:
    return event.services.campaigns.create(event.caller, dict(event.arguments["input"]))


def get_campaign(event: ResolverEvent) -> Campaign | None:
    return event.services.campaigns.get(event.caller, str(event.arguments["id"]))


def list_campaigns(event: ResolverEvent) -> Page[Campaign]:
    args = event.arguments
    status: CampaignStatus | None = args.get("status")
    return event.services.campaigns.campaigns_page(
        event.caller, status, page_size(args.get("limit")), args.get("next_token")
    )


def launch_campaign(event: ResolverEvent) -> Campaign:
    return event.services.campaigns.launch(event.caller, str(event.arguments["id"]))


def pause_campaign(event: ResolverEvent) -> Campaign:
    return event.services.campaigns.pause(event.caller, str(event.arguments["id"]))


def resume_campaign(event: ResolverEvent) -> Campaign:
    return event.services.campaigns.resume(event.caller, str(event.arguments["id"]))


def cancel_campaign(event: ResolverEvent) -> Campaign:
    return event.services.campaigns.cancel(event.caller, str(event.arguments["id"]))


def campaign_stats(event: ResolverEvent) -> Stats:
    campaign: Campaign = event.source
    return event.services.campaigns.stats(campaign.id)


def list_campaign_recipients(event: ResolverEvent) -> Page[Delivery]:
    args = event.arguments
    status: DeliveryStatus | None = args.get("status")
    stage = Stage(status.value) if status is not None else None
    return event.services.campaigns.recipients(
        event.caller, str(args["campaign_id"]), stage, page_size(args.get("limit")), args.get("next_token")
    )
