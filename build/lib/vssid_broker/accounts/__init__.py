"""VssID accounts: a person's social-insurance record, its history and health-insurance card."""
