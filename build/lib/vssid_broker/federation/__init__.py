"""The relying party toward VNeID: discovery, login transactions, code exchange, ID-token checks."""
