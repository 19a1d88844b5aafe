#!/usr/bin/env python3
"""A fake Stripe API on 127.0.0.1 for libticketyboo's tests (Python 3 stdlib only).

It speaks the part of Stripe's REST API the Stripe provider uses:

  POST /v1/payment_methods          (type=card, card[token]=tok_...)
  POST /v1/payment_intents          (confirm=true)
  POST /v1/refunds
  GET  /v1/payment_intents/search   (query=metadata['k']:'v')

and checks every request against the request schemas of Stripe's OpenAPI
description (stripe-openapi-subset.json, a copy of ../shared's, plus
stripe-openapi-additions.json): unknown, missing, mistyped, over-long or
out-of-enum parameters are recorded as violations and answered 400
invalid_request_error, as Stripe would.  Tests assert that no violation was
recorded.  Authorization (Bearer), Content-Type and, on POST, an
Idempotency-Key are checked too.

Idempotency works like Stripe's: the first answer to a key (status and body,
500s included) is saved once the endpoint starts executing and replayed for a
retry with the same parameters (header Idempotent-Replayed: true); the same
key with other parameters or on another endpoint gets 400 idempotency_error;
a retry while the first request is still executing gets 409.  Validation
failures, auth failures and rate limits are not saved.

Built-in behaviour by token mirrors Stripe's test tokens: tok_visa and
pm_card_visa (and any other tok_/pm_card_ name not listed below) succeed;
*chargeDeclined declines with card_declined/generic_decline,
*chargeDeclinedInsufficientFunds with insufficient_funds, *chargeDeclinedExpiredCard
with expired_card; tok_unknown* is "No such token".

Control endpoints (JSON):
  POST /__control/reset              forget everything
  POST /__control/script             {"token": T, "op": "charge"|"refund"|
                                      "payment_method"|"search", "responses": [R...]}
      queues answers for the next requests about token T (for a refund: the
      token that paid the PaymentIntent).  R is one of
        {"action": "succeed"}
        {"action": "decline", "code": c, "decline_code": d, "message": m}
        {"action": "status", "status": "processing"}        (a 200 PaymentIntent in that status)
        {"action": "error", "status": 500, "type": "api_error", "code": c, "message": m,
         "saved": true|false, "should_retry": "true"|"false"|null}
        {"action": "hang", "seconds": s, "then": R}  executes R after s seconds
            (the key is in flight meanwhile), then answers; a client that timed
            out never sees it, a retry then gets the saved answer
        {"action": "drop", "process": true|false}  closes the connection without
            an answer, after executing (true: the answer is lost) or before (false)
  POST /__control/config             {"search_visible": bool}
  GET  /__control/log                {"requests": [{method, path, query, headers, form, body, status}]}
  GET  /__control/violations         {"violations": [...]}
  GET  /__control/state              {"payment_intents": [...], "refunds": [...], "payment_methods": [...]}

Usage: fake_stripe.py --port-file FILE [--port 0] [--key sk_test_fake]
The port is written to FILE (atomically) once the server listens.
"""

import argparse
import copy
import http.server
import json
import os
import re
import secrets
import socket
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))

DECLINES = {
    "chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    "chargeDeclinedInsufficientFunds": ("card_declined", "insufficient_funds",
                                        "Your card has insufficient funds."),
    "chargeDeclinedExpiredCard": ("expired_card", None, "Your card has expired."),
}


def load_spec():
    with open(os.path.join(HERE, "stripe-openapi-subset.json"), encoding="utf-8") as f:
        spec = json.load(f)
    with open(os.path.join(HERE, "stripe-openapi-additions.json"), encoding="utf-8") as f:
        extra = json.load(f)
    spec["requests"].update(extra["requests"])
    return spec


SPEC = load_spec()
FIXTURES = SPEC["fixtures"]


def new_id(prefix):
    return prefix + "_" + secrets.token_hex(12)


class StripeError(Exception):
    def __init__(self, status, etype, message, code=None, param=None, extra=None):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": etype, "message": message}}
        if code:
            self.body["error"]["code"] = code
        if param:
            self.body["error"]["param"] = param
        if extra:
            self.body["error"].update(extra)


# ---- form decoding and schema validation -------------------------------------

KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def decode_form(body):
    """Decode an x-www-form-urlencoded body into nested dicts/lists (Stripe's
    bracket convention).  Returns (pairs, tree, errors)."""
    errors = []
    try:
        pairs = urllib.parse.parse_qsl(body, keep_blank_values=True, strict_parsing=True,
                                       errors="strict") if body else []
    except (ValueError, UnicodeDecodeError) as e:
        return [], {}, ["malformed form body: %s" % e]
    tree = {}
    for key, value in pairs:
        m = KEY_RE.match(key)
        if not m:
            errors.append("malformed parameter name %r" % key)
            continue
        parts = [m.group(1)] + re.findall(r"\[([^\[\]]*)\]", m.group(2))
        node = tree
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                errors.append("parameter %r mixes [] with nested keys" % key)
                break
            if last:
                if part == "":
                    errors.append("parameter %r: empty key" % key)
                elif part in node:
                    errors.append("duplicate parameter %r" % key)
                else:
                    node[part] = value
                break
            nxt = parts[i + 1]
            if nxt == "" and i + 1 == len(parts) - 1:
                lst = node.setdefault(part, [])
                if not isinstance(lst, list):
                    errors.append("parameter %r used both as list and scalar" % key)
                else:
                    lst.append(value)
                break
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                errors.append("parameter %r used both as object and scalar" % key)
                break
            node = child
    return pairs, tree, errors


def validate(schema, value, path, errs):
    name = path or "(body)"
    if "anyOf" in schema:
        for sub in schema["anyOf"]:
            sub_errs = []
            validate(sub, value, path, sub_errs)
            if not sub_errs:
                return
        errs.append("%s: matches none of the allowed forms" % name)
        return
    stype = schema.get("type")
    if stype == "array" and isinstance(value, dict) and value and all(k.isdigit() for k in value):
        value = [value[k] for k in sorted(value, key=int)]
    if stype == "object":
        if not isinstance(value, dict):
            errs.append("%s: expected an object (bracketed keys), got %r" % (name, value))
            return
        props = schema.get("properties", {})
        addl = schema.get("additionalProperties")
        for k, v in value.items():
            sub = path + "[" + k + "]" if path else k
            if k in props:
                validate(props[k], v, sub, errs)
            elif isinstance(addl, dict):
                validate(addl, v, sub, errs)
            else:
                errs.append("Received unknown parameter: %s" % sub)
        for r in schema.get("required", []):
            if r not in value:
                errs.append("Missing required param: %s" % (path + "[" + r + "]" if path else r))
        return
    if stype == "array":
        if not isinstance(value, list):
            errs.append("%s: expected an array (key[]), got %r" % (name, value))
            return
        for i, item in enumerate(value):
            validate(schema.get("items", {}), item, "%s[%d]" % (path, i), errs)
        return
    if isinstance(value, (dict, list)):
        errs.append("%s: expected a scalar, got nested keys" % name)
        return
    if stype == "integer":
        if not re.fullmatch(r"-?[0-9]+", value):
            errs.append("Invalid integer: %s=%r" % (name, value))
            return
    elif stype == "number":
        try:
            float(value)
        except ValueError:
            errs.append("Invalid number: %s=%r" % (name, value))
            return
    elif stype == "boolean":
        if value not in ("true", "false"):
            errs.append("Invalid boolean: %s=%r" % (name, value))
            return
    elif stype == "string":
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errs.append("%s: longer than %d characters" % (name, schema["maxLength"]))
    if "enum" in schema and value not in schema["enum"]:
        errs.append("Invalid %s: must be one of %s" % (name, ", ".join(map(str, schema["enum"]))))


def body_schema(endpoint):
    req = SPEC["requests"][endpoint]["requestBody"]
    return req["content"]["application/x-www-form-urlencoded"]["schema"]


def validate_query(endpoint, query, errs):
    params = {p["name"]: p for p in SPEC["requests"][endpoint]["parameters"]}
    _, tree, perrs = decode_form(query)
    errs.extend(perrs)
    for k, v in tree.items():
        if k not in params:
            errs.append("Received unknown parameter: %s" % k)
        else:
            validate(params[k]["schema"], v, k, errs)
    for k, p in params.items():
        if p.get("required") and k not in tree:
            errs.append("Missing required param: %s" % k)
    return tree


