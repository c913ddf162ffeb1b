"""What a session keeps: the log of every call, what calls cost, and conversations across cells."""

from ..lazy import exports

__all__ = ["SessionLog", "session_log", "Pricing", "pricing", "money", "Conversation", "Conversations", "Turn",
           "conversations"]
__getattr__, __dir__ = exports(__name__, {
    ".log": ("SessionLog", "session_log"),
    ".cost": ("Pricing", "pricing", "money"),
    ".conversation": ("Conversation", "Conversations", "Turn", "conversations"),
})
