"""Who may call meao's APIs: OAuth 2.0 clients, access tokens, scopes (RFC 6749, RFC 6750, RFC 7519)."""