# ---- the fake's state ------------------------------------------------------------

class State:
    def __init__(self, key):
        self.lock = threading.Lock()
        self.key = key
        self.reset()

    def reset(self):
        self.payment_methods = {}  # pm id -> {"id", "token"}
        self.intents = {}          # pi id -> payment_intent object
        self.intent_token = {}     # pi id -> token that paid it
        self.refunds = {}          # re id -> refund object
        self.idem = {}             # key -> {"fp", "inflight", "status", "body"}
        self.scripts = {}          # (token, op) -> [responses]
        self.log = []
        self.violations = []
        self.search_visible = True

    def next_script(self, token, op):
        queue = self.scripts.get((token, op))
        if queue:
            return queue.pop(0)
        return None


STATE = None


def known_token(token):
    if token.startswith("tok_unknown"):
        return False
    return token.startswith("tok_") or token.startswith("pm_card_")


def builtin_outcome(token):
    for suffix, (code, decline_code, message) in DECLINES.items():
        if token.endswith("_" + suffix) or token.endswith(suffix):
            return {"action": "decline", "code": code, "decline_code": decline_code,
                    "message": message}
    return {"action": "succeed"}


def make_intent(form, status, token):
    pi = copy.deepcopy(FIXTURES["payment_intent"])
    pid = new_id("pi")
    pi.update({
        "id": pid,
        "amount": int(form["amount"]),
        "amount_capturable": 0,
        "amount_received": int(form["amount"]) if status == "succeeded" else 0,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "client_secret": pid + "_secret_" + secrets.token_hex(8),
        "created": int(time.time()),
        "currency": form["currency"],
        "description": form.get("description"),
        "last_payment_error": None,
        "latest_charge": new_id("ch") if status in ("succeeded", "requires_payment_method") else None,
        "metadata": dict(form.get("metadata", {})),
        "next_action": None,
        "payment_method": form.get("payment_method"),
        "payment_method_types": list(form.get("payment_method_types", ["card"])),
        "processing": None,
        "status": status,
        "transfer_data": None,
    })
    pi["amount_refunded"] = 0  # bookkeeping only (not a PaymentIntent field); stripped on output
    return pi


def public(obj):
    out = copy.deepcopy(obj)
    out.pop("amount_refunded", None)
    return out


def run_charge(form, outcome):
    """Execute POST /v1/payment_intents with an outcome; returns (status, body)."""
    token = form["_token"]
    act = outcome["action"]
    if act == "succeed":
        pi = make_intent(form, "succeeded", token)
    elif act == "status":
        pi = make_intent(form, outcome["status"], token)
    elif act == "decline":
        pi = make_intent(form, "requires_payment_method", token)
        err = {"type": "card_error", "code": outcome.get("code") or "card_declined",
               "message": outcome.get("message") or "Your card was declined."}
        if outcome.get("decline_code"):
            err["decline_code"] = outcome["decline_code"]
        pi["last_payment_error"] = dict(err)
        with STATE.lock:
            STATE.intents[pi["id"]] = pi
            STATE.intent_token[pi["id"]] = token
        err["charge"] = pi["latest_charge"]
        err["payment_intent"] = public(pi)
        return 402, {"error": err}
    else:
        raise ValueError("bad outcome %r" % act)
    with STATE.lock:
        STATE.intents[pi["id"]] = pi
        STATE.intent_token[pi["id"]] = token
    return 200, public(pi)


