"""Who sees what: users, roles and their scopes; sign-in for the Dash app."""
