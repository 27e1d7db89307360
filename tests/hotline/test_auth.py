"""Login, tokens, masking and confidentiality."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from hotline import auth
from hotline.models import User
from hotline.services import Services
from hotline.settings import Settings
from hotline.views import mask_phone
from tests.conftest import City, act, submit
from wechat_bot.settings import WeChatSettings


def test_login_returns_a_bearer_token(client: TestClient, city: City) -> None:
    r = client.post("/api/auth/login", json={"username": "agent", "password": "agent123"})
    assert r.status_code == 200 and r.json()["token_type"] == "bearer"
    me = client.get("/api/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.json()["role"] == "agent"


def test_wrong_password_is_401(client: TestClient, city: City) -> None:
    assert client.post("/api/auth/login", json={"username": "agent", "password": "nope"}).status_code == 401
    assert client.post("/api/auth/login", json={"username": "ghost", "password": "x"}).status_code == 401


def test_no_token_forged_token_and_expired_token_are_401(client: TestClient, city: City, services: Services) -> None:
    assert client.get("/api/tickets").status_code == 401
    assert client.get("/api/tickets", headers={"Authorization": "Bearer not.a.jwt"}).status_code == 401
    with services.sessions() as s:
        user = s.get(User, city.ids["user:agent"])
        assert user is not None
        old, _ = auth.issue_token(services.settings, user, now=datetime.now(UTC) - timedelta(days=2))
    r = client.get("/api/tickets", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_passwords_are_hashed_with_argon2(services: Services, city: City) -> None:
    with services.sessions() as s:
        user = s.get(User, city.ids["user:agent"])
        assert user is not None and user.password_hash.startswith("$argon2")


def test_outside_demo_mode_default_secrets_are_refused() -> None:
    with pytest.raises(ValidationError, match="HOTLINE_SECRET_KEY"):
        Settings(demo=False)
    with pytest.raises(ValidationError, match="CHANNEL_KEYS"):
        Settings(demo=False, secret_key="x" * 40)
    with pytest.raises(ValidationError, match="HOTLINE_WECHAT_TOKEN"):
        Settings(demo=False, secret_key="x" * 40, channel_keys={"wechat": "k" * 20})
    Settings(demo=False, secret_key="x" * 40, channel_keys={"wechat": "k" * 20},
             wechat=WeChatSettings(enabled=False))
    Settings(demo=False, secret_key="x" * 40, channel_keys={"wechat": "k" * 20},
             wechat=WeChatSettings(token="CityToken123", appid="wx1234567890abcdef", aes_key=None, secret="s" * 32))


def test_phone_is_masked_for_units_and_confidential_tickets_hide_the_citizen(client: TestClient, city: City) -> None:
    open_ = submit(client, city, citizen={"name": "李女士", "phone": "13800001234"})
    secret = submit(client, city, "举报某工地夜间施工", citizen={"name": "王先生", "phone": "13900005678"},
                    confidential=True)
    for t in (open_, secret):
        act(client, city, "agent", t["id"], "dispatch", unit_id=city.ids["unit:cjjd"])
    seen = client.get(f"/api/tickets/{open_['id']}", headers=city.headers("cjjd")).json()
    assert seen["citizen"]["phone"] == "138****1234"
    hidden = client.get(f"/api/tickets/{secret['id']}", headers=city.headers("cjjd")).json()
    assert hidden["citizen"] is None
    by_agent = client.get(f"/api/tickets/{secret['id']}", headers=city.headers("agent")).json()
    assert by_agent["citizen"]["phone"] == "13900005678"


def test_mask_phone() -> None:
    assert mask_phone("13800001234") == "138****1234"
    assert mask_phone(None) is None
