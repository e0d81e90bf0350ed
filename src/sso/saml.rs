//! SAML 2.0 sign-in (SP-initiated redirect, IdP-initiated POST) with samael.
