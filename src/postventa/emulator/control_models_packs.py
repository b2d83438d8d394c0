"""Bodies of the control routes on one conversation (`/_emulator/packs/{packId}/...`) and on one
message (`/_emulator/messages/{messageId}/moderate`), validated so a wrong input gets a clear 400."""

from __future__ import annotations

from pydantic import Field, RootModel, field_validator

from postventa.emulator.blocking import BLOCK_SUBSTATUSES
from postventa.emulator.control_models import ControlBody
from postventa.emulator.guide import OPTION_LABELS
from postventa.emulator.messaging import SELLER_MAX_MESSAGE_LENGTH
from postventa.emulator.moderation import MODERATION_REASONS


class CapsIn(RootModel[dict[str, int]]):
    """`PUT /_emulator/packs/{packId}/caps`: `{"OTHER": 0, "REQUEST_BILLING_INFO": 1, ...}`."""

    @field_validator("root")
    @classmethod
    def _caps(cls, value: dict[str, int]) -> dict[str, int]:
        if not value:
            raise ValueError("give at least one option id and its cap")
        for option, cap in value.items():
            if option not in OPTION_LABELS:
                raise ValueError(f"{option} is not an option id; one of {', '.join(sorted(OPTION_LABELS))}")
            if cap < 0:
                raise ValueError(f"the cap of {option} must be 0 or more")
        return value


class BlockIn(ControlBody):
    """`PUT /_emulator/packs/{packId}/block`: a documented substatus (research §2.5)."""

    Reason: str

    @field_validator("Reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if value not in BLOCK_SUBSTATUSES:
            raise ValueError(f"Reason must be one of {', '.join(sorted(BLOCK_SUBSTATUSES))}")
        return value


class AgeIn(ControlBody):
    """`PUT /_emulator/packs/{packId}/age`: how many days to move the conversation into the past."""

    Days: float = Field(gt=0, le=36500)


class AgentMessageIn(ControlBody):
    """`POST /_emulator/packs/{packId}/agent-messages`."""

    Text: str = Field(min_length=1, max_length=3500)


class SellerMessageIn(ControlBody):
    """`POST /_emulator/packs/{packId}/seller-messages`: a seller text, within the seller's limit."""

    Text: str = Field(min_length=1, max_length=SELLER_MAX_MESSAGE_LENGTH)


class ModerateIn(ControlBody):
    """`POST /_emulator/messages/{messageId}/moderate`: one of the eight reasons of research §2.4."""

    Reason: str

    @field_validator("Reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if value not in MODERATION_REASONS:
            raise ValueError(f"Reason must be one of {', '.join(sorted(MODERATION_REASONS))}")
        return value
