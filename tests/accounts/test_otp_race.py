"""One new OTP sent by ten requests at once is accepted once, then replayed."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from accounts.models import LocalYubikey
from accounts.otp import OtpRejected, verify_yubikey_otp
from tests.factories import SimulatedYubikey, make_user

THREADS = 10


@pytest.mark.race
@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_verifications_count_the_otp_once():
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    user = make_user()
    key = SimulatedYubikey(user)
    otp = key.otp()
    start = threading.Barrier(THREADS)

    def verify():
        try:
            start.wait()
            return verify_yubikey_otp(user, otp)
        except OtpRejected as exc:
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda _: verify(), range(THREADS)))

    device = LocalYubikey.objects.get(pk=key.device.pk)
    # Every request succeeds, and all report the one verification that was
    # stored: a second acceptance would have stamped a time of its own.
    assert not [r for r in results if isinstance(r, Exception)]
    assert set(results) == {device.last_verified_at}
    assert (device.session, device.counter) == (1, 0)
