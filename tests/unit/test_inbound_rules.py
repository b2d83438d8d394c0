"""The inbound rules: late moderation verdicts, authors and agents, foreign seller messages, sites."""

from __future__ import annotations

import pytest

from postventa.domain.delivery import MessageStatus
from postventa.domain.inbound import (
    AGENT_IDS_BY_SITE,
    MODERATION_REASONS,
    Author,
    Moderation,
    SiteProblem,
    Source,
    StatusChange,
    author_of,
    is_agent_path,
    may_record_foreign_seller_message,
    moderation_change,
    order_site_problem,
    shown_author,
    shown_source,
    thread_agent,
)
from postventa.domain.sites import Site

PENDING = Moderation(pending=True, rejected=False, reason=None)
CLEAN = Moderation(pending=False, rejected=False, reason=None)
SITES = frozenset(site.value for site in Site)


def rejected(reason: str | None) -> Moderation:
    return Moderation(pending=False, rejected=True, reason=reason)


@pytest.mark.parametrize("reason", sorted(MODERATION_REASONS))
@pytest.mark.parametrize("current", ["pending_moderation", "sent"])
def test_a_late_rejection_moderates_with_the_reason_as_mercado_libre_writes_it(current, reason):
    assert moderation_change(current, rejected(reason)) == StatusChange(MessageStatus.MODERATED, reason)
    assert moderation_change(current, rejected(reason.lower())) == StatusChange(
        MessageStatus.MODERATED, reason
    )


def test_all_eight_documented_reasons_are_known():
    assert len(MODERATION_REASONS) == 8
    assert "AUTOMATIC_MESSAGE" in MODERATION_REASONS


def test_a_clean_verdict_sends_a_pending_message_and_changes_nothing_else():
    assert moderation_change("pending_moderation", CLEAN) == StatusChange(MessageStatus.SENT)
    assert moderation_change("sent", CLEAN) is None
    assert moderation_change("pending_moderation", PENDING) is None
    assert moderation_change("sent", PENDING) is None


@pytest.mark.parametrize("current", ["queued", "sending", "moderated", "failed", "received"])
def test_a_verdict_changes_no_message_that_is_not_delivered_and_undecided(current):
    for verdict in (PENDING, CLEAN, rejected("PERSONAL_DATA")):
        assert moderation_change(current, verdict) is None


def test_a_rejection_without_reason_keeps_none():
    assert moderation_change("sent", rejected(" ")) == StatusChange(MessageStatus.MODERATED, None)


SELLER, BUYER = 1001, 2002


def test_authors_by_user_id():
    assert author_of(SELLER, seller_id=SELLER, buyer_id=BUYER, agent_thread=False) is Author.SELLER
    assert author_of(BUYER, seller_id=SELLER, buyer_id=BUYER, agent_thread=False) is Author.BUYER
    assert author_of(BUYER, seller_id=SELLER, buyer_id=None, agent_thread=False) is Author.BUYER
    # Neither the seller nor the order's buyer: Mercado Libre's agent.
    assert author_of(777, seller_id=SELLER, buyer_id=BUYER, agent_thread=False) is Author.AGENT


@pytest.mark.parametrize("site", sorted(AGENT_IDS_BY_SITE))
def test_a_published_agent_id_is_the_agent_even_without_the_buyer(site):
    agent = AGENT_IDS_BY_SITE[site]
    assert author_of(agent, seller_id=SELLER, buyer_id=None, agent_thread=False) is Author.AGENT


def test_in_an_agent_thread_anyone_but_the_seller_is_the_agent():
    assert author_of(BUYER, seller_id=SELLER, buyer_id=None, agent_thread=True) is Author.AGENT
    assert author_of(SELLER, seller_id=SELLER, buyer_id=None, agent_thread=True) is Author.SELLER


def test_agent_paths():
    assert is_agent_path("/packs/1/sellers/2/conversations/agent")
    assert is_agent_path("/packs/1/sellers/2/conversations/AGENT/")
    assert not is_agent_path("/packs/1/sellers/2")
    assert not is_agent_path("/packs/1/sellers/2/conversations/buyer")
    assert not is_agent_path(None)
    assert not is_agent_path("")


def test_a_foreign_seller_message_waits_while_a_postventa_message_is_in_flight():
    assert not may_record_foreign_seller_message(in_flight_statuses={"queued"})
    assert not may_record_foreign_seller_message(in_flight_statuses={"sent", "sending"})
    assert may_record_foreign_seller_message(in_flight_statuses=set())
    assert may_record_foreign_seller_message(
        in_flight_statuses={"sent", "pending_moderation", "moderated", "failed", "received"}
    )


def test_reads_show_source_and_author_with_defaults_for_older_rows():
    assert shown_source("outbound", "postventa") is Source.POSTVENTA
    assert shown_source("outbound", "marketplace") is Source.MARKETPLACE
    assert shown_source("inbound", "postventa") is Source.MARKETPLACE
    assert shown_author("outbound", None) is Author.SELLER
    assert shown_author("inbound", None) is Author.BUYER
    assert shown_author("inbound", "agent") is Author.AGENT


def test_order_sites():
    assert order_site_problem("MLA", known_sites=SITES, link_site="MLA") is None
    assert order_site_problem("mla", known_sites=SITES, link_site="MLA") is None
    assert order_site_problem("MLB", known_sites=SITES, link_site="MLA") is SiteProblem.MISMATCH
    assert order_site_problem("MLV", known_sites=SITES, link_site="MLA") is SiteProblem.UNKNOWN
    assert order_site_problem(None, known_sites=SITES, link_site="MLA") is SiteProblem.UNKNOWN
    assert SiteProblem.MISMATCH.value == "order_site_mismatch"
    assert SiteProblem.UNKNOWN.value == "order_site_unknown"


def test_the_agent_of_a_thread():
    assert thread_agent([SELLER, 777], seller_id=SELLER, site_id="MLB") == 777
    assert thread_agent([SELLER], seller_id=SELLER, site_id="MLB") == AGENT_IDS_BY_SITE["MLB"]
    assert thread_agent([], seller_id=SELLER, site_id="mlc") == AGENT_IDS_BY_SITE["MLC"]
    assert thread_agent([None], seller_id=SELLER, site_id="MPE") is None