def run_refund(form, outcome):
    pid = form.get("payment_intent")
    act = outcome["action"]
    if act == "decline":
        err = {"type": "card_error", "code": outcome.get("code") or "card_declined",
               "message": outcome.get("message") or "The refund was declined."}
        return 402, {"error": err}
    with STATE.lock:
        pi = STATE.intents.get(pid)
        if pi is None:
            raise StripeError(400, "invalid_request_error",
                              "No such payment_intent: '%s'" % pid, "resource_missing",
                              "payment_intent")
        if pi["status"] != "succeeded":
            raise StripeError(400, "invalid_request_error",
                              "This PaymentIntent (%s) does not have a successful charge to refund."
                              % pid, "charge_not_refundable")
        amount = int(form.get("amount", pi["amount"] - pi["amount_refunded"]))
        if pi["amount_refunded"] >= pi["amount"]:
            raise StripeError(400, "invalid_request_error",
                              "Charge %s has already been refunded." % pi["latest_charge"],
                              "charge_already_refunded")
        if amount > pi["amount"] - pi["amount_refunded"]:
            raise StripeError(400, "invalid_request_error",
                              "Refund amount is greater than unrefunded amount on charge.",
                              "amount_too_large", "amount")
        status = outcome.get("status", "succeeded") if act == "status" else "succeeded"
        if status == "succeeded" or status == "pending":
            pi["amount_refunded"] += amount
        re_ = copy.deepcopy(FIXTURES["refund"])
        re_.update({
            "id": new_id("re"),
            "amount": amount,
            "charge": pi["latest_charge"],
            "created": int(time.time()),
            "currency": pi["currency"],
            "metadata": dict(form.get("metadata", {})),
            "payment_intent": pid,
            "reason": form.get("reason"),
            "status": status,
        })
        STATE.refunds[re_["id"]] = re_
    return 200, re_


def run_payment_method(form, outcome):
    token = form["card"]["token"]
    if outcome["action"] == "decline":
        return 402, {"error": {"type": "card_error", "code": outcome.get("code") or "card_declined",
                               "message": outcome.get("message") or "Your card was declined."}}
    pm = {"id": new_id("pm"), "object": "payment_method", "type": "card",
          "card": {"brand": "visa", "last4": "4242"}, "created": int(time.time()),
          "customer": None, "livemode": False, "metadata": dict(form.get("metadata", {}))}
    with STATE.lock:
        STATE.payment_methods[pm["id"]] = {"id": pm["id"], "token": token}
    return 200, pm


