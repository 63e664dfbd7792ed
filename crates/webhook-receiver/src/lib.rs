//! Webhook receiver: work in progress (see ARCHITECTURE.md).
