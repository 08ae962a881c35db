"""The call vocabulary every layer shares: who is calling, what the bot answered, what the caller may
type, the events between a door and its conversation, the bot port and the clock.

Nothing here knows a wire protocol, Kore.ai or a speech engine: doors, the conversation and the bot
client all speak these types, so each can change without the others.
"""
