//! OpenID Connect sign-in (authorization code + PKCE, state, nonce) with the openidconnect crate.
