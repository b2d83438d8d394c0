"""What happens to a message outside the seller's calls: the buyer reads it, or it is deleted.

Both are driven through the control API (`POST /_emulator/messages/{id}/read`,
`DELETE /_emulator/messages/{id}`), so a test can show a client a read receipt or a message that
vanished from Mercado Libre's storage.
"""

from __future__ import annotations

from postventa.emulator.errors import MeliError, bad_control_input, generic_error
from postventa.emulator.models import Message
from postventa.emulator.sites import utc_now
from postventa.emulator.state import EmulatorState


def read_by_buyer(state: EmulatorState, message_id: str) -> tuple[Message, bool]:
    """The buyer read the seller's message: sets its read time (once). True when it was unread."""
    message = _message(state, message_id)
    if message.from_user != message.seller_id:
        raise bad_control_input(f"Message {message_id} is the buyer's: the buyer reads only the seller's.")
    if message.read is not None:
        return message, False
    message.read = utc_now()
    return message, True


def delete_message(state: EmulatorState, message_id: str) -> Message:
    """Remove a message from storage: reads by id answer 404 and conversations no longer show it."""
    message = _message(state, message_id)
    del state.messages[message_id]
    conversation = state.conversations.get(message.conversation_key)
    if conversation is not None:
        conversation.messages = [kept for kept in conversation.messages if kept.id != message_id]
    return message


def _message(state: EmulatorState, message_id: str) -> Message:
    message = state.messages.get(message_id)
    if message is None:
        raise _not_found(f"Message {message_id} not found")
    return message


def _not_found(text: str) -> MeliError:
    return generic_error(404, "not_found", text)
