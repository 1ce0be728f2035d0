"""``python -m auth add-user LOGIN --role ROLE [...]``, ``remove-user LOGIN``, ``list``.

The password is read from standard input (never from the command line, where ``ps`` shows it).
The file is ``--users PATH`` or env ``CUR_USERS``. ``--municipality`` is checked against the units of
the warehouse (``--db`` or env ``CUR_DB``) — by name, alias or code — and stored under its name there.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from auth.users import ROLES, UsersError, load_users, make_user, save_users, users_path
from data.names import MunicipalityIndex
from data.warehouse import connect, default_db_path, read_reference, read_region


def _known_sectors() -> set[str]:
    return {row["code"] for row in read_reference("sectors.csv")}


def _known_municipality(name: str, db: Path) -> str:
    """The warehouse's own name of the unit ``name`` names (name, alias, ОКТМО/ОКАТО); UsersError if none."""
    import duckdb

    if not db.exists():
        raise UsersError(f"хранилище не найдено: {db}, проверить муниципальное образование не по чему; "
                         "укажите хранилище: --db ФАЙЛ (или CUR_DB) или не проверяйте название: --any-municipality")
    try:
        con = connect(db, read_only=True)
        try:
            index = MunicipalityIndex.from_warehouse(con)
            region = read_region(con).label
        finally:
            con.close()
    except duckdb.Error as exc:
        raise UsersError(f"не удалось прочитать хранилище {db}: {exc}") from exc
    if not index.names:
        raise UsersError(f"в хранилище {db} ещё нет муниципальных образований: загрузите границы "
                         "(python -m geo import ФАЙЛ) или не проверяйте название: --any-municipality")
    match = index.match(name)
    if match.id is None:
        if match.ambiguous:
            raise UsersError(f"«{name}» подходит к нескольким муниципальным образованиям: {', '.join(match.ambiguous)}")
        raise UsersError(f"нет такого муниципального образования в хранилище ({region}): {name}")
    return index.names[match.id]


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Пароль: ")
        if getpass.getpass("Повторите пароль: ") != first:
            raise UsersError("пароли не совпадают")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auth", description="Пользователи ЦУР Heatmap")
    parser.add_argument("--users", help="файл пользователей (по умолчанию env CUR_USERS)")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add-user", help="добавить или заменить пользователя (пароль читается со стандартного ввода)")
    add.add_argument("login")
    add.add_argument("--role", required=True, choices=list(ROLES))
    add.add_argument("--sector", action="append", default=[], help="код отраслевого блока (можно несколько)")
    add.add_argument("--municipality", help="муниципальное образование (для роли municipal)")
    add.add_argument("--any-municipality", action="store_true",
                     help="не проверять название по муниципалитетам хранилища")
    add.add_argument("--db", help="хранилище, по которому проверяется муниципалитет (по умолчанию $CUR_DB)")
    rm = sub.add_parser("remove-user", help="удалить пользователя")
    rm.add_argument("login")
    sub.add_parser("list", help="показать пользователей")
    args = parser.parse_args(argv)

    path = Path(args.users) if args.users else users_path()
    if path is None:
        print("ошибка: укажите файл пользователей: --users ФАЙЛ или переменная CUR_USERS", file=sys.stderr)
        return 2
    try:
        users = load_users(path) if path.exists() else {}
        if args.command == "list":
            for user in users.values():
                where = ", ".join(user.sectors) or user.municipality or "весь регион"
                print(f"{user.login}\t{user.role}\t{where}")
            return 0
        if args.command == "remove-user":
            if users.pop(args.login, None) is None:
                raise UsersError(f"нет пользователя {args.login}")
            save_users(path, users)
            print(f"пользователь {args.login} удалён")
            return 0
        unknown = sorted(set(args.sector) - _known_sectors())
        if unknown:
            raise UsersError(f"неизвестный отраслевой блок: {', '.join(unknown)}; "
                             f"допустимы: {', '.join(sorted(_known_sectors()))}")
        municipality = args.municipality
        if municipality and not args.any_municipality:
            municipality = _known_municipality(municipality, Path(args.db) if args.db else default_db_path())
        password = None if args.role == "wall" else _read_password()
        user, token = make_user(args.login, args.role, password, args.sector, municipality)
        users[user.login] = user
        save_users(path, users)
    except UsersError as exc:
        print(f"ошибка: {exc}", file=sys.stderr)
        return 2
    print(f"пользователь {user.login} ({ROLES[user.role]}) сохранён в {path}")
    if token:
        print(f"адрес экрана (показывается один раз): /wall?token={token}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
