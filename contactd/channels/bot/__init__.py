"""The bot front line in chat: knowledge base, self-service flows, hand-over rules, an
external bot over a webhook (see docs/architecture.md, "The bot front line")."""
