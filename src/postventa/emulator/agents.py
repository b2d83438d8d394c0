"""Mercado Libre's AI messaging agents (research §2.8): the Agent ID of each site.

In an agent thread the buyer talks to the site's agent: the seller answers `to.user_id` = the Agent
ID, one message per agent message, and cannot start the thread. MPE and MEC have no published agent.
"""

from __future__ import annotations

AGENT_IDS = {
    "MLC": 3020819166,
    "MCO": 3037204123,
    "MLM": 3037204279,
    "MLA": 3037674934,
    "MLB": 3037675074,
    "MLU": 3037204685,  # published as "MLU (Otros)"
}


def agent_id_for(site_id: str) -> int | None:
    """The site's Agent ID, or None where Mercado Libre publishes none."""
    return AGENT_IDS.get(site_id)
