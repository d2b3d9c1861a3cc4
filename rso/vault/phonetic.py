"""A transliteration-tolerant phonetic key for names.

Registration staff write the same name many ways: Mohammed, Muhammad, Mohamad; Hussein,
Husain, Hossain; Abdul Rahman, Abdulrahman, Abdur Rahman; Aung, Aong; Nguyen, Nguyễn. Plain
Soundex-style keys either miss these or lump together names that are clearly different
(a pure consonant skeleton makes *Mohammed* and *Mahmoud* both ``MHMD``). This key:

1. **Romanises** (:func:`romanise`): Latin accents stripped; Arabic script, Cyrillic and
   Greek through letter tables; Brahmic scripts (Burmese, Tamil, Devanagari, Bengali...)
   from the Unicode character names (consonant + inherent vowel, vowel signs, virama).
   Other scripts (Han, Hangul, Ethiopic...) are kept as they are: such a token only matches
   itself exactly.
2. **Canonicalises compounds**: the article in ``abd al-``, ``abdul``, ``abdel``, ``abdur
   rahman`` (sun-letter assimilation), ``abdi`` is reduced to one form and the compound
   is joined; a separate ``al``/``el`` article is joined to the word it precedes.
3. **Skeletonises** (:func:`skeleton`): consonants in equivalence classes
   (b=p, d=t=dh=th, f=v=ph, g=j=gh=dj, k=q=c=ck=kh, s=z, sh=ch=sch=zh), letters doubled
   in writing collapse, ``y``/``w`` count as consonants only before a vowel, a word-final
   ``h`` after a vowel is dropped (Fatimah = Fatima). Vowels are kept only coarsely: a run
   of vowels becomes one class - ``i`` (contains i, y or ee: ei, ai, ay, ee...), ``u``
   (contains o or u) or ``a`` (a, e) - a word-initial vowel run is just ``a``, and a
   word-final vowel is dropped (Hassane = Hassan). Keeping *where* vowels are is what tells
   Mohammed (``MuHaMaT``) from Mahmoud (``MaHMuT``) and Hussein (``HuSiN``) from Hassan
   (``HaSaN``).

:func:`phonetic_keys` returns one key per name token (particles such as *al*, *bin*, *van*
are not keys on their own) plus compounds, and a key for the whole name with its tokens
sorted (given/family order varies between registrations).

Cross-script matching (Arabic script against Latin) is not attempted: Arabic script does
not write short vowels, so its keys only meet other Arabic-script spellings.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from rso.vault.normalise import fold_text

# --------------------------------------------------------------------------- romanisation
_ARABIC = {
    "ا": "a", "ب": "b", "ت": "t", "ث": "th", "ج": "j", "ح": "h", "خ": "kh", "د": "d",
    "ذ": "dh", "ر": "r", "ز": "z", "س": "s", "ش": "sh", "ص": "s", "ض": "d", "ط": "t",
    "ظ": "z", "ع": "a", "غ": "gh", "ف": "f", "ق": "q", "ك": "k", "ل": "l", "م": "m",
    "ن": "n", "ه": "h", "و": "w", "ي": "y", "ء": "", "پ": "p", "چ": "ch", "ژ": "zh",
    "گ": "g", "ڤ": "v", "ٹ": "t", "ڈ": "d", "ڑ": "r", "ں": "n", "ھ": "h", "ے": "y",
}
_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z",
    "и": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya", "і": "i",
    "ї": "yi", "є": "ye", "ґ": "g", "қ": "q", "ғ": "gh", "ң": "ng", "ү": "u", "ұ": "u",
    "һ": "h", "ә": "a", "ө": "o", "ј": "j", "љ": "lj", "њ": "nj", "џ": "dzh", "ђ": "dj",
    "ћ": "ch", "ҳ": "h", "ҷ": "j", "ӯ": "u", "ӣ": "i", "ў": "u",
}
_GREEK = {
    "α": "a", "β": "v", "γ": "g", "δ": "d", "ε": "e", "ζ": "z", "η": "i", "θ": "th",
    "ι": "i", "κ": "k", "λ": "l", "μ": "m", "ν": "n", "ξ": "x", "ο": "o", "π": "p",
    "ρ": "r", "σ": "s", "ς": "s", "τ": "t", "υ": "y", "φ": "f", "χ": "ch", "ψ": "ps",
    "ω": "o",
}
_TABLE = {**_ARABIC, **_CYRILLIC, **_GREEK}
_INDEPENDENT_VOWELS = {
    "A": "a", "AA": "a", "I": "i", "II": "i", "U": "u", "UU": "u", "E": "e", "EE": "e",
    "AI": "ai", "O": "o", "OO": "o", "AU": "au", "VOCALIC R": "r", "VOCALIC RR": "r",
    "VOCALIC L": "l", "VOCALIC LL": "l",
}
_KILLERS = ("SIGN VIRAMA", "SIGN ASAT", "SIGN PULLI", "SIGN AL-LAKUNA", "SIGN COENG")


def _is_brahmic(cp: int) -> bool:
    # Devanagari .. Sinhala, Myanmar (+ extensions), Khmer
    return (
        0x0900 <= cp <= 0x0DFF or 0x1000 <= cp <= 0x109F or 0xAA60 <= cp <= 0xAA7F or 0x1780 <= cp <= 0x17FF
    )


def _romanise_brahmic(run: str) -> str:
    """Romanise a run of Brahmic-script characters from their Unicode names."""
    out: list[str] = []
    inherent = False  # a consonant is waiting for its inherent vowel "a"
    for ch in run:
        name = unicodedata.name(ch, "")
        if " VOWEL SIGN " in name:
            inherent = False
            out.append(_INDEPENDENT_VOWELS.get(name.split(" VOWEL SIGN ", 1)[1], "a"))
        elif name.endswith(_KILLERS):
            inherent = False
        elif " CONSONANT SIGN MEDIAL " in name:
            # Burmese medials (ya, ra, wa, ha) sit between the consonant and its vowel
            out.append(name.rsplit(" ", 1)[1].lower().removesuffix("a") or "")
        elif " LETTER " in name:
            if inherent:
                out.append("a")
            letter = name.split(" LETTER ", 1)[1]
            if letter in _INDEPENDENT_VOWELS:
                out.append(_INDEPENDENT_VOWELS[letter])
                inherent = False
            else:
                out.append(letter.rsplit(" ", 1)[-1].lower().removesuffix("a"))
                inherent = True
        elif name.endswith(("SIGN ANUSVARA", "SIGN CANDRABINDU")):
            if inherent:
                out.append("a")
            inherent = False
            out.append("n")
        # tone marks, nukta, visarga and digits carry nothing a name key needs
    if inherent:
        out.append("a")
    return "".join(out)


@functools.lru_cache(maxsize=200_000)  # pure, and names repeat a great deal in a caseload
def romanise(name: str) -> str:
    """Lower-case romanised words separated by single spaces (see module docstring)."""
    folded = fold_text(name)
    out: list[str] = []
    brahmic: list[str] = []
    for ch in folded:
        if brahmic and not _is_brahmic(ord(ch)):
            out.append(_romanise_brahmic("".join(brahmic)))
            brahmic.clear()
        if "a" <= ch <= "z" or ch == " ":
            out.append(ch)
        elif ch in _TABLE:
            out.append(_TABLE[ch])
        elif _is_brahmic(ord(ch)):
            brahmic.append(ch)
        elif ch.isdigit():
            out.append(" ")
        else:
            out.append(ch)  # a script without a table: kept, matches itself only
    if brahmic:
        out.append(_romanise_brahmic("".join(brahmic)))
    return " ".join("".join(out).split())


# --------------------------------------------------------------------------- compounds
#: articles that are joined to the following word ("al hassan" = "alhassan")
_ARTICLES = frozenset({"al", "el"})
#: assimilated articles that may follow a separate "abd" ("abd ar rahman")
_ABD_ARTICLES = frozenset(
    {"al", "el", "ul", "il", "ar", "ur", "er", "as", "us", "es", "ad", "ud", "ed", "an", "un", "en",
     "at", "ut", "et", "az", "uz", "ez", "ash", "ush", "esh"}
)
#: not search keys on their own (still part of the whole-name key)
PARTICLES = frozenset({"al", "el", "bin", "ibn", "bint", "binti", "van", "von"})
#: a separate "abd"-prefix word, to be joined to the next: abd, abdu, abdi, abdul, abdel,
#: abdal, abdur, abdus, abdoul, abdool...
_ABD_PREFIX = re.compile(r"^abd(?:[aeiou]{0,2}(?:l|r|s|n|d|t|z|sh)?)?$")


def _canonical_abd(word: str) -> str:
    """``abdul/abdel/abdur/abdi/abd al`` + X → ``abdal`` + X (X without the article)."""
    if not word.startswith("abd"):
        return word
    if _ABD_PREFIX.match(word):  # the prefix on its own: abdul, abdur, abdi...
        return "abdal"
    tail = word[3:].lstrip("aeiou")
    # "l" of the article, or the doubled sun letter of an assimilated one (abdurrahman)
    if tail.startswith("l") or (len(tail) >= 2 and tail[0] == tail[1]):
        tail = tail[1:]
    return "abdal" + tail


def _merge_compounds(words: list[str]) -> tuple[list[str], set[int]]:
    """Join ``abd``-prefix words and ``al``/``el`` articles to the word they precede.
    Returns the merged words and the indexes of article words swallowed after an ``abd``."""
    merged: list[str] = []
    swallowed: set[int] = set()
    i, n = 0, len(words)
    while i < n:
        w = words[i]
        if _ABD_PREFIX.match(w) and i + 1 < n:
            nxt = words[i + 1]
            if nxt in _ABD_ARTICLES and i + 2 < n:
                merged.append(w + nxt + words[i + 2])
                swallowed.add(i + 1)
                i += 3
            else:
                merged.append(w + nxt)
                i += 2
            continue
        if w in _ARTICLES and i + 1 < n:
            merged.append("al" + words[i + 1])
            i += 2
            continue
        merged.append(w)
        i += 1
    return merged, swallowed


# --------------------------------------------------------------------------- skeleton
_VOWEL_LETTERS = frozenset("aeiou")
# ordered: longest spellings first
_CONSONANTS = [
    ("sch", "X"), ("dzh", "J"),
    ("sh", "X"), ("ch", "X"), ("zh", "X"), ("kh", "K"), ("gh", "J"), ("ph", "F"), ("th", "T"),
    ("dh", "T"), ("bh", "B"), ("jh", "J"), ("dj", "J"), ("ck", "K"),
    ("b", "B"), ("p", "B"), ("d", "T"), ("t", "T"), ("f", "F"), ("v", "F"), ("g", "J"),
    ("j", "J"), ("k", "K"), ("q", "K"), ("s", "S"), ("z", "S"), ("h", "H"), ("l", "L"),
    ("m", "M"), ("n", "N"), ("r", "R"),
]
_SCAN = re.compile("|".join(p for p, _ in _CONSONANTS) + r"|c|x|w|y|[aeiou]+|.", re.DOTALL)
_CODE = dict(_CONSONANTS)


def _vowel_class(run: str) -> str:
    if "i" in run or "y" in run or "ee" in run:
        return "i"
    if "o" in run or "u" in run or "w" in run:
        return "u"
    return "a"


@functools.lru_cache(maxsize=200_000)
def skeleton(word: str) -> str:
    """The phonetic code of one romanised word (e.g. ``muhammad`` → ``MuHaMaT``).

    Upper case = consonant class, lower case = vowel class. A word holding characters that
    could not be romanised is returned as ``~`` + itself (exact match only).
    """
    if not word:
        return ""
    if not word.isascii() or not word.isalpha():
        return "~" + word
    parts = _SCAN.findall(word)
    # (code, is_vowel) with y/w resolved: a consonant only before a vowel letter
    seq: list[tuple[str, bool]] = []
    for i, p in enumerate(parts):
        nxt = parts[i + 1] if i + 1 < len(parts) else ""
        if p[0] in _VOWEL_LETTERS:
            seq.append((p, True))
        elif p in ("y", "w"):
            if nxt and nxt[0] in _VOWEL_LETTERS:
                seq.append(("Y" if p == "y" else "W", False))
            else:
                seq.append((p, True))
        elif p == "c":
            seq.append(("S" if nxt[:1] in ("e", "i", "y") else "K", False))
        elif p == "x":
            seq.append(("K", False))
            seq.append(("S", False))
        else:
            seq.append((_CODE[p], False))
    # join adjacent vowel pieces into runs; collapse doubled consonants
    items: list[tuple[str, bool]] = []
    for code, vowel in seq:
        if items and items[-1][1] and vowel:
            items[-1] = (items[-1][0] + code, True)
        elif items and not vowel and items[-1] == (code, False):
            continue
        else:
            items.append((code, vowel))
    # word-final h after a vowel is silent (fatimah, abdullah, aishah)
    if len(items) >= 2 and items[-1] == ("H", False) and items[-2][1]:
        items.pop()
    # a word-final vowel is dropped (hassane, fatima/fatime), unless it is all there is
    if len(items) >= 2 and items[-1][1]:
        items.pop()
    out = []
    for i, (code, vowel) in enumerate(items):
        if vowel:
            out.append("a" if i == 0 else _vowel_class(code))
        else:
            out.append(code)
    return "".join(out)


@dataclass(frozen=True)
class PhoneticKey:
    #: one code per name token and per joined compound (sorted, unique)
    tokens: tuple[str, ...]
    #: the whole name: the compounds' codes, sorted, space-separated
    full: str

    def all(self) -> list[str]:
        """Every code to index (tokens and the full name), unique."""
        return sorted({*self.tokens, self.full} - {""})


@functools.lru_cache(maxsize=200_000)  # frozen result: safe to share
def phonetic_keys(name: str | None) -> PhoneticKey:
    """Phonetic codes of a name (see the module docstring).

    Particles (*al*, *bin*, *van*...) are left out of both the token codes and the
    whole-name code (they are often dropped or added between registrations), unless the
    name consists of nothing else.
    """
    words = romanise(name or "").split()
    merged, swallowed = _merge_compounds(words)
    candidates = [w for i, w in enumerate(words) if i not in swallowed] + merged
    token_codes = {skeleton(_canonical_abd(w)) for w in candidates if w not in PARTICLES}
    full_words = [w for w in merged if w not in PARTICLES] or merged
    full_codes = sorted(c for c in (skeleton(_canonical_abd(w)) for w in full_words) if c)
    token_codes.discard("")
    if not token_codes and full_codes:
        token_codes.update(full_codes)
    return PhoneticKey(tokens=tuple(sorted(token_codes)), full=" ".join(full_codes))


def phonetic_code(name: str | None) -> str:
    """The whole-name code (convenience for comparisons and tests)."""
    return phonetic_keys(name).full
