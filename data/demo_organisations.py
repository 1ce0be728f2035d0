"""Organisations of the demo region: who answers which appeals where.

Names of bodies follow the region's real pattern (ministries, administrations, ЦРБ);
companies have invented, generic names. Each organisation says which municipalities it
serves and which categories it handles with what weight; an appeal goes to one of the
organisations serving its municipality and category, drawn by these weights (local
specialists first, sometimes the local administration or the regional ministry).
"""

from __future__ import annotations

from dataclasses import dataclass, field

KIND_EXECUTIVE = "исполнительный орган"
KIND_LOCAL_GOV = "ОМСУ"
KIND_INSTITUTION = "учреждение"
KIND_UTILITY = "ресурсоснабжающая организация"
KIND_MANAGEMENT = "управляющая организация"
KIND_WASTE_OPERATOR = "региональный оператор ТКО"
KIND_CARRIER = "перевозчик"
KIND_CAPITAL_REPAIR = "региональный оператор капремонта"

KINDS: tuple[str, ...] = (
    KIND_EXECUTIVE,
    KIND_LOCAL_GOV,
    KIND_INSTITUTION,
    KIND_UTILITY,
    KIND_MANAGEMENT,
    KIND_WASTE_OPERATOR,
    KIND_CARRIER,
    KIND_CAPITAL_REPAIR,
)

SMOLENSK = "город Смоленск"
DESNOGORSK = "город Десногорск"
DISTRICTS: tuple[str, ...] = (
    "Велижский",
    "Вяземский",
    "Гагаринский",
    "Глинковский",
    "Демидовский",
    "Дорогобужский",
    "Духовщинский",
    "Ельнинский",
    "Ершичский",
    "Кардымовский",
    "Краснинский",
    "Монастырщинский",
    "Новодугинский",
    "Починковский",
    "Рославльский",
    "Руднянский",
    "Сафоновский",
    "Смоленский",
    "Сычевский",
    "Темкинский",
    "Угранский",
    "Хиславичский",
    "Холм-Жирковский",
    "Шумячский",
    "Ярцевский",
)
MUNICIPALITIES: tuple[str, ...] = (SMOLENSK, DESNOGORSK, *DISTRICTS)
# Okrugs whose admin centre is a town big enough for its own companies.
TOWNS: dict[str, str] = {
    "Вяземский": "Вязьма",
    "Рославльский": "Рославль",
    "Сафоновский": "Сафоново",
    "Ярцевский": "Ярцево",
    "Гагаринский": "Гагарин",
}


@dataclass(frozen=True)
class DemoOrganisation:
    name: str
    kind: str
    municipality: str | None  # home municipality; None for a regional body
    serves: tuple[str, ...]  # municipalities whose appeals it may get
    # sector code or category name → weight; a category entry overrides its sector's entry,
    # and a weight of 0 excludes the category.
    handles: dict[str, float] = field(default_factory=dict)


def _adj(district: str, ending: str) -> str:
    """«Вяземский» → «Вяземская» / «Вяземского» / «Вяземском»."""
    return district[:-2] + ending


def _admin_name(m: str) -> str:
    if m == SMOLENSK:
        return "Администрация города Смоленска"
    if m == DESNOGORSK:
        return 'Администрация муниципального образования "город Десногорск"'
    return f"Администрация {_adj(m, 'ого')} муниципального округа"


def _in_municipality(m: str) -> str:
    if m == SMOLENSK:
        return "в городе Смоленске"
    if m == DESNOGORSK:
        return "в городе Десногорске"
    return f"в {_adj(m, 'ом')} муниципальном округе"


def _scaled(weights: dict[str, float], factor: float) -> dict[str, float]:
    return {k: v * factor for k, v in weights.items()}


