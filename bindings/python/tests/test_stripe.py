"""The Stripe provider through the binding, without the network: a local
server that never answers stands in for a slow Stripe."""

import hashlib
import hmac
import socket
import threading
import time

import pytest

import ticketyboo as tb


@pytest.fixture
def silent_server():
    """Accepts connections on 127.0.0.1 and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    t.join()
    for conn in held:
        conn.close()
    listener.close()


def test_options_are_validated_with_their_field():
    with pytest.raises(tb.InvalidArgument) as missing:
        tb.StripePayments("")
    assert missing.value.field == "secret_key"
    with pytest.raises(tb.InvalidArgument) as plain_http:
        tb.StripePayments("sk_test_x", base_url="http://stripe.example.com")
    assert plain_http.value.field == "base_url"


def test_a_slow_provider_blocks_only_its_thread(silent_server, clock):
    stripe = tb.StripePayments("sk_test_x", base_url=silent_server, timeout_ms=800,
                               connect_timeout_ms=500, max_retries=0)
    with tb.Market(clock=clock, payments=stripe, password_cost="min") as market:
        seller, _ = market.signup("seller@example.com", "seller-password")
        buyer, _ = market.signup("buyer@example.com", "buyer-password")
        order = market.order(buyer, market.create_ticket(seller, "Seat", 4200))
        spins = [0]
        stop = threading.Event()

        def spinner():
            while not stop.is_set():
                spins[0] += 1

        t = threading.Thread(target=spinner)
        t.start()
        started = time.perf_counter()
        charge = market.pay(buyer, order, "pm_card_visa")
        elapsed = time.perf_counter() - started
        stop.set()
        t.join()
        print(f"\npay through a silent Stripe took {elapsed * 1000:.0f} ms; "
              f"another thread looped {spins[0]} times meanwhile")
        # No answer: the charge stays pending and the tick will ask again.
        assert charge.status == tb.ChargeStatus.PENDING and charge.provider == "stripe"
        assert market.get_order(buyer, order.id).status == tb.OrderStatus.AWAITING_PAYMENT
        assert elapsed >= 0.5
        assert spins[0] > 10_000


def _signature(secret, body, t):
    mac = hmac.new(secret.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def test_webhooks_are_verified_then_applied(clock):
    stripe = tb.StripePayments("sk_test_x", webhook_secret="whsec_test")
    with tb.Market(clock=clock, payments=stripe) as market:
        now_s = clock.now_ms // 1000
        body = '{"id":"evt_1","object":"event","type":"customer.created","data":{"object":{"id":"cus_1"}}}'
        market.stripe_webhook(_signature("whsec_test", body, now_s), body)  # verified, ignored type
        market.stripe_webhook(_signature("whsec_test", body, now_s), body.encode())
        with pytest.raises(tb.InvalidSignature) as bad:
            market.stripe_webhook(_signature("whsec_other", body, now_s), body)
        assert bad.value.code == "ESIGNATURE"
        with pytest.raises(tb.InvalidSignature):
            market.stripe_webhook(_signature("whsec_test", body, now_s - 3600), body)  # too old
        unknown = ('{"id":"evt_2","object":"event","type":"payment_intent.succeeded",'
                   '"data":{"object":{"id":"pi_1","metadata":{}}}}')
        with pytest.raises(tb.NotFound):
            market.stripe_webhook(_signature("whsec_test", unknown, now_s), unknown)


def test_stripe_webhook_needs_a_stripe_provider(market):
    with pytest.raises(tb.InvalidArgument) as err:
        market.stripe_webhook("t=1,v1=00", "{}")
    assert err.value.field == "payments"
