import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, select

from advocado.services.users import create_user, set_disabled, verify_login
from advocado.store.db import unit_of_work
from advocado.store.models import User


def test_create_then_sign_in_with_any_case_of_the_email(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        create_user(session, email=" Mei.Lin@Example.COM ", password="s3cret-pass", role="analyst")
    with unit_of_work(engine) as session:
        stored = session.scalar(select(User))
        assert stored is not None
        assert (stored.email, stored.role) == ("mei.lin@example.com", "analyst")
        assert "s3cret-pass" not in stored.password_hash
        user = verify_login(session, email="MEI.LIN@example.com", password="s3cret-pass")
        assert user is not None and user.id == stored.id


def test_duplicate_email_is_refused_whatever_its_case(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        create_user(session, email="ops@example.com", password="password-1", role="admin")
    with (
        pytest.raises(ValueError, match="ops@example.com already exists"),
        unit_of_work(engine) as session,
    ):
        create_user(session, email="OPS@example.com", password="password-2", role="marketer")
    with unit_of_work(engine) as session:
        assert len(session.scalars(select(User)).all()) == 1


@pytest.mark.parametrize(
    ("email", "password", "role", "message"),
    [("not-an-email", "password-1", "admin", "email"),
     ("a@example.com", "short", "admin", "at least 8"),
     ("a@example.com", "password-1", "owner", "role")],
)  # fmt: skip
def test_bad_input_is_refused(engine: Engine, email: str, password: str, role: str,
                              message: str) -> None:  # fmt: skip
    with pytest.raises(ValueError, match=message), unit_of_work(engine) as session:
        create_user(session, email=email, password=password, role=role)


def test_wrong_password_and_unknown_email_fail(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        create_user(session, email="a@example.com", password="right-password", role="admin")
    with unit_of_work(engine) as session:
        assert verify_login(session, email="a@example.com", password="wrong-password") is None
        assert verify_login(session, email="b@example.com", password="right-password") is None
        assert verify_login(session, email="", password="right-password") is None


def test_disabled_user_cannot_sign_in(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        create_user(session, email="a@example.com", password="right-password", role="community")
    with unit_of_work(engine) as session:
        set_disabled(session, email="a@example.com", disabled=True)
    with unit_of_work(engine) as session:
        assert verify_login(session, email="a@example.com", password="right-password") is None
        set_disabled(session, email="a@example.com", disabled=False)
    with unit_of_work(engine) as session:
        assert verify_login(session, email="a@example.com", password="right-password") is not None


def test_old_hash_parameters_are_upgraded_on_sign_in(engine: Engine) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    with unit_of_work(engine) as session:
        user = create_user(session, email="a@example.com", password="right-password", role="admin")
        user.password_hash = weak.hash("right-password")
    with unit_of_work(engine) as session:
        assert verify_login(session, email="a@example.com", password="right-password")
    with unit_of_work(engine) as session:
        upgraded = session.scalar(select(User.password_hash))
    assert upgraded is not None and "m=8192" not in upgraded
    assert not PasswordHasher().check_needs_rehash(upgraded)
