"""An order as Alephee's `GET /v2/orders` writes it (issue 17): rendered in services/rendering.py,
which the webhooks' order events share (issue 20); `docs/decisions.md` ("Alephee's order shape")
maps every field to its source."""

from __future__ import annotations

from postventa.services.rendering import buyer_code_number as buyer_code_number
from postventa.services.rendering import delivery_day_start as delivery_day_start
from postventa.services.rendering import order_json as order_json
