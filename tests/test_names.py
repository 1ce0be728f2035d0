"""Municipality name normalisation: the key for matching boundary files and reference lists."""

from __future__ import annotations

import csv

import pytest

from data.names import normalise_municipality_name as norm
from data.warehouse import DEMO_MUNICIPALITIES


@pytest.mark.parametrize(
    "name", ["г. Смоленск", "город Смоленск", "Смоленск", "гор. Смоленск", "  г.Смоленск "]
)
def test_city_forms_are_one_name(name: str) -> None:
    assert norm(name) == "смоленск"


@pytest.mark.parametrize(
    "name",
    [
        "Вяземский район",
        "Вяземский муниципальный округ",
        "Вяземский",
        "Вяземский муниципальный район",
        "Вяземский р-н",
        "МО «Вяземский район»",
        "м.о. Вяземский",
        "муниципальное образование «Вяземский район» Смоленской области",
        "ВЯЗЕМСКИЙ  РАЙОН",
    ],
)
def test_district_forms_are_one_name(name: str) -> None:
    assert norm(name) == "вяземский"


def test_district_stays_different_from_its_city() -> None:
    assert norm("Смоленский район") == "смоленский"
    assert norm("Смоленский район") != norm("г. Смоленск")
    assert norm("Рыбинский район") != norm("Рыбинск")


def test_yo_and_e_are_the_same() -> None:
    assert norm("Сычёвский") == norm("Сычевский") == "сычевский"
    assert norm("Тёмкинский район") == "темкинский"


def test_urban_okrug_designations() -> None:
    assert norm("городской округ «город Десногорск»") == "десногорск"
    assert norm("Десногорск ГО") == "десногорск"
    assert norm('г.о. "Десногорск"') == "десногорск"


def test_hyphenated_names_survive() -> None:
    assert norm("Холм-Жирковский район") == "холм-жирковский"
    assert norm("Холм - Жирковский муниципальный округ") == "холм-жирковский"
    assert norm("Переславль-Залесский") == "переславль-залесский"


def test_nothing_distinctive_left_keeps_the_text() -> None:
    assert norm("Город") == "город"
    assert norm("") == ""


def test_reference_list_names_are_distinct() -> None:
    with open(DEMO_MUNICIPALITIES, encoding="utf-8", newline="") as fh:
        names = [row["name"] for row in csv.DictReader(fh)]
    assert len({norm(n) for n in names}) == len(names) == 27
