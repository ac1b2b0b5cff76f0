"""Console users: creating them and checking a sign-in. Passwords are argon2id hashes."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain import records
from advocado.domain.roles import role as parse_role
from advocado.services import audit
from advocado.store.models import User

MIN_PASSWORD_LENGTH = 8
_hasher = PasswordHasher()
# Checked when the email is unknown, so a miss costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("advocado: no such user")


def normal_email(value: str) -> str:
    """The stored form of a login email: validated, trimmed, lower case."""
    found = records.email(value)
    if found is None:
        raise ValueError("email: missing")
    return found.lower()


def create_user(
    session: Session, *, email: str, password: str, role: str, actor: str = audit.SYSTEM
) -> User:
    address = normal_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    user_role = parse_role(role)
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise ValueError(f"a user with email {address} already exists")
    user = User(
        email=address,
        password_hash=_hasher.hash(password),
        role=user_role.value,
        created_at=clock.now(),
        disabled_at=None,
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:  # created by someone else since we looked
        raise ValueError(f"a user with email {address} already exists") from None
    audit.record(
        session,
        actor=actor,
        entity="user",
        entity_id=address,
        action="create",
        after={"role": user.role},
    )
    return user


def verify_login(session: Session, *, email: str, password: str) -> User | None:
    """The user if the email and password match an enabled account, else None.

    An unknown email, a wrong password and a disabled account take about the same time and
    give the same answer. A hash made with older parameters is upgraded on success."""
    try:
        address = normal_email(email)
    except ValueError:
        address = None
    user = (
        session.scalar(select(User).where(User.email == address)) if address is not None else None
    )
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled_at is not None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def set_disabled(
    session: Session, *, email: str, disabled: bool, actor: str = audit.SYSTEM
) -> User:
    """Disable (or re-enable) a user; a disabled user can no longer sign in."""
    user = session.scalar(select(User).where(User.email == normal_email(email)))
    if user is None:
        raise LookupError(f"no user {email}")
    was = user.disabled_at is not None
    user.disabled_at = clock.now() if disabled else None
    if was != disabled:
        audit.record(
            session,
            actor=actor,
            entity="user",
            entity_id=user.email,
            action="disable" if disabled else "enable",
            before={"disabled": was},
            after={"disabled": disabled},
        )
    return user


def active_user(session: Session, *, user_id: int) -> User | None:
    """The user behind a console session, or None if gone or disabled."""
    user = session.get(User, user_id)
    if user is None or user.disabled_at is not None:
        return None
    return user


def list_users(session: Session) -> list[User]:
    """Every console user, by email."""
    return list(session.scalars(select(User).order_by(User.email)))
