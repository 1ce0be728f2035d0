"""Users and roles, kept in a TOML file (env ``CUR_USERS``) with hashed passwords and wall tokens.

Roles (DESIGN: who sees what):
- ``curator``: everything;
- ``sector``: the listed sector blocks, every municipality;
- ``municipal``: one municipality, plus the municipalities' rating of the whole region;
- ``wall``: the situation-centre display, reached with a token URL, only the ``/wall`` page.

Passwords are hashed with werkzeug's scrypt; a wall token is stored as its SHA-256 (it is a long
random secret, so a fast hash is enough and lets the lookup be a plain comparison).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

ROLES = {
    "curator": "куратор",
    "sector": "руководитель отраслевого блока",
    "municipal": "МЦУ",
    "wall": "экран ситуационного центра",
}
MIN_PASSWORD = 10
# Checked against this hash when the login is unknown, so that a wrong login costs as much time as a
# wrong password and does not reveal which logins exist.
_DUMMY_HASH = generate_password_hash("not-a-password-" + secrets.token_hex(8))


class UsersError(ValueError):
    """A users file or a user definition that cannot be used; the message is in Russian."""


@dataclass(frozen=True)
class User:
    login: str
    role: str
    sectors: tuple[str, ...] = ()
    municipality: str | None = None
    password_hash: str | None = None
    token_sha256: str | None = None

    @property
    def role_label(self) -> str:
        return ROLES[self.role]

    @property
    def fingerprint(self) -> str:
        """Changes with the password, token, role or scope: a session carries it, so any of these
        changes (and a removal followed by a new user of the same login) ends every old session."""
        parts = (self.role, ",".join(self.sectors), self.municipality or "", self.password_hash or "",
                 self.token_sha256 or "")
        return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def users_path() -> Path | None:
    value = os.environ.get("CUR_USERS")
    return Path(value) if value else None


def _validate(user: User) -> None:
    if user.role not in ROLES:
        raise UsersError(f"пользователь {user.login}: неизвестная роль {user.role!r}; допустимы: {', '.join(ROLES)}")
    if not user.login or any(c.isspace() for c in user.login) or len(user.login) > 64:
        raise UsersError(f"недопустимый логин {user.login!r}: без пробелов, не длиннее 64 символов")
    if user.role == "sector" and not user.sectors:
        raise UsersError(f"пользователь {user.login}: для роли sector нужен хотя бы один --sector")
    if user.role == "municipal" and not user.municipality:
        raise UsersError(f"пользователь {user.login}: для роли municipal нужен --municipality")
    if user.role == "wall":
        if not user.token_sha256:
            raise UsersError(f"пользователь {user.login}: у экрана нет токена")
    elif not user.password_hash:
        raise UsersError(f"пользователь {user.login}: нет пароля")


def load_users(path: Path) -> dict[str, User]:
    """All users of the file; a broken file raises ``UsersError`` rather than letting anyone in."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsersError(f"файл пользователей не найден: {path}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsersError(f"файл пользователей {path} не читается: {exc}") from exc
    users: dict[str, User] = {}
    for login, entry in (raw.get("users") or {}).items():
        if not isinstance(entry, dict):
            raise UsersError(f"пользователь {login}: ожидалась таблица [users.{login}]")
        user = User(
            login=login,
            role=str(entry.get("role", "")),
            sectors=tuple(str(s) for s in entry.get("sectors", [])),
            municipality=entry.get("municipality"),
            password_hash=entry.get("password_hash"),
            token_sha256=entry.get("token_sha256"),
        )
        _validate(user)
        users[login] = user
    return users


def save_users(path: Path, users: dict[str, User]) -> None:
    """Write the file atomically with owner-only permissions (it holds password hashes)."""
    lines = ["# ЦУР Heatmap: пользователи и роли. Изменяйте командой `python -m auth add-user`.", ""]
    for login in sorted(users):
        user = users[login]
        # JSON strings are valid TOML basic strings; keys are quoted the same way
        lines.append(f"[users.{json.dumps(login, ensure_ascii=False)}]")
        lines.append(f"role = {json.dumps(user.role)}")
        if user.sectors:
            lines.append(f"sectors = {json.dumps(list(user.sectors), ensure_ascii=False)}")
        if user.municipality:
            lines.append(f"municipality = {json.dumps(user.municipality, ensure_ascii=False)}")
        if user.password_hash:
            lines.append(f"password_hash = {json.dumps(user.password_hash)}")
        if user.token_sha256:
            lines.append(f"token_sha256 = {json.dumps(user.token_sha256)}")
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    os.replace(tmp, path)


def make_user(login: str, role: str, password: str | None = None, sectors: list[str] | None = None,
              municipality: str | None = None) -> tuple[User, str | None]:
    """A new user; for the wall role also its fresh token (shown once, stored only as a hash)."""
    token = None
    if role == "wall":
        token = secrets.token_urlsafe(32)
        user = User(login, role, tuple(sectors or ()), municipality, token_sha256=hash_token(token))
    else:
        check_password_rules(login, password)
        user = User(login, role, tuple(sectors or ()), municipality, password_hash=generate_password_hash(password))
    _validate(user)
    return user, token


# the most used passwords of Russian-language leaks that pass the length rule
_COMMON = frozenset({"1234567890", "0987654321", "qwertyuiop", "йцукенгшщз", "password12", "password123",
                     "1q2w3e4r5t", "1qaz2wsx3edc", "qwerty1234", "qwerty12345", "0123456789", "9876543210",
                     "administrator", "пароль1234", "zaq12wsxcde"})


def check_password_rules(login: str, password: str | None) -> None:
    """Refuse blank, short and trivial passwords with a Russian reason."""
    if password is None or len(password.strip()) < MIN_PASSWORD:
        raise UsersError(f"пароль должен быть не короче {MIN_PASSWORD} символов (пробелы по краям не считаются)")
    folded = password.strip().lower()
    if len(set(folded)) < 4:
        raise UsersError("пароль слишком простой: в нём меньше четырёх разных символов")
    if folded in _COMMON or login.lower() in folded:
        raise UsersError("пароль слишком простой: он из списка частых паролей или содержит логин")
    digits = [ord(c) for c in folded]
    if all(b - a == digits[1] - digits[0] and abs(b - a) <= 1 for a, b in zip(digits, digits[1:], strict=False)):
        raise UsersError("пароль слишком простой: это ряд одинаковых или подряд идущих символов")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_password(users: dict[str, User], login: str, password: str) -> User | None:
    user = users.get(login)
    if user is None or user.password_hash is None:
        check_password_hash(_DUMMY_HASH, password)  # same cost as a real check
        return None
    return user if check_password_hash(user.password_hash, password) else None


def user_for_token(users: dict[str, User], token: str) -> User | None:
    digest = hash_token(token)
    for user in users.values():
        if user.token_sha256 and hmac.compare_digest(user.token_sha256, digest):
            return user
    return None


class UsersFile:
    """The users file, re-read when it changes on disk (a removed user loses access at once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, User] = {}
        self.users()  # a broken file fails at start-up, not at the first sign-in

    def users(self) -> dict[str, User]:
        st = os.stat(self.path)
        stamp = (st.st_ino, st.st_mtime_ns)
        if stamp != self._stamp:
            self._users = load_users(self.path)
            self._stamp = stamp
        return self._users
