"""Fees and their payment: VietQR bank transfers matched against bank statements, card and
wallet payments through gateways, one ledger whose every transition is idempotent and audited,
receipts, refunds and reconciliation for agencies."""