# What a local administration answers itself: roads, landscaping, local transport and the
# rest of local competence; a little of everything is forwarded to it anyway.
_LOCAL_GOV_HANDLES: dict[str, float] = {
    "roads": 1.0,
    "other": 1.0,
    "Связь и интернет": 0.3,
    "housing": 0.25,
    "Аварийное жильё": 1.0,
    "Уборка снега и наледи во дворах": 0.3,
    "education": 0.3,
    "Очередь и места в детских садах": 0.6,
    "Подвоз детей к школе": 0.8,
    "transport": 0.3,
    "Маршруты и их отмена": 0.6,
    "Пригородные поезда": 0.1,
    "waste": 0.15,
    "Несанкционированные свалки": 1.0,
    "Состояние контейнерных площадок": 0.6,
    "Установка новых контейнеров": 0.5,
    "energy": 0.1,
    "Уличное освещение": 1.0,
    "Газификация": 0.25,
    "social": 0.1,
    "Доступная среда для людей с инвалидностью": 0.4,
    "health": 0.03,
}
_HOSPITAL_HANDLES = {"health": 1.0, "Работа скорой медицинской помощи": 0.3, "Лекарственное обеспечение": 0.7}
_EDUCATION_DEPT_HANDLES = {
    "education": 0.6,
    "Очередь и места в детских садах": 1.5,
    "Подвоз детей к школе": 1.0,
}
_SCHOOL_HANDLES = {
    "Школьное питание": 1.0,
    "Ремонт и состояние школ": 1.0,
    "Поборы в школах": 1.0,
    "Безопасность на территории школ": 1.0,
    "Дополнительное образование и кружки": 0.6,
}
_MANAGEMENT_HANDLES = {
    "Содержание и ремонт многоквартирных домов": 1.0,
    "Уборка снега и наледи во дворах": 1.0,
    "Работа управляющих компаний": 1.0,
    "Начисления и квитанции": 0.6,
    "Отопление": 0.35,
    "Холодное и горячее водоснабжение": 0.3,
    "Канализация": 0.5,
    "Капитальный ремонт": 0.15,
    "Прочие по направлению": 0.0,
    "Аварийное жильё": 0.0,
    "housing": 0.3,
}
_HEAT_HANDLES = {"Отопление": 1.0, "Начисления и квитанции": 0.3, "Холодное и горячее водоснабжение": 0.3}
_WATER_HANDLES = {"Холодное и горячее водоснабжение": 1.0, "Канализация": 1.0, "Начисления и квитанции": 0.2}
_GRID_DISTRICT_HANDLES = {
    "Отключения электроэнергии": 1.0,
    "Низкое напряжение в сети": 1.0,
    "Опасные опоры и провода": 1.0,
    "Технологическое присоединение": 0.3,
}
_CARRIER_HANDLES = {"transport": 1.0, "Пригородные поезда": 0.0}

# Groups of municipalities served by one territorial unit.
_GRID_AREAS: dict[str, tuple[str, ...]] = {
    "Смоленский": (
        SMOLENSK,
        "Смоленский",
        "Кардымовский",
        "Краснинский",
        "Монастырщинский",
        "Хиславичский",
        "Починковский",
    ),
    "Вяземский": ("Вяземский", "Гагаринский", "Новодугинский", "Темкинский", "Угранский", "Сычевский"),
    "Рославльский": ("Рославльский", "Ершичский", "Шумячский", DESNOGORSK, "Ельнинский"),
    "Сафоновский": ("Сафоновский", "Дорогобужский", "Холм-Жирковский", "Глинковский"),
    "Ярцевский": ("Ярцевский", "Духовщинский", "Демидовский", "Велижский", "Руднянский"),
}
_SOCIAL_AREAS: tuple[tuple[str, ...], ...] = (
    (SMOLENSK,),
    ("Смоленский", "Кардымовский", "Краснинский"),
    ("Вяземский", "Темкинский", "Угранский"),
    ("Гагаринский", "Новодугинский", "Сычевский"),
    ("Рославльский", "Ершичский", "Шумячский"),
    (DESNOGORSK,),
    ("Сафоновский", "Холм-Жирковский"),
    ("Ярцевский", "Духовщинский"),
    ("Починковский", "Хиславичский", "Монастырщинский"),
    ("Дорогобужский", "Ельнинский", "Глинковский"),
    ("Руднянский", "Велижский", "Демидовский"),
)
_SOCIAL_CENTRES: dict[str, tuple[str, ...]] = {
    SMOLENSK: (SMOLENSK, "Смоленский"),
    "Вяземский": ("Вяземский", "Темкинский", "Угранский", "Гагаринский", "Новодугинский", "Сычевский"),
    "Рославльский": (
        "Рославльский",
        "Ершичский",
        "Шумячский",
        DESNOGORSK,
        "Починковский",
        "Хиславичский",
        "Монастырщинский",
    ),
    "Сафоновский": (
        "Сафоновский",
        "Ярцевский",
        "Дорогобужский",
        "Духовщинский",
        "Холм-Жирковский",
        "Глинковский",
        "Ельнинский",
        "Кардымовский",
        "Краснинский",
        "Руднянский",
        "Велижский",
        "Демидовский",
    ),
}
# Management companies: (name, home, relative size).
_MANAGEMENT_COMPANIES: tuple[tuple[str, str, float], ...] = (
    ('ООО "УК Северный квартал"', SMOLENSK, 1.2),
    ('ООО "УК Южный квартал"', SMOLENSK, 1.3),
    ('ООО "УК Заднепровье-Сервис"', SMOLENSK, 1.0),
    ('ООО "УК Промышленный район"', SMOLENSK, 0.9),
    ('ООО "УК Центральная"', SMOLENSK, 0.8),
    ('ООО "ЖЭУ Старый город"', SMOLENSK, 0.6),
    ('ООО "Десногорская управляющая компания"', DESNOGORSK, 1.0),
    ('ООО "УК Смоленский район"', "Смоленский", 1.0),
    ('ООО "Починковская управляющая компания"', "Починковский", 1.0),
    ('ООО "Дорогобужская управляющая компания"', "Дорогобужский", 1.0),
    ('ООО "Руднянская управляющая компания"', "Руднянский", 1.0),
    *((f'ООО "{_adj(d, "ая")} управляющая компания"', d, 1.0) for d in TOWNS if d != "Гагаринский"),
    *((f'ООО "УК {town}-Сервис"', d, 0.7) for d, town in TOWNS.items()),
)


