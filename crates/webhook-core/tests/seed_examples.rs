//! The examples printed in the seed documents decode into the typed objects.

#![allow(clippy::unwrap_used)]

use webhook_core::domain::{
    ApprovalSet, ApprovalSetStatus, ApprovalStatus, Domain, Envelope, Resource, Transaction,
    TransactionStatus, WalletStatus,
};
use webhook_core::event::{Event, EventType};

/// Seed 001's WALLET envelope, exactly as printed (its trailing comma removed: JSON has none).
const SEED_WALLET_ENVELOPE: &str = r#"{
    "domain": "WALLET",
    "timestamp": "2025-05-08T14:15:37Z",
    "payload": "eyJpZCI6IjAxOTYxNTNiLTY3YmMtN2NkMy1iNTExLTM1NDM3M2QyODEzMCIsICJ2YXVsdElkIjoiMDE5NjE1MmQtNTI5NC03MzlkLTk5NDUtMmE0OTlmOWUzOTg5IiwgIm9yZ2FuaXphdGlvbklkIjoiMjFjODEzMTktNWI4My00NWY5LWI2NDgtNDIwNTUwODRhZjE1IiwgInF1b3J1bUlkIjoiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwIiwgImNyZWF0ZWRCeSI6ImE1NWRmOWUwLWUxNGEtNDQxMC1hOTgzLTEyYWZhZTQ2NjYyZiIsICJjcmVhdGVkQXQiOiIyMDI1LTA0LTA4VDExOjQ4OjU2Ljg5OTA4NloiLCAidXBkYXRlZEF0IjoiMjAyNS0wNC0wOFQxMTo0ODo1Ni45MDA0OTBaIiwgIm5hbWUiOiJld3FmZXciLCAiZGVzY3JpcHRpb24iOiIiLCAiYWRkcmVzcyI6IjB4NDY0NDMyMGYzMUQ2OTU4RWQ4NjAzRWI2NjYwNDQ5NTBBYTY5NzAyZSIsICJwdWJsaWNLZXkiOiIwNDgxY2IwMmU4MjFlNTVhMmM2MTk2ZmZkZTM4MGJhM2I0OTgxN2JkYmYwMmYzMTVkYzI4YjU2ZjcwNzkyZDU2ZTZhZGFjOTE3ZTdhZGFmODdmMTBjMDg4NDA4YThjNmEwZTZkMTgwNzkzYzA1MGMzZDBjODc3MWNiOWRkZjgyNThkIiwgImtleXN0b3JlIjoiSFNNIiwgImJsb2NrY2hhaW4iOiJBUkJJVFJVTSIsICJzZXR0aW5ncyI6e30sICJzdGF0dXMiOiJQUk9WSVNJT05FRCJ9"
}"#;

#[test]
fn seed_001_wallet_example_decodes_into_the_typed_wallet() {
    let envelope: Envelope = serde_json::from_str(SEED_WALLET_ENVELOPE).unwrap();
    assert_eq!(envelope.domain, Domain::Wallet);
    assert_eq!(envelope.unix_timestamp().unwrap(), 1_746_713_737);
    let Resource::Wallet(wallet) = envelope.decode_resource().unwrap() else {
        panic!("not a wallet")
    };
    assert_eq!(wallet.id, "0196153b-67bc-7cd3-b511-354373d28130");
    assert_eq!(
        wallet.vault_id.as_deref(),
        Some("0196152d-5294-739d-9945-2a499f9e3989")
    );
    assert_eq!(
        wallet.organization_id.as_deref(),
        Some("21c81319-5b83-45f9-b648-42055084af15")
    );
    assert_eq!(
        wallet.quorum_id.as_deref(),
        Some("00000000-0000-0000-0000-000000000000")
    );
    assert_eq!(
        wallet.created_by.as_deref(),
        Some("a55df9e0-e14a-4410-a983-12afae46662f")
    );
    assert_eq!(wallet.name.as_deref(), Some("ewqfew"));
    assert_eq!(
        wallet.address.as_deref(),
        Some("0x4644320f31D6958Ed8603Eb666044950Aa69702e")
    );
    assert_eq!(wallet.keystore.as_deref(), Some("HSM"));
    assert_eq!(wallet.blockchain.as_deref(), Some("ARBITRUM"));
    assert_eq!(wallet.status, WalletStatus::Provisioned);
    assert!(wallet.status.is_terminal());
    assert_eq!(
        wallet.created_at.nanosecond(),
        899_086_000,
        "microseconds kept"
    );
    assert!(
        wallet.extra.is_empty(),
        "every field of the example is named: {:?}",
        wallet.extra
    );
    let payload = envelope.payload_bytes().unwrap();
    assert_eq!(
        webhook_core::domain::dedup_key(&payload).unwrap(),
        "0196153b-67bc-7cd3-b511-354373d28130@2025-04-08T11:48:56.900490Z"
    );
}

