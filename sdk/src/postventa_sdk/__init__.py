"""postventa's Python client: send messages to buyers and read conversations and orders.

`Client` blocks, `AsyncClient` is for asyncio; both retry safely (see `RetryPolicy`) and raise one
exception class per documented status under `PostventaError`. `verify_webhook` checks and reads the
webhooks postventa sends.
"""

from postventa_sdk._calls import AttachmentSource
from postventa_sdk._client import AsyncClient, Client, __version__
from postventa_sdk._retry import RetryPolicy
from postventa_sdk.accounts import Account, Marketplace
from postventa_sdk.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PostventaError,
    PreconditionFailed,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    UnexpectedResponse,
    UnprocessableEntity,
    WebhookVerificationError,
)
from postventa_sdk.models import (
    AttachmentInfo,
    Buyer,
    Conversation,
    ConversationStatus,
    DeliveryWindow,
    DownloadedFile,
    KeyValue,
    Message,
    Order,
    OrdersPage,
    ReasonOption,
    SentMessage,
)
from postventa_sdk.reasons import Reason
from postventa_sdk.webhooks import (
    MessageEvent,
    OrderEvent,
    UnknownEvent,
    WebhookEvent,
    sign_webhook,
    verify_webhook,
)

__all__ = [
    "Account",
    "ApiError",
    "AsyncClient",
    "AttachmentInfo",
    "AttachmentSource",
    "BadRequest",
    "Buyer",
    "Client",
    "Conflict",
    "Conversation",
    "ConversationStatus",
    "DeliveryWindow",
    "DownloadedFile",
    "Forbidden",
    "KeyValue",
    "Marketplace",
    "Message",
    "MessageEvent",
    "NotFound",
    "Order",
    "OrderEvent",
    "OrdersPage",
    "PostventaError",
    "PreconditionFailed",
    "RateLimited",
    "Reason",
    "ReasonOption",
    "RetryPolicy",
    "SentMessage",
    "ServerError",
    "TransportError",
    "Unauthorized",
    "UnexpectedResponse",
    "UnknownEvent",
    "UnprocessableEntity",
    "WebhookEvent",
    "WebhookVerificationError",
    "__version__",
    "sign_webhook",
    "verify_webhook",
]