def demo_organisations() -> list[DemoOrganisation]:
    """The ~160 organisations of the demo region, in a stable order (ids follow it)."""
    everywhere = MUNICIPALITIES
    districts_only = DISTRICTS
    orgs: list[DemoOrganisation] = []

    def add(
        name: str, kind: str, home: str | None, serves: tuple[str, ...], handles: dict[str, float]
    ) -> None:
        orgs.append(DemoOrganisation(name, kind, home, serves, handles))

    # Regional executive bodies: a small share of their sectors' appeals lands with them directly.
    region = "Смоленской области"
    add(
        f"Министерство здравоохранения {region}",
        KIND_EXECUTIVE,
        None,
        everywhere,
        {"health": 0.06, "Лекарственное обеспечение": 0.3, "Нехватка медицинских кадров": 0.3},
    )
    add(f"Министерство образования и науки {region}", KIND_EXECUTIVE, None, everywhere, {"education": 0.06})
    add(f"Министерство социального развития {region}", KIND_EXECUTIVE, None, everywhere, {"social": 0.08})
    add(
        f"Министерство жилищно-коммунального хозяйства, энергетики и тарифной политики {region}",
        KIND_EXECUTIVE,
        None,
        everywhere,
        {"housing": 0.04, "energy": 0.05, "waste": 0.05, "Газификация": 0.2},
    )
    add(
        f"Министерство транспорта и дорожного хозяйства {region}",
        KIND_EXECUTIVE,
        None,
        everywhere,
        {"roads": 0.05, "transport": 0.1, "Маршруты и их отмена": 0.2},
    )
    add(
        f"Министерство природных ресурсов и экологии {region}",
        KIND_EXECUTIVE,
        None,
        everywhere,
        {"Несанкционированные свалки": 0.35, "Раздельный сбор": 0.2},
    )
    add(
        f"Министерство строительства {region}",
        KIND_EXECUTIVE,
        None,
        everywhere,
        {"Аварийное жильё": 0.3, "Капитальный ремонт": 0.1},
    )
    add(
        f"Министерство цифрового развития {region}",
        KIND_EXECUTIVE,
        None,
        everywhere,
        {"Связь и интернет": 1.0},
    )
    add(
        f'Главное управление "Государственная жилищная инспекция {region}"',
        KIND_EXECUTIVE,
        None,
        everywhere,
        {
            "housing": 0.04,
            "Работа управляющих компаний": 0.3,
            "Содержание и ремонт многоквартирных домов": 0.12,
            "Начисления и квитанции": 0.15,
        },
    )
    add(
        f"Главное управление ветеринарии {region}",
        KIND_EXECUTIVE,
        None,
        everywhere,
        {"Безнадзорные животные": 0.3},
    )

    # Regional institutions and companies.
    add(
        'ОГБУЗ "Станция скорой медицинской помощи"',
        KIND_INSTITUTION,
        None,
        everywhere,
        {"Работа скорой медицинской помощи": 3.0},
    )
    add(
        'СОГКУ "Центр социальных выплат"',
        KIND_INSTITUTION,
        None,
        everywhere,
        {"Выплаты и меры социальной поддержки": 1.0, "Поддержка многодетных семей": 0.4},
    )
    add(
        'ОГБУ "Управление областных автомобильных дорог"',
        KIND_INSTITUTION,
        None,
        districts_only,
        {"roads": 0.6, "Прочие по направлению": 0.3},
    )
    add(
        f"Фонд капитального ремонта многоквартирных домов {region}",
        KIND_CAPITAL_REPAIR,
        None,
        everywhere,
        {"Капитальный ремонт": 1.0},
    )
    add(
        'ООО "Региональный оператор по обращению с отходами"',
        KIND_WASTE_OPERATOR,
        None,
        everywhere,
        {
            "waste": 0.8,
            "Несвоевременный вывоз мусора": 1.0,
            "Состояние контейнерных площадок": 0.6,
            "Несанкционированные свалки": 0.25,
            "Начисления за вывоз ТКО": 1.0,
            "Вывоз крупногабаритных отходов": 1.0,
            "Раздельный сбор": 1.0,
            "Установка новых контейнеров": 0.7,
        },
    )
    add(
        'АО "Областная электросетевая компания"',
        KIND_UTILITY,
        None,
        everywhere,
        {
            "Отключения электроэнергии": 0.2,
            "Низкое напряжение в сети": 0.2,
            "Технологическое присоединение": 1.0,
            "Опасные опоры и провода": 0.2,
            "Прочие по направлению": 0.3,
        },
    )
    add(
        'АО "Областная энергосбытовая компания"',
        KIND_UTILITY,
        None,
        everywhere,
        {"energy": 0.1, "Замена приборов учёта": 1.0, "Газификация": 0.0, "Уличное освещение": 0.0},
    )
    add('АО "Областная газораспределительная компания"', KIND_UTILITY, None, everywhere, {"Газификация": 1.0})
    add(
        'ООО "Областные коммунальные системы"',
        KIND_UTILITY,
        None,
        tuple(d for d in DISTRICTS if d not in TOWNS),
        {
            "Отопление": 1.0,
            "Холодное и горячее водоснабжение": 1.0,
            "Канализация": 1.0,
            "Начисления и квитанции": 0.4,
            "Содержание и ремонт многоквартирных домов": 0.3,
        },
    )
    add(
        'ГУП "Областное пассажирское автотранспортное предприятие"',
        KIND_CARRIER,
        None,
        districts_only,
        _CARRIER_HANDLES | {"transport": 0.7},
    )
    add('АО "Пригородная пассажирская компания"', KIND_CARRIER, None, everywhere, {"Пригородные поезда": 1.0})

    # Local administrations, with their education departments where the okrug is big enough.
    for m in MUNICIPALITIES:
        handles = _LOCAL_GOV_HANDLES
        if m == SMOLENSK:  # the city has its own services for roads, lighting and greenery
            handles = _LOCAL_GOV_HANDLES | {"roads": 0.3, "other": 0.6, "Уличное освещение": 0.3}
        add(_admin_name(m), KIND_LOCAL_GOV, m, (m,), handles)
    add(
        "Управление образования и молодёжной политики Администрации города Смоленска",
        KIND_LOCAL_GOV,
        SMOLENSK,
        (SMOLENSK,),
        _EDUCATION_DEPT_HANDLES,
    )
    add(
        'Комитет по образованию Администрации муниципального образования "город Десногорск"',
        KIND_LOCAL_GOV,
        DESNOGORSK,
        (DESNOGORSK,),
        _EDUCATION_DEPT_HANDLES,
    )
    for d in (
        "Вяземский",
        "Рославльский",
        "Сафоновский",
        "Ярцевский",
        "Гагаринский",
        "Смоленский",
        "Починковский",
    ):
        add(
            f"Комитет по образованию Администрации {_adj(d, 'ого')} муниципального округа",
            KIND_LOCAL_GOV,
            d,
            (d,),
            _EDUCATION_DEPT_HANDLES,
        )

    # City services of Smolensk.
    add(
        'МБУ "Дорожно-эксплуатационное управление" города Смоленска',
        KIND_INSTITUTION,
        SMOLENSK,
        (SMOLENSK,),
        {"roads": 1.0},
    )
    add('МБУ "Горсвет" города Смоленска', KIND_INSTITUTION, SMOLENSK, (SMOLENSK,), {"Уличное освещение": 1.5})
    add(
        'МБУ "Зеленстрой" города Смоленска',
        KIND_INSTITUTION,
        SMOLENSK,
        (SMOLENSK,),
        {
            "Покос травы и содержание газонов": 1.0,
            "Спил и обрезка деревьев": 1.0,
            "Благоустройство дворов и общественных пространств": 0.5,
        },
    )

    # Health care: city hospitals and polyclinics, one central district hospital per okrug.
    for name, weight in (
        ('ОГБУЗ "Клиническая больница №1"', 1.0),
        ('ОГБУЗ "Поликлиника №2"', 1.0),
        ('ОГБУЗ "Поликлиника №3"', 0.9),
        ('ОГБУЗ "Поликлиника №6"', 0.8),
        ('ОГБУЗ "Детская клиническая больница"', 0.6),
    ):
        add(name, KIND_INSTITUTION, SMOLENSK, (SMOLENSK,), _scaled(_HOSPITAL_HANDLES, weight))
    add(
        'ОГБУЗ "Десногорская городская больница"',
        KIND_INSTITUTION,
        DESNOGORSK,
        (DESNOGORSK,),
        _HOSPITAL_HANDLES,
    )
    for d in DISTRICTS:
        add(f'ОГБУЗ "{_adj(d, "ая")} ЦРБ"', KIND_INSTITUTION, d, (d,), _HOSPITAL_HANDLES)

    # Schools.
    for number in ("7", "21", "33", "40"):
        add(
            f'МБОУ "Средняя школа №{number}" города Смоленска',
            KIND_INSTITUTION,
            SMOLENSK,
            (SMOLENSK,),
            _SCHOOL_HANDLES,
        )
    for d, town in TOWNS.items():
        if d == "Гагаринский":
            continue
        add(f'МБОУ "Средняя школа №1" ({town})', KIND_INSTITUTION, d, (d,), _SCHOOL_HANDLES)

    # Social protection: territorial departments and social service centres.
    for area in _SOCIAL_AREAS:
        add(
            f"Отдел социальной защиты населения {_in_municipality(area[0])}",
            KIND_EXECUTIVE,
            area[0],
            area,
            {"social": 1.0},
        )
    for home, area in _SOCIAL_CENTRES.items():
        adj = "Смоленский" if home == SMOLENSK else home
        add(
            f'СОГБУ "{adj} комплексный центр социального обслуживания населения"',
            KIND_INSTITUTION,
            home,
            area,
            {"Помощь пожилым и одиноким гражданам": 1.2, "Социальное обслуживание на дому": 1.5},
        )

    # Housing: management companies, heat and water suppliers.
    for name, home, size in _MANAGEMENT_COMPANIES:
        add(name, KIND_MANAGEMENT, home, (home,), _scaled(_MANAGEMENT_HANDLES, size))
    add('АО "Городская теплосетевая компания" (Смоленск)', KIND_UTILITY, SMOLENSK, (SMOLENSK,), _HEAT_HANDLES)
    add('МУП "Городской водоканал" (Смоленск)', KIND_UTILITY, SMOLENSK, (SMOLENSK,), _WATER_HANDLES)
    add('МУП "Десногорская теплосеть"', KIND_UTILITY, DESNOGORSK, (DESNOGORSK,), _HEAT_HANDLES)
    add('МУП "Десногорский водоканал"', KIND_UTILITY, DESNOGORSK, (DESNOGORSK,), _WATER_HANDLES)
    for d in TOWNS:
        add(f'МУП "{_adj(d, "ая")} теплосеть"', KIND_UTILITY, d, (d,), _HEAT_HANDLES)
        add(f'МУП "{d} водоканал"', KIND_UTILITY, d, (d,), _WATER_HANDLES)

    # Electricity: district units of the grid company.
    for d, area in _GRID_AREAS.items():
        add(f'{d} РЭС АО "Областная электросетевая компания"', KIND_UTILITY, d, area, _GRID_DISTRICT_HANDLES)

    # Carriers.
    add('МУП "Смоленский городской электротранспорт"', KIND_CARRIER, SMOLENSK, (SMOLENSK,), _CARRIER_HANDLES)
    add('ООО "Автоколонна №1"', KIND_CARRIER, SMOLENSK, (SMOLENSK,), _CARRIER_HANDLES)
    add('ООО "Городские маршруты"', KIND_CARRIER, SMOLENSK, (SMOLENSK,), _scaled(_CARRIER_HANDLES, 0.7))
    for d, town in TOWNS.items():
        add(f'ООО "{town}-Автотранс"', KIND_CARRIER, d, (d,), _CARRIER_HANDLES)
    return orgs
