"""A real SAML 2.0 identity provider for the tests: pysaml2 (PyPI) signing with Debian's xmlsec1.

One request per run: a JSON object on stdin, a JSON object on stdout.

    {"command": "metadata", "entity_id", "sso_url", "key_file", "cert_file"}
        -> {"metadata": "<md:EntityDescriptor …>"}: the IdP's metadata.

    {"command": "respond", "entity_id", "sso_url", "key_file", "cert_file",
     "sp_metadata": the SP's metadata XML (as served by the gateway),
     "request_url": the IdP URL the gateway redirected to (HTTP-Redirect binding), to answer
                    its AuthnRequest; without it the response is IdP-initiated,
     "in_response_to": overrides the request's id (or sets one for an IdP-initiated response),
     "audience": make the assertion for this SP entity id instead of the SP's own,
     "name_id", "name_id_format" (default emailAddress),
     "attributes": {"name": ["value", …]},
     "sign_response", "sign_assertion": booleans (default: sign the assertion only),
     "lifetime_minutes": NotOnOrAfter from now (default 5; negative: already expired)}
        -> {"saml_response": base64, "relay_state", "in_response_to", "destination"}

Signatures are RSA-SHA256 with SHA-256 digests (pysaml2's default is SHA-1).
"""

import base64
import json
import re
import shutil
import sys
import warnings
from urllib.parse import parse_qs, urlparse

# pysaml2 warns at import about what newer releases of `cryptography` deprecate.
warnings.filterwarnings("ignore")

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256


def config(req, sp_metadata=(), lifetime_minutes=5):
    conf = IdPConfig()
    conf.load(
        {
            "entityid": req["entity_id"],
            "xmlsec_binary": shutil.which("xmlsec1"),
            "key_file": req["key_file"],
            "cert_file": req["cert_file"],
            "metadata": {"inline": list(sp_metadata)},
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [
                            (req["sso_url"], BINDING_HTTP_REDIRECT),
                            (req["sso_url"], BINDING_HTTP_POST),
                        ]
                    },
                    "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                    "want_authn_requests_signed": False,
                    "policy": {
                        "default": {
                            "lifetime": {"minutes": lifetime_minutes},
                            "attribute_restrictions": None,
                            "name_form": NAME_FORMAT_URI,
                        }
                    },
                }
            },
        }
    )
    return conf


def metadata(req):
    return {"metadata": str(entity_descriptor(config(req)))}


def respond(req):
    sp_metadata = [req["sp_metadata"]]
    audience = req.get("audience")
    if audience:
        # Another SP, with the same ACS URL: the assertion is then made for it.
        sp_metadata.append(re.sub(r'entityID="[^"]*"', f'entityID="{audience}"', req["sp_metadata"], count=1))
    server = Server(config=config(req, sp_metadata, req.get("lifetime_minutes", 5)))

    relay_state = None
    if req.get("request_url"):
        query = parse_qs(urlparse(req["request_url"]).query)
        relay_state = query.get("RelayState", [None])[0]
        parsed = server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
        args = server.response_args(parsed.message, [BINDING_HTTP_POST])
        in_response_to = args["in_response_to"]
        destination = args["destination"]
        sp_entity_id = args["sp_entity_id"]
    else:
        in_response_to = None
        sp_entity_id = re.search(r'entityID="([^"]*)"', req["sp_metadata"]).group(1)
        destination = re.search(r'Location="([^"]*)"', req["sp_metadata"]).group(1)
    if "in_response_to" in req:
        in_response_to = req["in_response_to"]
    if audience:
        sp_entity_id = audience

    name_id = NameID(format=req.get("name_id_format", NAMEID_FORMAT_EMAILADDRESS), text=req["name_id"])
    response = server.create_authn_response(
        identity=req.get("attributes", {}),
        in_response_to=in_response_to,
        destination=destination,
        sp_entity_id=sp_entity_id,
        name_id=name_id,
        authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
        sign_response=req.get("sign_response", False),
        sign_assertion=req.get("sign_assertion", True),
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    return {
        "saml_response": base64.b64encode(str(response).encode("utf-8")).decode("ascii"),
        "relay_state": relay_state,
        "in_response_to": in_response_to,
        "destination": destination,
    }


def main():
    req = json.load(sys.stdin)
    handlers = {"metadata": metadata, "respond": respond}
    json.dump(handlers[req["command"]](req), sys.stdout)


if __name__ == "__main__":
    main()
