"""The phone channel: IVR webhooks (generic JSON and Twilio-compatible) routed like chats."""
