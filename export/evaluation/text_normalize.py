"""English text normalizer for scoring speech recognition (both reference and hypothesis).

Reference transcripts and recognizers write the same speech differently ("Mr. Dashwood" /
"mister dashwood", "1465" / "fourteen sixty-five", "don't" / "do not"). Word error rate is
only meaningful after both sides are put into one form. `normalize_english` does that, in
this order:

1. **Unicode.** Accents are stripped (NFKD, combining marks dropped: "Lübeck" → "lubeck");
   curly quotes become straight ones; everything is lower-cased.
2. **Contractions are expanded**: "n't" → " not" ("can't" → "can not", "won't" → "will not",
   "cannot" → "can not"), "'m" → " am", "'re" → " are", "'ve" → " have", "'ll" → " will",
   "'d" → " would", and "'s" → " is" after it/he/she/that/there/here/what/where/who/how
   ("let's" → "let us"). Any other "'s" is a possessive and stays on its word; the apostrophe
   is then removed ("country's" → "countrys") on both sides alike.
3. **Symbols read aloud**: "%" → "percent", "&" → "and", "$5" → "5 dollars".
   Thousands separators go ("1,000" → "1000"); a decimal point between digits stays ("2.5").
4. **Punctuation and hyphens become spaces** ("forty-two" → "forty two", "i.e." → "i e").
   Brackets are removed but their words kept: a reference may put spoken words in parentheses.
5. **Abbreviations** spoken as words: mr → mister, mrs → missus, dr → doctor, vs → versus.
   Hesitations (uh, um, umm, hmm, mm, erm) are dropped.
6. **Numbers are written as digits** (spelled-out numbers are converted; digits are kept):
   "one hundred and five" → "105", "two thousand twenty" → "2020", "twenty-one" → "21",
   "three point five" → "3.5". Year style: two groups of 10–99 in a row are one number
   ("fourteen sixty-five" → "1465", "nineteen oh five" → "1905"; "nineteen hundred" → "1900").
   Ordinals keep their suffix: "fifteenth" → "15th", "twenty-first" → "21st"; lone "second"
   stays a word (it is usually the unit of time). Counting in a row stays separate numbers
   ("one two three" → "1 2 3"). "a hundred" is left as words.

The result is words separated by single spaces. Not handled: British vs American spelling,
compounds written as one word or two ("lowercase" / "lower case"), spoken dates and times.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_ONES = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9,
}
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}

_ORDINAL_ONES = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5,
    "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9,
}
_ORDINAL_TEENS = {
    "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
}
_ORDINAL_TENS = {
    "twentieth": 20, "thirtieth": 30, "fortieth": 40, "fiftieth": 50,
    "sixtieth": 60, "seventieth": 70, "eightieth": 80, "ninetieth": 90,
}
_ORDINAL_SCALES = {"thousandth": 1_000, "millionth": 1_000_000, "billionth": 1_000_000_000}

_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "vs": "versus"}
_HESITATIONS = frozenset({"uh", "um", "umm", "hmm", "mm", "erm"})

_CONTRACTIONS = [
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bshan't\b"), "shall not"),
    (re.compile(r"\bain't\b"), "is not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\blet's\b"), "let us"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"\b(it|he|she|that|there|here|what|where|who|how)'s\b"), r"\1 is"),
]
_CURRENCY = re.compile(r"\$\s?(\d[\d,]*(?:\.\d+)?)")
_THOUSANDS_SEP = re.compile(r"(?<=\d),(?=\d{3}\b)")
# Everything but letters, digits, apostrophes and decimal points between digits becomes a space.
_NOT_WORD = re.compile(r"(?!(?<=\d)\.(?=\d))[^a-z0-9']")


def normalize_english(text: str) -> str:
    """`text` in the scoring form described in this module's docstring."""
    text = _strip_accents(text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    text = _CURRENCY.sub(r"\1 dollars", text)
    text = text.replace("%", " percent ").replace("&", " and ")
    text = _THOUSANDS_SEP.sub("", text)
    text = _NOT_WORD.sub(" ", text)
    words = []
    for word in text.replace("'", "").split():
        word = _ABBREVIATIONS.get(word, word)
        if word not in _HESITATIONS:
            words.append(word)
    return " ".join(_words_to_digits(words))


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True)
class _Number:
    value: int
    end: int
    """Index just past the last word used."""
    bare: bool
    """No hundred/thousand word in it: a candidate half of a year ("fourteen" "sixty-five")."""
    ordinal: bool = False


