"""The emulator's in-memory world: applications, sellers, tokens, orders, packs, shipments,
conversations, messages and attachments.

Everything sits behind one `asyncio.Lock` (`EmulatorState.lock`): route handlers take it around
each read or change, so concurrent requests see whole operations only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from postventa.emulator import ids
from postventa.emulator.config import EmulatorConfig
from postventa.emulator.errors import bad_control_input
from postventa.emulator.models import (
    AccessToken,
    Application,
    Attachment,
    Buyer,
    Conversation,
    DeliveryWindow,
    Message,
    Order,
    Pack,
    Seller,
    Shipment,
)
from postventa.emulator.sites import utc_now


@dataclass(frozen=True)
class NewSeller:
    """What `POST /_emulator/sellers` answers: the seller and the credentials to get tokens."""

    seller: Seller
    client_secret: str
    refresh_token: str


@dataclass(frozen=True)
class NewOrder:
    """A validated order to create through the control API."""

    seller_id: int
    site_id: str
    pack_id: int | None
    logistic_type: str
    status: str
    shipment_status: str
    buyer_id: int | None
    buyer_nickname: str | None
    window: DeliveryWindow | None


class EmulatorState:
    """All records, by id, and the operations that keep them consistent."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.lock = asyncio.Lock()
        self.ids = ids.IdAllocator()
        self.applications: dict[str, Application] = {}
        self.sellers: dict[int, Seller] = {}
        self.buyers: dict[int, Buyer] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, int] = {}
        self.orders: dict[int, Order] = {}
        self.packs: dict[int, Pack] = {}
        self.shipments: dict[int, Shipment] = {}
        self.conversations: dict[int, Conversation] = {}
        self.messages: dict[str, Message] = {}
        self.attachments: dict[str, Attachment] = {}

    def add_seller(self, site_id: str, nickname: str | None, client_id: str | None) -> NewSeller:
        """A seller on a site, with a new application unless `client_id` names an existing one."""
        if client_id is None:
            application = Application(ids.client_id(), ids.client_secret())
            self.applications[application.client_id] = application
        elif client_id in self.applications:
            application = self.applications[client_id]
        else:
            raise bad_control_input(f"ClientId {client_id} is not an application of this emulator.")
        seller_id = self.ids.seller_id()
        seller = Seller(seller_id, nickname or f"TESTSELLER{seller_id}", site_id, application.client_id)
        self.sellers[seller_id] = seller
        token = ids.refresh_token(seller_id)
        self.refresh_tokens[token] = seller_id
        return NewSeller(seller, application.client_secret, token)

    def add_order(self, new: NewOrder) -> Order:
        """An order (and its shipment, pack and conversation as needed) from validated control input."""
        seller = self.sellers.get(new.seller_id)
        if seller is None:
            raise bad_control_input(f"SellerId {new.seller_id} is not a seller of this emulator.")
        if new.site_id != seller.site_id:
            raise bad_control_input(f"SiteId {new.site_id} differs from the seller's site {seller.site_id}.")
        pack = self.packs.get(new.pack_id) if new.pack_id is not None else None
        buyer = self._buyer_for(new, pack)
        shipment = self._shipment_for(new, pack)
        now = utc_now()
        order = Order(
            self._fresh_order_id(), seller.id, buyer, seller.site_id, None, shipment.id, new.status, now, now
        )
        order.record_status(new.status, now)
        if new.pack_id is not None:
            pack = pack or self._new_pack(new.pack_id, order, shipment)
            pack.order_ids.append(order.id)
            order.pack_id = pack.id
        self.orders[order.id] = order
        self._attach_to_conversation(order)
        return order

    def change_order(self, order: Order, status: str | None, shipment_status: str | None) -> None:
        """Apply a control-API change of order or shipment status."""
        now = utc_now()
        if status is not None:
            order.record_status(status, now)
        if shipment_status is not None:
            self.shipments[order.shipment_id].status = shipment_status
        order.last_updated = now

    def find_conversation(self, key: int) -> Conversation | None:
        """The conversation of a pack id, or of an order id when that order has no pack."""
        return self.conversations.get(key)

    def orders_of(self, conversation: Conversation) -> list[Order]:
        """The orders a conversation is about."""
        return [self.orders[order_id] for order_id in conversation.order_ids]

    def shipment_of(self, conversation: Conversation) -> Shipment:
        """The shipment of a conversation's pack or order."""
        return self.shipments[conversation.shipment_id]

    def _fresh_order_id(self) -> int:
        order_id = self.ids.order_or_pack_id()
        while order_id in self.packs or order_id in self.orders:  # a control-chosen PackId took it
            order_id = self.ids.order_or_pack_id()
        return order_id

    def _buyer_for(self, new: NewOrder, pack: Pack | None) -> Buyer:
        if pack is not None:
            if new.buyer_id is not None and new.buyer_id != pack.buyer.id:
                raise bad_control_input(f"Buyer {new.buyer_id} differs from pack {pack.id}'s buyer.")
            return pack.buyer
        if new.buyer_id is not None and new.buyer_id in self.buyers:
            return self.buyers[new.buyer_id]
        buyer_id = new.buyer_id if new.buyer_id is not None else self.ids.buyer_id()
        if buyer_id in self.sellers:
            raise bad_control_input(f"Buyer id {buyer_id} is a seller of this emulator.")
        buyer = Buyer(buyer_id, new.buyer_nickname or f"TESTBUYER{buyer_id}")
        self.buyers[buyer_id] = buyer
        return buyer

    def _shipment_for(self, new: NewOrder, pack: Pack | None) -> Shipment:
        if pack is not None:
            if pack.seller_id != new.seller_id:
                raise bad_control_input(f"Pack {pack.id} belongs to another seller.")
            shipment = self.shipments[pack.shipment_id]
            if shipment.logistic_type != new.logistic_type:
                raise bad_control_input(
                    f"LogisticType {new.logistic_type} differs from pack {pack.id}'s "
                    f"shipment ({shipment.logistic_type})."
                )
            return shipment
        if new.pack_id is not None and new.pack_id in self.orders:
            raise bad_control_input(f"PackId {new.pack_id} is already an order id.")
        shipment = Shipment(
            self.ids.shipment_id(),
            new.seller_id,
            new.site_id,
            new.logistic_type,
            new.shipment_status,
            new.window,
            utc_now(),
        )
        self.shipments[shipment.id] = shipment
        return shipment

    def _new_pack(self, pack_id: int, order: Order, shipment: Shipment) -> Pack:
        pack = Pack(pack_id, order.seller_id, order.buyer, order.site_id, shipment.id, [], order.date_created)
        self.packs[pack_id] = pack
        return pack

    def _attach_to_conversation(self, order: Order) -> None:
        key = order.conversation_key
        conversation = self.conversations.get(key)
        if conversation is None:
            conversation = Conversation(
                key, order.seller_id, order.buyer, order.site_id, order.shipment_id, []
            )
            self.conversations[key] = conversation
        conversation.order_ids.append(order.id)
