"""Accept MD5-crypt (`$1$...`) passwords from the original BigV documentation.

The hash is verified with libpass and replaced by Django's default hasher at
the first successful sign-in (`must_update` is always true).
"""

from django.contrib.auth.hashers import BasePasswordHasher
from passlib.hash import md5_crypt

PREFIX = "md5_crypt$"


def is_md5_crypt(value: str) -> bool:
    """A well-formed `$1$salt$digest`; a malformed one is taken as a password."""
    if not value.startswith("$1$"):
        return False
    try:
        parsed = md5_crypt.from_string(value)
    except ValueError:
        return False
    return bool(parsed.checksum)


class MD5CryptPasswordHasher(BasePasswordHasher):
    algorithm = "md5_crypt"

    def encode(self, password, salt):
        return PREFIX + md5_crypt.using(salt=salt[:8]).hash(password)

    def salt(self):
        return super().salt()[:8]

    def verify(self, password, encoded):
        crypt = encoded.removeprefix(PREFIX)
        try:
            return md5_crypt.verify(password, crypt)
        except ValueError:
            return False

    def safe_summary(self, encoded):
        return {"algorithm": self.algorithm, "hash": "********"}

    def must_update(self, encoded):
        return True

    def harden_runtime(self, password, encoded):
        pass

    def decode(self, encoded):
        crypt = encoded.removeprefix(PREFIX)
        _, _, salt, digest = crypt.split("$", 3)
        return {"algorithm": self.algorithm, "hash": digest, "salt": salt}


def stored_form(md5_crypt_hash: str) -> str:
    """How a `$1$...` hash given at sign-up is kept in User.password."""
    return PREFIX + md5_crypt_hash
