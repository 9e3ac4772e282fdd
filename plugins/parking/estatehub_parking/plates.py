"""Normalise and classify mainland Chinese licence plates (GA 36-2018) as gate cameras read them.

:func:`normalise_plate` turns whatever a camera sent into a
:class:`~estatehub.hookspecs.parking.Plate`: the raw string kept as it was, the normalised
string, the plate kind, and two lists that explain the result, ``changes`` (what
normalisation did) and ``issues`` (why the plate is not to be trusted, or what looked odd).
It never raises on text input; bad input becomes an ``invalid`` plate with a reason,
because a gate must keep working whatever a camera sends.

Two rules are about safety and are kept strictly:

* A suggested correction (I→1, O→0) is offered in ``Plate.candidate`` for a guard to
  confirm, never applied: opening a barrier for a guessed plate is the failure we avoid.
* Special plates (test, over-size, emergency, armed police, temporary) are never classified
  automatically; they go to manual review.

The rules follow DOMAIN.md §1.5. The new-energy letter sets are estate configuration
(:class:`PlateRules`), because some cities are reported to issue letters beyond D/F.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from estatehub.hookspecs.parking import ParkingError, Plate, PlateKind
from estatehub.privacy import mask_plate

__all__ = [
    "COLOUR_WORDS",
    "DEFAULT_PLATE_RULES",
    "GA36_NEV_LETTERS",
    "PROVINCES",
    "PlateRules",
    "mask_plate",
    "normalise_plate",
    "reported_colour_name",
]

_LOGGER = logging.getLogger(__name__)

PROVINCES: frozenset[str] = frozenset(
    "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
)
"""The 31 province-level abbreviations that open an ordinary plate."""

GA36_NEV_LETTERS: frozenset[str] = frozenset("DF")
"""New-energy letters GA 36 itself defines: D pure electric, F not pure electric."""

COLOUR_WORDS: Mapping[str, str] = MappingProxyType(
    {
        "渐变绿": "green",  # gradient green: the small new-energy plate
        "黄绿": "yellow_green",  # yellow-and-green: the large new-energy plate
        "蓝": "blue",
        "黄": "yellow",
        "绿": "green",
        "白": "white",
        "黑": "black",
    }
)
"""Chinese colour words cameras prefix to the plate, mapped to a canonical colour name."""

# Longest first, so that 黄绿 is not taken for 黄 followed by a plate starting with 绿.
_COLOUR_PREFIXES: tuple[str, ...] = tuple(sorted(COLOUR_WORDS, key=len, reverse=True))

# Hikvision ISAPI <plateColor> values (opt list of the ANPR XML: black, blue, golden, orange,
# red, yellow, white, unknown, other, newEnergyYellowGreen, civilAviationBlack,
# civilAviationGreen, green, mixedColor, newEnergyGreen, brown; older docs also "0xff").
# Firmwares differ in case ("White" vs "white"), so keys are lower-case.
_REPORTED_COLOURS: Mapping[str, str] = MappingProxyType(
    {
        "blue": "blue",
        "yellow": "yellow",
        "white": "white",
        "black": "black",
        "green": "green",
        "newenergygreen": "green",
        "gradientgreen": "green",
        "newenergyyellowgreen": "yellow_green",
        "yellowgreen": "yellow_green",
        "civilaviationblack": "black",
        "civilaviationgreen": "green",
        "golden": "golden",
        "orange": "orange",
        "red": "red",
        "brown": "brown",
        "mixedcolor": "mixed",
    }
)
_NO_COLOUR_INFORMATION = frozenset({"", "unknown", "other", "0xff", "none", "未知", "其他"})

# Colours a correctly read plate of each kind is printed in (DOMAIN.md §1.2–1.4).
_EXPECTED_COLOURS: Mapping[PlateKind, frozenset[str]] = MappingProxyType(
    {
        PlateKind.ORDINARY: frozenset({"blue", "yellow"}),
        PlateKind.NEW_ENERGY_SMALL: frozenset({"green"}),
        # Cameras report the yellow-and-green plate as either; both are fine.
        PlateKind.NEW_ENERGY_LARGE: frozenset({"yellow_green", "green"}),
        PlateKind.POLICE: frozenset({"white"}),
        PlateKind.COACH: frozenset({"yellow"}),
        PlateKind.TRAILER: frozenset({"yellow"}),
        PlateKind.CONSULATE: frozenset({"black"}),
        PlateKind.EMBASSY: frozenset({"black"}),
        PlateKind.HK: frozenset({"black"}),
        PlateKind.MACAU: frozenset({"black"}),
    }
)

# Strings vendors send when they saw a vehicle but no plate (Dahua "Unknown"/"No Plate",
# Chinese firmwares 无车牌/未识别 …), compared after cleaning (upper case, no spaces).
_PLACEHOLDERS = frozenset(
    {
        "无车牌",
        "车牌",
        "无牌",
        "无牌车",
        "未识别",
        "未知",
        "UNKNOWN",
        "NOPLATE",
        "NONE",
        "NULL",
        "N/A",
    }
)

# Markers of plates that need a person: 试 test, 超 over-size, 应急 emergency, 临 temporary,
# 民航 civil aviation (airside only), WJ armed police, TEMP a vendor's "temporary" text.
_SPECIAL_ANYWHERE: tuple[str, ...] = ("试", "超", "应急", "临", "民航")
_SPECIAL_PREFIXES: tuple[str, ...] = ("WJ", "TEMP")
_SPECIAL_ISSUE = "special plate: manual review"

# GA 36 uses the simplified forms; OCR trained on mixed data sometimes returns traditional ones.
_TRADITIONAL_TO_SIMPLIFIED: Mapping[str, str] = MappingProxyType(
    {"學": "学", "領": "领", "掛": "挂"}
)

# Dots and dashes printed on plates or typed by people, beyond what NFKC already folds.
_SEPARATORS = frozenset("·・•‧∙⋅-‐‑‒–—−")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALNUM = re.compile(r"[0-9A-Z]+")
_DIGITS = re.compile(r"[0-9]+")
_LATIN_CAPITAL = re.compile(r"[A-Z]")
_SUFFIX_KINDS: Mapping[str, PlateKind] = MappingProxyType(
    {
        "警": PlateKind.POLICE,
        "学": PlateKind.COACH,
        "挂": PlateKind.TRAILER,
        "领": PlateKind.CONSULATE,
        "港": PlateKind.HK,
        "澳": PlateKind.MACAU,
    }
)

CHANGE_NFKC = "folded full-width characters (NFKC)"
CHANGE_UPPER = "upper-cased Latin letters"
CHANGE_SEPARATORS = "removed separators and spaces"
ISSUE_I_OR_O = "serial contains I or O"


@dataclass(frozen=True, slots=True)
class PlateRules:
    """Estate-configurable plate rules; the defaults are those of GA 36-2018.

    :param small_nev_letters: letters allowed as the 3rd character of a small new-energy
        plate. GA 36 defines D and F; add more only if the local vehicle office issues them.
        A plate using an added letter is valid but carries an issue note (and a log line);
        a letter not in the set makes the plate invalid.
    :param large_nev_letters: letters allowed as the 8th character of a large new-energy plate.
    :param provinces: province abbreviations accepted as the first character.
    """

    small_nev_letters: frozenset[str] = GA36_NEV_LETTERS
    large_nev_letters: frozenset[str] = GA36_NEV_LETTERS
    provinces: frozenset[str] = PROVINCES

    def __post_init__(self) -> None:
        for name in ("small_nev_letters", "large_nev_letters"):
            letters = frozenset(getattr(self, name))
            bad = sorted(repr(x) for x in letters if not _is_nev_letter(x))
            if bad:
                raise ParkingError(
                    f"PlateRules.{name}: {', '.join(bad)} cannot be new-energy letters "
                    "(use single Latin capitals A–Z other than I and O)"
                )
            object.__setattr__(self, name, letters)
        provinces = frozenset(self.provinces)
        bad = sorted(repr(x) for x in provinces if not (isinstance(x, str) and len(x) == 1))
        if bad:
            raise ParkingError(
                f"PlateRules.provinces: {', '.join(bad)} are not single-character abbreviations"
            )
        object.__setattr__(self, "provinces", provinces)


def _is_nev_letter(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 1
        and _LATIN_CAPITAL.fullmatch(value) is not None
        and value not in "IO"
    )


DEFAULT_PLATE_RULES = PlateRules()
"""The GA 36 defaults: D/F new-energy letters, the 31 provinces."""


@dataclass(slots=True)
class _Classification:
    """What the plate patterns say about a normalised string (internal)."""

    kind: PlateKind
    blocking: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def normalise_plate(
    raw: str,
    reported_colour: str | None = None,
    rules: PlateRules = DEFAULT_PLATE_RULES,
) -> Plate:
    """Normalise, classify and check a plate string exactly as a camera sent it.

    Steps (DOMAIN.md §1.5): NFKC (full-width → ASCII), upper-case Latin letters, remove
    dots, dashes, spaces and invisible characters; strip a leading Chinese colour word
    (渐变绿, 黄绿, 蓝, 黄, 绿, 白, 黑; 黑 only when a province follows, since 黑 is also
    Heilongjiang) and cross-check it with ``reported_colour``; map 學→学, 領→领, 掛→挂;
    classify into a :class:`PlateKind`.

    :param raw: the plate text as received; kept untouched in ``Plate.raw`` (an adapter
        that passes None gets an empty, invalid plate).
    :param reported_colour: the device's separate plate-colour field, if any (Hikvision
        ISAPI ``plateColor`` such as ``"blue"`` or ``"newEnergyGreen"``, case-insensitive,
        or a Chinese colour word). A disagreement is recorded as an issue, never a rejection.
    :param rules: the estate's plate rules.
    :returns: a :class:`Plate`. ``valid`` is True only for a known kind with no blocking
        issue. ``kind`` describes the shape: for a serial with I or O it is the kind of the
        1/0 ``candidate`` (if that is a well-formed plate), while ``valid`` stays False.
        Normalising ``plate`` again changes nothing.
    """
    text = "" if raw is None else str(raw)
    changes: list[str] = []
    notes: list[str] = []

    cleaned = _clean(text, changes)
    plate, colours = _strip_colour_prefixes(cleaned, rules, changes)
    plate = _map_traditional(plate, changes)

    if not plate:
        issue = "empty plate string" if not cleaned else "nothing left after the colour prefix"
        return _result(text, "", PlateKind.INVALID, [issue], [], changes, None, colours)
    if plate in _PLACEHOLDERS:
        issue = f"no plate read (vendor placeholder {text.strip()!r})"
        return _result(text, "", PlateKind.INVALID, [issue], [], changes, None, colours)
    if _is_special(plate):
        return _result(text, plate, PlateKind.INVALID, [_SPECIAL_ISSUE], [], changes, None, colours)

    found = _classify(plate, rules)
    candidate: str | None = None
    head, serial, suffix = _split(plate)
    if "I" in serial or "O" in serial:
        substituted = head + serial.replace("I", "1").replace("O", "0") + suffix
        guess = _classify(substituted, rules)
        if guess.kind is not PlateKind.INVALID and not guess.blocking:
            candidate = substituted
            found = _Classification(guess.kind, [ISSUE_I_OR_O], guess.notes)
        else:
            found.blocking.append(ISSUE_I_OR_O)

    notes.extend(found.notes)
    notes.extend(_colour_notes(found.kind, colours, reported_colour))
    return _result(text, plate, found.kind, found.blocking, notes, changes, candidate, colours)


def reported_colour_name(reported: str) -> str | None:
    """Map a device's plate-colour field to a canonical colour name, or None if unknown.

    Accepts Hikvision ISAPI ``plateColor`` values in any case (``"blue"``, ``"White"``,
    ``"newEnergyYellowGreen"`` …) and Chinese colour words with or without 色. Returns
    ``"unknown"`` when the device said it does not know (``unknown``, ``other``, ``0xff``).
    """
    key = reported.strip().lower().replace(" ", "").replace("_", "")
    if key in _NO_COLOUR_INFORMATION:
        return "unknown"
    if key in _REPORTED_COLOURS:
        return _REPORTED_COLOURS[key]
    word = key.removesuffix("色")
    return COLOUR_WORDS.get(word)


def _clean(text: str, changes: list[str]) -> str:
    """NFKC, ASCII upper case, drop separators; repeated until nothing changes.

    One pass is not always a fixed point: dropping a separator can bring a letter next to a
    combining mark that NFKC then composes. Repeating keeps ``normalise_plate`` idempotent.
    """
    done: set[str] = set()
    current = text
    for _ in range(8):
        folded = unicodedata.normalize("NFKC", current)
        if folded != current:
            done.add(CHANGE_NFKC)
        upper = folded.translate(_ASCII_UPPER)
        if upper != folded:
            done.add(CHANGE_UPPER)
        compact = "".join(ch for ch in upper if not _is_separator(ch))
        if compact != upper:
            done.add(CHANGE_SEPARATORS)
        if compact == current:
            break
        current = compact
    changes.extend(step for step in (CHANGE_NFKC, CHANGE_UPPER, CHANGE_SEPARATORS) if step in done)
    return current


def _is_separator(ch: str) -> bool:
    # Cc/Cf: control and invisible format characters (zero-width space, BOM) from copy-paste.
    return ch in _SEPARATORS or ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf")


def _strip_colour_prefixes(
    plate: str, rules: PlateRules, changes: list[str]
) -> tuple[str, tuple[str, ...]]:
    """Remove leading colour words; return the rest and the words in the order found."""
    colours: list[str] = []
    while True:
        word = next((w for w in _COLOUR_PREFIXES if plate.startswith(w)), None)
        if word is None:
            break
        rest = plate[len(word) :]
        # 黑 is also Heilongjiang's abbreviation: 黑A12345 is a plate, 黑黑A12345 a black one.
        if word in rules.provinces and not _starts_like_plate(rest, rules):
            break
        colours.append(word)
        changes.append(f"stripped colour prefix {word}")
        plate = rest
    return plate, tuple(colours)


def _starts_like_plate(text: str, rules: PlateRules) -> bool:
    return bool(text) and (text[0] in rules.provinces or text[0] == "使")


def _map_traditional(plate: str, changes: list[str]) -> str:
    for traditional, simplified in _TRADITIONAL_TO_SIMPLIFIED.items():
        if traditional in plate:
            plate = plate.replace(traditional, simplified)
            changes.append(f"mapped {traditional}→{simplified}")
    return plate


def _is_special(plate: str) -> bool:
    return any(m in plate for m in _SPECIAL_ANYWHERE) or plate.startswith(_SPECIAL_PREFIXES)


def _split(plate: str) -> tuple[str, str, str]:
    """Split a plate into head (province and letter, or 使), serial, and kind suffix (警 …)."""
    head = 1 if plate.startswith("使") else 2
    tail = 1 if len(plate) > head and plate[-1] in _SUFFIX_KINDS else 0
    return plate[:head], plate[head : len(plate) - tail], plate[len(plate) - tail :]


def _classify(plate: str, rules: PlateRules) -> _Classification:
    """Match a cleaned, non-empty plate string against the GA 36 patterns."""
    if plate.startswith("使"):
        if len(plate) == 7 and _DIGITS.fullmatch(plate[1:]):
            return _Classification(PlateKind.EMBASSY)
        return _invalid("embassy plates are 使 followed by 6 digits")
    if plate[0] not in rules.provinces:
        return _invalid(f"unknown province abbreviation {plate[0]!r}")
    if len(plate) < 2 or not _LATIN_CAPITAL.fullmatch(plate[1]):
        shown = plate[1] if len(plate) > 1 else "nothing"
        return _invalid(f"2nd character must be an issuing-authority letter A–Z, got {shown!r}")
    suffix = plate[-1]
    if suffix in _SUFFIX_KINDS:
        return _classify_suffixed(plate, _SUFFIX_KINDS[suffix])
    if len(plate) == 7:
        if _ALNUM.fullmatch(plate[2:]):
            return _Classification(PlateKind.ORDINARY)
        return _invalid(f"serial {plate[2:]!r} may only contain digits and letters A–Z")
    if len(plate) == 8:
        return _classify_new_energy(plate, rules)
    return _invalid(
        f"wrong length: {len(plate)} characters (ordinary plates have 7, new-energy plates 8)"
    )


def _classify_suffixed(plate: str, kind: PlateKind) -> _Classification:
    suffix = plate[-1]
    middle = plate[2:-1]
    if kind is PlateKind.CONSULATE:
        if len(plate) == 7 and plate[1] == "A" and _DIGITS.fullmatch(middle):
            return _Classification(kind)
        return _invalid("consulate plates are a province, A, 4 digits and 领")
    if kind in (PlateKind.HK, PlateKind.MACAU):
        if len(plate) == 7 and plate.startswith("粤Z") and _ALNUM.fullmatch(middle):
            return _Classification(kind)
        return _invalid(f"{suffix} plates are 粤Z, 4 digits or letters and {suffix}")
    if len(plate) == 7 and _ALNUM.fullmatch(middle):
        return _Classification(kind)
    return _invalid(
        f"{kind.value} plates are a province, a letter, 4 digits or letters and {suffix}"
    )


def _classify_new_energy(plate: str, rules: PlateRules) -> _Classification:
    third, fourth, tail, last = plate[2], plate[3], plate[4:], plate[7]
    if _LATIN_CAPITAL.fullmatch(third):
        if third not in rules.small_nev_letters:
            return _invalid(
                f"3rd character {third!r} is not an allowed small new-energy letter "
                f"({_letters(rules.small_nev_letters)}; see small_nev_letters)"
            )
        if not (_ALNUM.fullmatch(fourth) and _DIGITS.fullmatch(tail)):
            return _invalid(
                "small new-energy plates are a province, a letter, "
                f"{_letters(rules.small_nev_letters)}, a letter or digit and 4 digits"
            )
        return _Classification(PlateKind.NEW_ENERGY_SMALL, notes=_odd_letter(third, plate))
    if _DIGITS.fullmatch(plate[2:7]):
        if last not in rules.large_nev_letters:
            return _invalid(
                f"8th character {last!r} is not an allowed large new-energy letter "
                f"({_letters(rules.large_nev_letters)}; see large_nev_letters)"
            )
        return _Classification(PlateKind.NEW_ENERGY_LARGE, notes=_odd_letter(last, plate))
    return _invalid(
        "8-character plate matches neither new-energy pattern "
        "(small: letter, letter or digit, 4 digits; large: 5 digits, letter)"
    )


def _odd_letter(letter: str, plate: str) -> list[str]:
    """Note (and log) a new-energy letter the estate allows but GA 36 does not define."""
    if letter in GA36_NEV_LETTERS:
        return []
    _LOGGER.info("accepted new-energy letter %s outside D/F on %s", letter, mask_plate(plate))
    return [f"new-energy letter {letter!r} is outside GA 36's D/F; allowed by estate config"]


def _letters(letters: frozenset[str]) -> str:
    return ", ".join(sorted(letters)) or "none"


def _invalid(issue: str) -> _Classification:
    return _Classification(PlateKind.INVALID, blocking=[issue])


def _colour_notes(
    kind: PlateKind, colours: tuple[str, ...], reported_colour: str | None
) -> list[str]:
    """Cross-check the prefix colour, the reported colour and the kind; never blocking."""
    notes: list[str] = []
    if len(colours) > 1:
        notes.append(f"more than one colour prefix: {', '.join(colours)}")
    prefix_name = COLOUR_WORDS[colours[0]] if colours else None
    reported_name: str | None = None
    if reported_colour is not None:
        reported_name = reported_colour_name(reported_colour)
        if reported_name is None:
            notes.append(f"reported plate colour {reported_colour!r} not recognised")
        elif reported_name == "unknown":
            reported_name = None
    if prefix_name and reported_name and prefix_name != reported_name:
        notes.append(
            f"colour prefix {colours[0]} ({prefix_name}) disagrees with "
            f"reported plate colour {reported_colour!r}"
        )
    expected = _EXPECTED_COLOURS.get(kind)
    if expected is None:
        return notes
    for name in dict.fromkeys(n for n in (prefix_name, reported_name) if n):
        if name in expected:
            continue
        if name == "blue" and kind in (PlateKind.NEW_ENERGY_SMALL, PlateKind.NEW_ENERGY_LARGE):
            notes.append(
                "blue colour on an 8-character new-energy plate is suspicious "
                "(a 7-character blue plate read with one character too many?)"
            )
        else:
            notes.append(
                f"{name} is an unusual colour for {kind.value} plates "
                f"(expected {' or '.join(sorted(expected))})"
            )
    return notes


def _result(
    raw: str,
    plate: str,
    kind: PlateKind,
    blocking: list[str],
    notes: list[str],
    changes: list[str],
    candidate: str | None,
    colours: tuple[str, ...],
) -> Plate:
    valid = kind is not PlateKind.INVALID and not blocking
    return Plate(
        raw=raw,
        plate=plate,
        kind=kind,
        valid=valid,
        issues=(*blocking, *notes),
        changes=tuple(changes),
        candidate=candidate,
        colour=colours[0] if colours else None,
    )
