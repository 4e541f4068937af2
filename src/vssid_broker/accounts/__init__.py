"""VssID accounts: the social-insurance record of a person, its history and health-insurance card."""
