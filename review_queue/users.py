"""Users and their tokens: only a token's hash is stored, and the audit log holds a hash of that."""

from __future__ import annotations

import hashlib
import secrets

from review_queue import audit, sql
from review_queue.audit import Event
from review_queue.errors import Conflict, NotFound, QueueError
from review_queue.records import User
from review_queue.store_base import StoreBase

ROLES = ("reviewer", "arbiter", "maintainer", "admin")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_fingerprint(token_hash: str) -> str:
    """What the audit log records of a token: a hash of its stored hash (verify can match it; nobody can use it)."""
    return hashlib.sha256(f"medaug-token:{token_hash}".encode()).hexdigest()


class UserOps(StoreBase):
    def add_user(self, name: str, role: str, *, actor: str = "admin") -> str:
        """Create a user and return their token; only its hash is stored, so it cannot be shown again."""
        if role not in ROLES:
            raise QueueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if not name.strip() or len(name) > 100:
            raise QueueError("user name must be 1-100 characters")
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self.engine.begin() as conn:
            if conn.execute(sql.USER_NAMED, {"name": name}).first():
                raise Conflict(f"user {name!r} already exists")
            token_hash = hash_token(token)
            conn.execute(
                sql.ADD_USER, {"name": name, "role": role, "token_hash": token_hash, "created_at": now}
            )
            audit.append(
                conn,
                [
                    Event(
                        actor,
                        "user",
                        None,
                        None,
                        {"name": name, "role": role, "token": token_fingerprint(token_hash)},
                    )
                ],
                at=now,
            )
        return token

    def revoke_user(self, name: str, *, actor: str = "admin") -> int:
        """Revoke a user's token at once (every later request is 401); their leases go back to the pool.

        Returns how many leased items were released. The user row stays (its name is in the
        reviews and the log) and the name cannot be given to someone else.
        """
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(sql.LOCK_USER, {"name": name}).first()
            if row is None:
                raise NotFound(f"unknown user {name!r}")
            if row.revoked_at is not None:
                raise Conflict(f"user {name!r} is already revoked")
            conn.execute(sql.REVOKE_USER, {"u_name": name, "u_at": now})
            held = conn.execute(sql.LOCK_LEASES_OF, {"owner": name}).scalars().all()
            if held:
                conn.execute(sql.END_LEASES, {"ids": list(held)})
            audit.append(
                conn,
                [
                    Event(
                        actor,
                        "revoke",
                        None,
                        {"name": name, "role": row.role},
                        {"name": name, "revoked": True},
                    ),
                    *(Event(actor, "release", i, {"lease_owner": name}, {"lease_owner": None}) for i in held),
                ],
                at=now,
            )
        return len(held)

    def authenticate(self, token: str) -> User | None:
        """The user holding this token, None for an unknown or revoked one (checked on every request)."""
        with self.engine.connect() as conn:
            row = conn.execute(sql.TOKEN_USER, {"token_hash": hash_token(token)}).first()
        return User(row.name, row.role) if row else None
