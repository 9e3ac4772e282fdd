"""Plate normalisation and classification, as a gate camera's strings arrive at the hub.

All plates here are made up. The colour-prefixed strings are the shape Hikvision's Chinese
firmwares send (FORMATS.md §1a); the placeholders are what Dahua and Chinese ANPR firmwares
send when no plate was read (FORMATS.md §1b).
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from estatehub.hookspecs.parking import ParkingError, PlateKind
from estatehub_parking.plates import (
    COLOUR_WORDS,
    PROVINCES,
    PlateRules,
    mask_plate,
    normalise_plate,
    reported_colour_name,
)

# --- every kind, as a camera reads it ---------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("沪A8K2M5", PlateKind.ORDINARY),
        ("京B12345", PlateKind.ORDINARY),
        ("黑A3C5E7", PlateKind.ORDINARY),  # 黑 as Heilongjiang, not as a colour
        ("沪AD1234", PlateKind.ORDINARY),  # 7 characters: D is just a serial letter
        ("沪AD12345", PlateKind.NEW_ENERGY_SMALL),
        ("苏EFK7321", PlateKind.NEW_ENERGY_SMALL),  # 4th character may be a letter
        ("沪A12345D", PlateKind.NEW_ENERGY_LARGE),
        ("浙B67890F", PlateKind.NEW_ENERGY_LARGE),
        ("沪A3172警", PlateKind.POLICE),
        ("沪B0815学", PlateKind.COACH),
        ("鲁C4420挂", PlateKind.TRAILER),
        ("沪A0236领", PlateKind.CONSULATE),
        ("使014578", PlateKind.EMBASSY),
        ("粤Z3J07港", PlateKind.HK),
        ("粤Z1186澳", PlateKind.MACAU),
    ],
)
def test_each_plate_kind_is_recognised_and_trusted(raw: str, kind: PlateKind) -> None:
    plate = normalise_plate(raw)
    assert (plate.plate, plate.kind, plate.valid) == (raw, kind, True)
    assert (plate.issues, plate.changes, plate.candidate, plate.colour) == ((), (), None, None)
    assert plate.raw == raw


def test_seven_character_plate_with_d_third_is_ordinary_but_eight_is_small_nev() -> None:
    assert normalise_plate("沪AD1234").kind is PlateKind.ORDINARY
    assert normalise_plate("沪AD12345").kind is PlateKind.NEW_ENERGY_SMALL
    assert normalise_plate("沪A12345D").kind is PlateKind.NEW_ENERGY_LARGE


# --- colour prefixes (Hikvision Chinese firmware) ---------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected", "colour"),
    [
        ("蓝苏A8HK52", "苏A8HK52", "蓝"),
        ("蓝皖A7XG66", "皖A7XG66", "蓝"),
        ("黄沪B40218", "沪B40218", "黄"),
        ("渐变绿沪AD12345", "沪AD12345", "渐变绿"),
        ("绿沪AF1A234", "沪AF1A234", "绿"),
        ("黄绿沪A12345D", "沪A12345D", "黄绿"),
        ("白沪A3172警", "沪A3172警", "白"),
        ("黑沪A0236领", "沪A0236领", "黑"),
        ("黑黑A3C5E7", "黑A3C5E7", "黑"),  # black prefix on a Heilongjiang plate
    ],
)
def test_camera_colour_prefix_is_stripped_and_kept_as_colour(
    raw: str, expected: str, colour: str
) -> None:
    plate = normalise_plate(raw)
    assert (plate.plate, plate.colour, plate.raw) == (expected, colour, raw)
    assert plate.changes == (f"stripped colour prefix {colour}",)


def test_hikvision_blue_prefix_agrees_with_reported_plate_colour() -> None:
    plate = normalise_plate("蓝苏A8HK52", reported_colour="blue")
    assert (plate.plate, plate.kind, plate.valid, plate.issues) == (
        "苏A8HK52",
        PlateKind.ORDINARY,
        True,
        (),
    )


def test_heilongjiang_plate_is_not_mistaken_for_a_black_prefix() -> None:
    plate = normalise_plate("黑A3C5E7", reported_colour="blue")
    assert (plate.plate, plate.colour, plate.changes, plate.issues) == ("黑A3C5E7", None, (), ())


def test_colour_prefix_disagreeing_with_reported_colour_is_an_issue_not_a_rejection() -> None:
    plate = normalise_plate("黄苏A8HK52", reported_colour="blue")
    assert (plate.kind, plate.valid) == (PlateKind.ORDINARY, True)
    assert plate.issues == (
        "colour prefix 黄 (yellow) disagrees with reported plate colour 'blue'",
    )


def test_blue_prefix_on_new_energy_plate_is_recorded_as_suspicious() -> None:
    plate = normalise_plate("蓝沪AD12345")
    assert (plate.plate, plate.kind, plate.valid, plate.colour) == (
        "沪AD12345",
        PlateKind.NEW_ENERGY_SMALL,
        True,
        "蓝",
    )
    assert plate.issues == (
        "blue colour on an 8-character new-energy plate is suspicious "
        "(a 7-character blue plate read with one character too many?)",
    )


def test_reported_blue_on_new_energy_plate_is_recorded_as_suspicious() -> None:
    plate = normalise_plate("沪A12345D", reported_colour="blue")
    assert plate.valid is True
    assert plate.issues == (
        "blue colour on an 8-character new-energy plate is suspicious "
        "(a 7-character blue plate read with one character too many?)",
    )


def test_isapi_new_energy_colours_match_the_nev_plates() -> None:
    small = normalise_plate("渐变绿沪AD12345", reported_colour="newEnergyGreen")
    large = normalise_plate("黄绿沪A12345D", reported_colour="newEnergyYellowGreen")
    assert (small.valid, small.issues) == (True, ())
    assert (large.valid, large.issues) == (True, ())


def test_police_plate_reported_yellow_is_noted_as_unusual() -> None:
    plate = normalise_plate("沪A3172警", reported_colour="yellow")
    assert (plate.kind, plate.valid) == (PlateKind.POLICE, True)
    assert plate.issues == ("yellow is an unusual colour for police plates (expected white)",)


def test_unknown_reported_colour_is_not_cross_checked() -> None:
    assert normalise_plate("蓝苏A8HK52", reported_colour="unknown").issues == ()
    assert normalise_plate("苏A8HK52", reported_colour="0xff").issues == ()
    plate = normalise_plate("苏A8HK52", reported_colour="purple")
    assert (plate.valid, plate.issues) == (True, ("reported plate colour 'purple' not recognised",))


@pytest.mark.parametrize(
    ("reported", "name"),
    [
        ("blue", "blue"),
        ("White", "white"),  # some firmwares capitalise
        ("newEnergyGreen", "green"),
        ("newEnergyYellowGreen", "yellow_green"),
        ("civilAviationBlack", "black"),
        ("蓝色", "blue"),
        ("黄绿", "yellow_green"),
        ("other", "unknown"),
        ("0xff", "unknown"),
        ("violet", None),
    ],
)
def test_reported_colour_values_map_to_canonical_names(reported: str, name: str | None) -> None:
    assert reported_colour_name(reported) == name


# --- cleaning: full width, case, separators, traditional characters ---------------------


def test_full_width_lower_case_plate_is_folded() -> None:
    plate = normalise_plate("沪ａｄ１２３４５")
    assert (plate.plate, plate.kind, plate.valid) == ("沪AD12345", PlateKind.NEW_ENERGY_SMALL, True)
    assert plate.changes == ("folded full-width characters (NFKC)", "upper-cased Latin letters")


@pytest.mark.parametrize("raw", ["沪A·8K2M5", "沪A・8K2M5", "沪A•8K2M5", "沪A 8K2M5", "沪A-8K2M5"])
def test_printed_separator_is_removed(raw: str) -> None:
    plate = normalise_plate(raw)
    assert (plate.plate, plate.valid, plate.changes) == (
        "沪A8K2M5",
        True,
        ("removed separators and spaces",),
    )


def test_full_width_space_and_middle_dot_from_a_typed_plate() -> None:
    plate = normalise_plate(" 沪Ａ·８Ｋ２Ｍ５\u3000")
    assert (plate.plate, plate.valid) == ("沪A8K2M5", True)
    assert plate.changes == ("folded full-width characters (NFKC)", "removed separators and spaces")


@pytest.mark.parametrize(
    ("raw", "expected", "kind", "change"),
    [
        ("沪B0815學", "沪B0815学", PlateKind.COACH, "mapped 學→学"),
        ("沪A0236領", "沪A0236领", PlateKind.CONSULATE, "mapped 領→领"),
    ],
)
def test_traditional_characters_from_ocr_are_simplified_and_recorded(
    raw: str, expected: str, kind: PlateKind, change: str
) -> None:
    plate = normalise_plate(raw)
    assert (plate.plate, plate.kind, plate.valid, plate.changes) == (
        expected,
        kind,
        True,
        (change,),
    )
    assert plate.raw == raw


# --- I and O: offer, never apply --------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kind", "candidate"),
    [
        ("沪A1O345", PlateKind.ORDINARY, "沪A10345"),
        ("京BI2345", PlateKind.ORDINARY, "京B12345"),
        ("沪AD1234O", PlateKind.NEW_ENERGY_SMALL, "沪AD12340"),
        ("沪A1234OD", PlateKind.NEW_ENERGY_LARGE, "沪A12340D"),
        ("沪A3I72警", PlateKind.POLICE, "沪A3172警"),
        ("沪AO236领", PlateKind.CONSULATE, "沪A0236领"),
        ("使O14578", PlateKind.EMBASSY, "使014578"),
    ],
)
def test_serial_with_i_or_o_goes_to_review_with_a_candidate(
    raw: str, kind: PlateKind, candidate: str
) -> None:
    plate = normalise_plate(raw)
    assert plate.plate == raw  # the substitution is never applied
    assert (plate.kind, plate.valid, plate.candidate) == (kind, False, candidate)
    assert plate.issues == ("serial contains I or O",)


def test_authority_letter_o_is_not_a_serial_problem() -> None:
    plate = normalise_plate("粤O12345")
    assert (plate.kind, plate.valid, plate.issues, plate.candidate) == (
        PlateKind.ORDINARY,
        True,
        (),
        None,
    )


def test_i_or_o_without_a_well_formed_candidate_offers_none() -> None:
    broken = normalise_plate("沪AO12")
    assert (broken.kind, broken.valid, broken.candidate) == (PlateKind.INVALID, False, None)
    assert broken.issues == (
        "wrong length: 5 characters (ordinary plates have 7, new-energy plates 8)",
        "serial contains I or O",
    )


# --- invalid input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "issue"),
    [
        ("", "empty plate string"),
        ("   ", "empty plate string"),
        ("蓝", "nothing left after the colour prefix"),
        ("无车牌", "no plate read (vendor placeholder '无车牌')"),
        ("车牌", "no plate read (vendor placeholder '车牌')"),
        ("未识别", "no plate read (vendor placeholder '未识别')"),
        ("Unknown", "no plate read (vendor placeholder 'Unknown')"),
        ("No Plate", "no plate read (vendor placeholder 'No Plate')"),
        ("none", "no plate read (vendor placeholder 'none')"),
    ],
)
def test_empty_input_and_vendor_placeholders_are_invalid_with_empty_plate(
    raw: str, issue: str
) -> None:
    plate = normalise_plate(raw)
    assert (plate.plate, plate.kind, plate.valid, plate.issues) == (
        "",
        PlateKind.INVALID,
        False,
        (issue,),
    )
    assert plate.raw == raw


@pytest.mark.parametrize(
    ("raw", "issue"),
    [
        ("港A12345", "unknown province abbreviation '港'"),
        ("AB12345", "unknown province abbreviation 'A'"),
        ("沪112345", "2nd character must be an issuing-authority letter A–Z, got '1'"),
        ("沪", "2nd character must be an issuing-authority letter A–Z, got 'nothing'"),
        ("沪A1234", "wrong length: 6 characters (ordinary plates have 7, new-energy plates 8)"),
        ("沪A1234567", "wrong length: 9 characters (ordinary plates have 7, new-energy plates 8)"),
        ("沪A12#45", "serial '12#45' may only contain digits and letters A–Z"),
        (
            "沪AX12345",
            "3rd character 'X' is not an allowed small new-energy letter "
            "(D, F; see small_nev_letters)",
        ),
        (
            "沪A12345X",
            "8th character 'X' is not an allowed large new-energy letter "
            "(D, F; see large_nev_letters)",
        ),
        (
            "沪AD1A2B3",
            "small new-energy plates are a province, a letter, D, F, a letter or digit "
            "and 4 digits",
        ),
        (
            "沪A1D2345",
            "8-character plate matches neither new-energy pattern "
            "(small: letter, letter or digit, 4 digits; large: 5 digits, letter)",
        ),
        ("沪B1234领", "consulate plates are a province, A, 4 digits and 领"),
        ("沪AC123领", "consulate plates are a province, A, 4 digits and 领"),
        ("沪Z1234港", "港 plates are 粤Z, 4 digits or letters and 港"),
        ("粤B1234澳", "澳 plates are 粤Z, 4 digits or letters and 澳"),
        ("沪A12345警", "police plates are a province, a letter, 4 digits or letters and 警"),
        ("使01457", "embassy plates are 使 followed by 6 digits"),
    ],
)
def test_malformed_plate_is_invalid_with_a_clear_issue(raw: str, issue: str) -> None:
    plate = normalise_plate(raw)
    assert (plate.plate, plate.kind, plate.valid, plate.issues) == (
        raw,
        PlateKind.INVALID,
        False,
        (issue,),
    )


@pytest.mark.parametrize(
    "raw",
    [
        "沪A1234试",
        "沪A12345超",
        "沪A1234应急",
        "沪A12345临",
        "WJ01警1234",
        "Temporary",
        "民航A1234",
    ],
)
def test_special_plates_go_to_manual_review(raw: str) -> None:
    plate = normalise_plate(raw)
    assert (plate.kind, plate.valid, plate.issues) == (
        PlateKind.INVALID,
        False,
        ("special plate: manual review",),
    )


def test_plate_with_serial_letters_wj_is_still_ordinary() -> None:
    assert normalise_plate("沪AWJ123").kind is PlateKind.ORDINARY


# --- estate configuration: extra new-energy letters -------------------------------------


def test_new_energy_letter_outside_df_is_invalid_by_default() -> None:
    plate = normalise_plate("沪AA12345")
    assert (plate.kind, plate.valid) == (PlateKind.INVALID, False)


def test_estate_that_allows_letter_a_accepts_it_with_a_note_and_a_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rules = PlateRules(small_nev_letters=frozenset("ADF"), large_nev_letters=frozenset("DFK"))
    caplog.set_level(logging.INFO, logger="estatehub_parking.plates")
    small = normalise_plate("沪AA12345", rules=rules)
    large = normalise_plate("沪A12345K", rules=rules)
    assert (small.kind, small.valid, small.issues) == (
        PlateKind.NEW_ENERGY_SMALL,
        True,
        ("new-energy letter 'A' is outside GA 36's D/F; allowed by estate config",),
    )
    assert (large.kind, large.valid, large.issues) == (
        PlateKind.NEW_ENERGY_LARGE,
        True,
        ("new-energy letter 'K' is outside GA 36's D/F; allowed by estate config",),
    )
    assert [r.getMessage() for r in caplog.records] == [
        "accepted new-energy letter A outside D/F on 沪A·****45",
        "accepted new-energy letter K outside D/F on 沪A·****5K",
    ]


def test_estate_rules_restricting_provinces() -> None:
    rules = PlateRules(provinces=frozenset("沪苏浙皖"))
    assert normalise_plate("苏A8HK52", rules=rules).valid is True
    assert normalise_plate("京B12345", rules=rules).issues == (
        "unknown province abbreviation '京'",
    )


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            {"small_nev_letters": frozenset({"D", "O"})},
            "PlateRules.small_nev_letters: 'O' cannot be new-energy letters "
            "(use single Latin capitals A–Z other than I and O)",
        ),
        (
            {"large_nev_letters": frozenset({"d", "F1"})},
            "PlateRules.large_nev_letters: 'F1', 'd' cannot be new-energy letters "
            "(use single Latin capitals A–Z other than I and O)",
        ),
        (
            {"provinces": frozenset({"沪", "沪A"})},
            "PlateRules.provinces: '沪A' are not single-character abbreviations",
        ),
    ],
)
def test_bad_plate_rules_are_refused_with_the_field_named(
    rules: dict[str, frozenset[str]], message: str
) -> None:
    with pytest.raises(ParkingError) as caught:
        PlateRules(**rules)
    assert str(caught.value) == message


def test_default_rules_know_31_provinces() -> None:
    assert len(PROVINCES) == 31
    assert PlateRules().provinces == PROVINCES


# --- masking for logs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plate", "masked"),
    [
        ("沪A12345", "沪A·***45"),
        ("沪AD12345", "沪A·****45"),
        ("沪A·12345", "沪A·***45"),
        ("使014578", "使0·***78"),
        ("沪A1", "***"),
        ("", ""),
    ],
)
def test_plate_is_masked_for_logs(plate: str, masked: str) -> None:
    assert mask_plate(plate) == masked


# --- properties -------------------------------------------------------------------------

_SERIAL_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_NOISE = ["", " ", "·", "・", "•", "-", "\u3000", "\u200b"]


def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@st.composite
def camera_strings(draw: st.DrawFn) -> str:
    """Plate-like strings with the noise cameras and people add."""
    prefix = draw(st.sampled_from(["", *COLOUR_WORDS]))
    province = draw(st.sampled_from([*sorted(PROVINCES), "使", "港", "X"]))
    letter = draw(st.sampled_from(_SERIAL_CHARS + "ab"))
    serial = draw(st.text(alphabet=_SERIAL_CHARS + "io", min_size=3, max_size=7))
    suffix = draw(st.sampled_from(["", "", "警", "学", "學", "挂", "领", "領", "港", "澳", "试"]))
    noise = draw(st.sampled_from(_NOISE))
    text = f"{prefix}{province}{letter}{noise}{serial}{suffix}"
    return _full_width(text) if draw(st.booleans()) else text


any_text = st.one_of(st.text(), camera_strings())


@given(any_text)
@example("黑黑黑A12345")
@example("a·\u0301")
@example("蓝\u0301A")
def test_normalising_the_normalised_plate_changes_nothing(raw: str) -> None:
    first = normalise_plate(raw)
    again = normalise_plate(first.plate)
    assert again.plate == first.plate
    assert again.changes == ()
    assert (again.kind, again.valid, again.candidate) == (first.kind, first.valid, first.candidate)


@given(any_text, st.one_of(st.none(), st.text(), st.sampled_from(["blue", "newEnergyGreen"])))
def test_normalise_never_raises_and_keeps_raw(raw: str, colour: str | None) -> None:
    plate = normalise_plate(raw, reported_colour=colour)
    assert plate.raw == raw
    if not plate.valid:
        assert plate.issues  # every rejection says why


@given(any_text)
def test_a_valid_plate_has_a_kind_and_no_i_or_o_in_its_serial(raw: str) -> None:
    plate = normalise_plate(raw)
    if plate.valid:
        assert plate.kind is not PlateKind.INVALID
        serial = plate.plate[1:] if plate.plate.startswith("使") else plate.plate[2:]
        assert "I" not in serial and "O" not in serial
        assert plate.candidate is None


@given(camera_strings())
def test_full_width_input_normalises_like_half_width(raw: str) -> None:
    half = normalise_plate(raw)
    full = normalise_plate(_full_width(raw))
    assert (full.plate, full.kind, full.valid, full.candidate) == (
        half.plate,
        half.kind,
        half.valid,
        half.candidate,
    )


@given(st.text())
def test_mask_shows_at_most_four_characters(plate: str) -> None:
    masked = mask_plate(plate).replace("·", "")
    assert sum(1 for c in masked if c != "*") <= min(4, len(plate))
