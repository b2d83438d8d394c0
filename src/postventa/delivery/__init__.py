"""Delivery to Mercado Libre: the outbox worker, inbound processing and polling."""