#[test]
fn seed_001_transaction_example_decodes_with_exact_quantity() {
    let json = r#"{
      "id": "019c94f1-cc8c-79b4-9c0f-bc7edaabc267",
      "vaultId": "0196152d-5294-739d-9945-2a499f9e3989",
      "walletId": "0196153b-67bc-7cd3-b511-354373d28130",
      "organizationId": "21c81319-5b83-45f9-b648-42055084af15",
      "status": "CONFIRMED",
      "blockchain": "ETHEREUM",
      "hash": "0x8a4c5e9f2b1d7c3a6e8f0b2d4c6a8e0f2b4d6c8a0e2f4b6d8c0a2e4f6b8d0c2e",
      "destination": { "address": "0x742d35Cc6634C0532925a3b844Bc9e7595f2E8Ba" },
      "asset": { "symbol": "ETH" },
      "qty": "1.500000000000000000",
      "createdAt": "2025-05-08T14:25:00Z",
      "updatedAt": "2025-05-08T14:30:00Z"
    }"#;
    let tx: Transaction = serde_json::from_str(json).unwrap();
    assert_eq!(tx.status, TransactionStatus::Confirmed);
    assert!(tx.status.is_terminal());
    assert_eq!(tx.qty.as_ref().unwrap().as_str(), "1.500000000000000000");
    assert_eq!(
        tx.destination.unwrap().address,
        "0x742d35Cc6634C0532925a3b844Bc9e7595f2E8Ba"
    );
    assert_eq!(tx.asset.unwrap().symbol, "ETH");
    // The same object with qty as a JSON number is refused: money is never a float.
    let float = json.replace("\"1.500000000000000000\"", "1.5");
    assert!(serde_json::from_str::<Transaction>(&float).is_err());
    // An inbound transaction may carry freezeInfo; unknown statuses are kept.
    let inbound = json
        .replace("\"CONFIRMED\"", "\"SCREENING\"")
        .replace("\"qty\"", "\"freezeInfo\": {\"frozen\": true}, \"qty\"");
    let tx: Transaction = serde_json::from_str(&inbound).unwrap();
    assert_eq!(tx.status, TransactionStatus::Unknown("SCREENING".into()));
    assert!(!tx.status.is_terminal());
    assert_eq!(tx.freeze_info.unwrap()["frozen"], true);
}

#[test]
fn statuses_terminal_or_not_as_seed_001_lists() {
    let terminal: Vec<_> = TransactionStatus::KNOWN
        .iter()
        .filter(|s| s.is_terminal())
        .collect();
    assert_eq!(
        terminal,
        [
            &TransactionStatus::Confirmed,
            &TransactionStatus::Rejected,
            &TransactionStatus::Failed
        ]
    );
    assert_eq!(TransactionStatus::KNOWN.len(), 15);
    let terminal: Vec<_> = WalletStatus::KNOWN
        .iter()
        .filter(|s| s.is_terminal())
        .collect();
    assert_eq!(
        terminal,
        [
            &WalletStatus::Provisioned,
            &WalletStatus::ProvisioningFailed
        ]
    );
    assert_eq!(
        ApprovalSetStatus::KNOWN
            .iter()
            .filter(|s| !s.is_terminal())
            .count(),
        1
    );
    assert!(!ApprovalSetStatus::Pending.is_terminal());

    let approval: ApprovalSet = serde_json::from_str(
        r#"{"id":"a1","status":"MET","approvals":[{"approverId":"u1","status":"APPROVED"},{"status":"ABSTAINED"}],
            "createdAt":"2025-05-08T14:25:00Z","updatedAt":"2025-05-08T14:26:00Z","policyId":"p1"}"#,
    )
    .unwrap();
    assert!(approval.status.is_terminal());
    assert_eq!(approval.approvals[0].status, ApprovalStatus::Approved);
    assert_eq!(
        approval.approvals[1].status,
        ApprovalStatus::Unknown("ABSTAINED".into())
    );
    assert_eq!(approval.extra["policyId"], "p1");
}

#[test]
fn all_thirteen_event_types_round_trip_and_unknown_ones_are_kept() {
    let names = [
        "transaction.created",
        "transaction.signed",
        "transaction.broadcast",
        "transaction.confirmed",
        "transaction.failed",
        "transaction.accelerated",
        "transaction.cancelled",
        "wallet.created",
        "customer.created",
        "customer.pin_setup",
        "customer.locked_out",
        "customer.recovery_initiated",
        "customer.recovery_completed",
    ];
    assert_eq!(EventType::KNOWN.len(), 13);
    for name in names {
        let parsed = EventType::from(name);
        assert!(parsed.is_known(), "{name}");
        assert_eq!(parsed.as_str(), name);
    }
    let json = r#"{"id":"e","type":"payout.sent","idempotencyKey":"k","organizationId":"o","createdAt":"2025-05-08T14:30:00Z","data":{"x":1}}"#;
    let event: Event = serde_json::from_str(json).unwrap();
    assert_eq!(event.event_type, EventType::Unknown("payout.sent".into()));
    let back = serde_json::to_value(&event).unwrap();
    assert_eq!(
        back,
        serde_json::from_str::<serde_json::Value>(json).unwrap(),
        "serializes back unchanged"
    );
}
