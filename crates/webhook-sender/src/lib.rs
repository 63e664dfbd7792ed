//! Webhook sender: work in progress (see ARCHITECTURE.md).