def _words_to_digits(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(words):
        number = _read_number(words, i)
        if number is None:
            out.append(words[i])
            i += 1
            continue
        number = _join_year(words, number)
        text = str(number.value)
        if number.ordinal:
            text += _ordinal_suffix(number.value)
        end = number.end
        if not number.ordinal and end + 1 < len(words) and words[end] == "point":
            digits = _read_digit_words(words, end + 1)
            if digits:
                text += "." + digits
                end += 1 + len(digits)
        out.append(text)
        i = end
    return out


def _join_year(words: list[str], first: _Number) -> _Number:
    """'fourteen sixty five' → 1465 and 'nineteen oh five' → 1905; otherwise `first` as it is."""
    if not first.bare or first.ordinal or not 10 <= first.value <= 99:
        return first
    j = first.end
    if j + 1 < len(words) and words[j] == "oh" and words[j + 1] in _ONES:
        return _Number(first.value * 100 + _ONES[words[j + 1]], j + 2, bare=False)
    second = _read_number(words, j)
    if second is not None and second.bare and 10 <= second.value <= 99:
        return _Number(first.value * 100 + second.value, second.end, bare=False, ordinal=second.ordinal)
    return first


def _read_number(words: list[str], start: int) -> _Number | None:
    """The longest well-formed spelled-out number starting at `start`, or None."""
    total = 0  # completed thousands/millions/billions
    current = 0  # the part below the last scale word
    last = ""  # kind of the previous word: ones, teen, tens, hundred, scale, and
    last_scale = 0
    bare = True
    i = start
    end = start
    while i < len(words):
        word = words[i]
        if word == "zero" and i == start:
            return _Number(0, i + 1, bare=False)
        ordinal = False
        kind, value = _kind(word)
        if kind is None:
            kind, value = _ordinal_kind(word, last)
            ordinal = kind is not None
        if kind is None:
            if word == "and" and last in ("hundred", "scale") and i + 1 < len(words):
                nxt, _ = _kind(words[i + 1])
                nxt = nxt or _ordinal_kind(words[i + 1], "and")[0]
                if nxt in ("ones", "teen", "tens"):
                    last = "and"
                    i += 1
                    continue
            break
        if kind == "ones" and last in ("", "tens", "hundred", "scale", "and"):
            current += value
        elif kind in ("teen", "tens") and last in ("", "hundred", "scale", "and"):
            current += value
        elif kind == "hundred" and last in ("ones", "teen", "tens") and current < 100:
            current *= 100
            bare = False
        elif kind == "scale" and last in ("ones", "teen", "tens", "hundred") and (
            not last_scale or value < last_scale
        ):
            total += current * value
            current = 0
            last_scale = value
            bare = False
        else:
            break
        last = kind
        i += 1
        end = i
        if ordinal:
            return _Number(total + current, end, bare=bare, ordinal=True)
    if end == start:
        return None
    return _Number(total + current, end, bare=bare)


def _kind(word: str) -> tuple[str | None, int]:
    if word in _ONES:
        return "ones", _ONES[word]
    if word in _TEENS:
        return "teen", _TEENS[word]
    if word in _TENS:
        return "tens", _TENS[word]
    if word == "hundred":
        return "hundred", 100
    if word in _SCALES:
        return "scale", _SCALES[word]
    return None, 0


def _ordinal_kind(word: str, last: str) -> tuple[str | None, int]:
    if word in _ORDINAL_ONES:
        # Lone "second" is a unit of time far more often than an ordinal.
        if word == "second" and last not in ("tens", "hundred", "scale", "and"):
            return None, 0
        return "ones", _ORDINAL_ONES[word]
    if word in _ORDINAL_TEENS:
        return "teen", _ORDINAL_TEENS[word]
    if word in _ORDINAL_TENS:
        return "tens", _ORDINAL_TENS[word]
    if word == "hundredth":
        return "hundred", 100
    if word in _ORDINAL_SCALES:
        return "scale", _ORDINAL_SCALES[word]
    return None, 0


def _read_digit_words(words: list[str], start: int) -> str:
    digits = []
    for word in words[start:]:
        if word in _ONES:
            digits.append(str(_ONES[word]))
        elif word in ("zero", "oh"):
            digits.append("0")
        else:
            break
    return "".join(digits)


def _ordinal_suffix(value: int) -> str:
    if value % 100 in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")