# ---- HTTP --------------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-stripe/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    # -- plumbing
    def reply(self, status, body, extra_headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", new_id("req"))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            pass
        self.entry["status"] = status

    def drop(self):
        self.entry["status"] = "dropped"
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n).decode("utf-8", errors="replace") if n else ""

    def violation(self, msg):
        with STATE.lock:
            STATE.violations.append({"method": self.command, "path": self.path, "violation": msg})

    def begin(self, body):
        parsed = urllib.parse.urlsplit(self.path)
        pairs, _, _ = decode_form(body)
        self.entry = {"method": self.command, "path": parsed.path, "query": parsed.query,
                      "headers": {k: v for k, v in self.headers.items()},
                      "form": [[k, v] for k, v in pairs], "body": body, "status": None}
        if not parsed.path.startswith("/__control/"):
            with STATE.lock:
                STATE.log.append(self.entry)
        return parsed

    def do_GET(self):
        parsed = self.begin("")
        if parsed.path.startswith("/__control/"):
            return self.control_get(parsed.path)
        try:
            self.check_auth()
            if parsed.path != "/v1/payment_intents/search":
                self.violation("GET %s is not an endpoint the provider should call" % parsed.path)
                raise StripeError(404, "invalid_request_error",
                                  "Unrecognized request URL (GET: %s)." % parsed.path)
            self.check_common_headers(post=False)
            errs = []
            tree = validate_query("GET /v1/payment_intents/search", parsed.query, errs)
            if errs:
                for e in errs:
                    self.violation(e)
                raise StripeError(400, "invalid_request_error", errs[0])
            self.search(tree)
        except StripeError as e:
            self.reply(e.status, e.body)

    def do_POST(self):
        body = self.read_body()
        parsed = self.begin(body)
        if parsed.path.startswith("/__control/"):
            return self.control_post(parsed.path, body)
        try:
            self.check_auth()
            endpoint = "POST " + parsed.path
            handlers = {"POST /v1/payment_intents": ("charge", run_charge),
                        "POST /v1/refunds": ("refund", run_refund),
                        "POST /v1/payment_methods": ("payment_method", run_payment_method)}
            if endpoint not in handlers:
                self.violation("%s is not an endpoint the provider should call" % endpoint)
                raise StripeError(404, "invalid_request_error",
                                  "Unrecognized request URL (POST: %s)." % parsed.path)
            self.check_common_headers(post=True)
            ctype = self.headers.get("Content-Type", "")
            if ctype.split(";")[0].strip() != "application/x-www-form-urlencoded":
                self.violation("Content-Type %r is not application/x-www-form-urlencoded" % ctype)
            _, form, errs = decode_form(body)
            if not errs:
                validate(body_schema(endpoint), form, "", errs)
            if errs:
                for e in errs:
                    self.violation(e)
                raise StripeError(400, "invalid_request_error", errs[0])
            op, run = handlers[endpoint]
            self.execute(endpoint, op, run, form)
        except StripeError as e:
            self.reply(e.status, e.body)

    def check_auth(self):
        auth = self.headers.get("Authorization", "")
        if auth != "Bearer " + STATE.key:
            shown = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
            masked = (shown[:8] + "*" * 4 + shown[-4:]) if len(shown) > 12 else "****"
            raise StripeError(401, "invalid_request_error",
                              "Invalid API Key provided: %s" % masked)

    def check_common_headers(self, post):
        version = self.headers.get("Stripe-Version")
        if version is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?", version):
            self.violation("Stripe-Version %r is not an API version" % version)
        if post:
            key = self.headers.get("Idempotency-Key")
            if not key:
                self.violation("POST without an Idempotency-Key")
            elif len(key) > 255:
                self.violation("Idempotency-Key longer than 255 characters")

    # -- semantics
    def resolve_token(self, endpoint, form):
        """The test token behind a request, for scripts and built-in outcomes."""
        if endpoint == "POST /v1/payment_methods":
            token = (form.get("card") or {}).get("token")
            if form.get("type") != "card" or not token:
                raise StripeError(400, "invalid_request_error",
                                  "The provider only converts card tokens.", "parameter_invalid")
            if not known_token(token):
                raise StripeError(400, "invalid_request_error", "No such token: '%s'" % token,
                                  "resource_missing", "card[token]")
            return token
        if endpoint == "POST /v1/payment_intents":
            pm = form.get("payment_method")
            if pm is None:
                raise StripeError(400, "invalid_request_error",
                                  "You must provide a payment_method.", "parameter_missing",
                                  "payment_method")
            if pm.startswith("tok_"):
                raise StripeError(400, "invalid_request_error",
                                  "A token may not be passed in as a PaymentMethod. Instead, use "
                                  "payment_method_data with type=card and card[token]=%s." % pm,
                                  param="payment_method")
            with STATE.lock:
                made = STATE.payment_methods.get(pm)
            if made:
                return made["token"]
            if pm.startswith("pm_card_") and known_token(pm):
                return pm
            raise StripeError(400, "invalid_request_error",
                              "No such PaymentMethod: '%s'" % pm, "resource_missing",
                              "payment_method")
        # refunds: the token that paid the PaymentIntent
        with STATE.lock:
            return STATE.intent_token.get(form.get("payment_intent") or "", "")

    def execute(self, endpoint, op, run, form):
        key = self.headers.get("Idempotency-Key")
        fp = json.dumps([endpoint, form], sort_keys=True)
        with STATE.lock:
            saved = STATE.idem.get(key) if key else None
            if saved is not None:
                if saved["fp"] != fp:
                    err = StripeError(400, "idempotency_error",
                                      "Keys for idempotent requests can only be used with the same "
                                      "parameters they were first used with. Try using a key other "
                                      "than '%s' if you meant to execute a different request." % key)
                elif saved["inflight"]:
                    err = StripeError(409, "idempotency_error",
                                      "There is currently another in-progress request using this "
                                      "Idempotent Key (that probably means you submitted twice, and "
                                      "the other request is still going through): %s. Please try "
                                      "again later." % key, "idempotency_key_in_use")
                else:
                    err = None
                    status, body = saved["status"], saved["body"]
            elif key:
                STATE.idem[key] = {"fp": fp, "inflight": True, "status": None, "body": None}
        if saved is not None:
            if err is not None:
                return self.reply(err.status, err.body)
            return self.reply(status, body, {"Idempotent-Replayed": "true"})

        def forget():
            if key:
                with STATE.lock:
                    STATE.idem.pop(key, None)

        def save(status, body):
            if key:
                with STATE.lock:
                    STATE.idem[key] = {"fp": fp, "inflight": False, "status": status, "body": body}

        try:
            token = self.resolve_token(endpoint, form)
        except StripeError as e:
            forget()  # Stripe saves nothing when validation fails
            return self.reply(e.status, e.body)
        form = dict(form, _token=token)
        with STATE.lock:
            outcome = STATE.next_script(token, op)
        if outcome is None:
            outcome = builtin_outcome(token) if op == "charge" else {"action": "succeed"}

        act = outcome.get("action")
        if act == "hang":
            time.sleep(float(outcome.get("seconds", 5)))
            outcome = outcome.get("then") or (builtin_outcome(token) if op == "charge"
                                              else {"action": "succeed"})
            act = outcome.get("action")
        if act == "drop" and not outcome.get("process", False):
            forget()
            return self.drop()
        if act == "error":
            status = int(outcome.get("status", 500))
            etype = outcome.get("type") or ("api_error" if status >= 500 else "invalid_request_error")
            e = StripeError(status, etype, outcome.get("message") or "Fake Stripe error %d" % status,
                            outcome.get("code"))
            headers = {}
            if outcome.get("should_retry") is not None:
                headers["Stripe-Should-Retry"] = outcome["should_retry"]
            if outcome.get("saved", status == 500):
                save(status, e.body)
            else:
                forget()
            return self.reply(status, e.body, headers)
        real = outcome if act != "drop" else (builtin_outcome(token) if op == "charge"
                                              else {"action": "succeed"})
        try:
            status, body = run(form, real)
        except StripeError as e:
            forget()
            return self.reply(e.status, e.body)
        save(status, body)
        if act == "drop":
            return self.drop()
        return self.reply(status, body)

    def search(self, tree):
        query = tree["query"]
        clauses = re.split(r"\s+AND\s+", query.strip())
        wanted = []
        for c in clauses:
            m = re.fullmatch(r"metadata\['((?:[^'\\]|\\.)*)'\]:'((?:[^'\\]|\\.)*)'", c)
            if not m:
                raise StripeError(400, "invalid_request_error",
                                  "The fake only understands metadata['k']:'v' clauses: %r" % c)
            unescape = lambda s: re.sub(r"\\(.)", r"\1", s)
            wanted.append((unescape(m.group(1)), unescape(m.group(2))))
        with STATE.lock:
            found = [public(pi) for pi in STATE.intents.values()
                     if all(pi["metadata"].get(k) == v for k, v in wanted)]
            if not STATE.search_visible:
                found = []
        limit = int(tree.get("limit", 10))
        self.reply(200, {"object": "search_result", "data": found[:limit],
                         "has_more": len(found) > limit, "next_page": None,
                         "url": "/v1/payment_intents/search"})

    # -- control
    def control_get(self, path):
        with STATE.lock:
            if path == "/__control/log":
                body = {"requests": copy.deepcopy(STATE.log)}
            elif path == "/__control/violations":
                body = {"violations": list(STATE.violations)}
            elif path == "/__control/state":
                body = {"payment_intents": [public(p) for p in STATE.intents.values()],
                        "refunds": list(STATE.refunds.values()),
                        "payment_methods": list(STATE.payment_methods.values())}
            else:
                body = None
        if body is None:
            return self.reply(404, {"error": "no such control endpoint"})
        self.reply(200, body)

    def control_post(self, path, body):
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return self.reply(400, {"error": "control body is not JSON"})
        with STATE.lock:
            if path == "/__control/reset":
                STATE.reset()
            elif path == "/__control/script":
                queue = STATE.scripts.setdefault((data["token"], data.get("op", "charge")), [])
                queue.extend(data["responses"])
            elif path == "/__control/config":
                if "search_visible" in data:
                    STATE.search_visible = bool(data["search_visible"])
            else:
                return self.reply(404, {"error": "no such control endpoint"})
        self.reply(200, {"ok": True})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--key", default="sk_test_fake")
    args = ap.parse_args()
    STATE = State(args.key)
    server = Server(("127.0.0.1", args.port), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(tmp, args.port_file)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
