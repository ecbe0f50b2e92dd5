"""Text helpers the WebShop reward and shop share: fuzzy matching, colour normalisation,
title words, prices.

WebShop scores attributes and options with ``thefuzz``'s ``token_set_ratio`` and a
threshold of 85. :func:`token_set_ratio` is a dependency-free implementation of that
score, so agentgym needs neither ``thefuzz`` nor ``rapidfuzz``:

* the preprocessing is that of ``thefuzz==0.19.0``, the version WebShop pins
  (:func:`full_process`): underscores are part of a word (``x_large`` is one word), and
  of the non-ASCII characters only U+0080-U+00FF are dropped (``café`` -> ``caf``),
  other punctuation such as an en dash becomes a space. thefuzz 0.20 and later
  preprocess with rapidfuzz, which turns underscores into spaces;
* the ratio is the Indel (Levenshtein) ratio that thefuzz uses with
  ``python-Levenshtein`` installed, and that thefuzz 0.20+ always uses. WebShop's
  requirements do not install ``python-Levenshtein``, so thefuzz 0.19 there falls back
  to ``difflib.SequenceMatcher``, whose ratio is at most the Indel ratio: on every pair
  of option values and of attributes of the shipped catalog, the two put the same pairs
  above the threshold of 85 (they differ on 19% of the 73,277 pairs, never above 69).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: thefuzz 0.19 drops code points 128-255 (its "ascii dammit" table), then turns every
#: non-word character (Python's unicode ``\W``: not a letter, digit or underscore) into a
#: space.
_LATIN1 = dict.fromkeys(range(128, 256))
_NON_WORD = re.compile(r"\W", re.UNICODE)
_WORD = re.compile(r"[a-z]+")

#: WebShop's ``COLOR_SET`` (``web_agent_site/engine/normalize.py``): its 102 colour words,
#: alphabetical. :func:`normalize_color` maps an option value to the first of these it
#: contains, so the order decides: "navy blue" -> "blue", "light pink" -> "light" (which
#: then does not match a goal's "pink", as in WebShop), "heather grey" -> "grey".
COLOR_WORDS: tuple[str, ...] = (
    "alabaster", "apricot", "aqua", "ash", "asphalt", "azure", "banana", "beige",
    "black", "blue", "blush", "bordeaux", "bronze", "brown", "burgundy", "camel",
    "camo", "caramel", "champagne", "charcoal", "cheetah", "chestnut", "chocolate",
    "christmas", "coffee", "cognac", "copper", "coral", "cranberry", "cream", "crystal",
    "dark", "denim", "eggplant", "elephant", "espresso", "fuchsia", "gold", "granite",
    "grape", "graphite", "grass", "gray", "green", "grey", "heather", "indigo", "ivory",
    "ivy", "khaki", "lavender", "lemon", "leopard", "light", "lilac", "lime", "magenta",
    "maroon", "mauve", "merlot", "midnight", "mint", "mocha", "multicolor", "mushroom",
    "mustard", "natural", "navy", "nude", "olive", "orange", "peach", "pewter", "pink",
    "plum", "purple", "rainbow", "red", "rose", "royal", "rust", "sand", "sapphire",
    "seashell", "silver", "skull", "slate", "steel", "stone", "stonewash", "sunflower",
    "tan", "taupe", "teal", "tiger", "turquoise", "violet", "walnut", "wheat", "white",
    "wine", "yellow"
)  # fmt: skip


#: Words that carry no product type (WebShop keeps only nouns, with spaCy; see
#: :func:`title_words`).
def _words(text: str) -> list[str]:
    return text.split()


_TITLE_STOPWORDS = frozenset(
    _words("""a an and are as at be by for from in into is it its of on or the to with without
    your you our my me i we this that these those s t men mens women womens unisex kids
    pack pcs piece pieces set size color inch inches ounce ounces oz lb lbs count ft feet
    new best high quality premium great top one two three four five six""")
)


def full_process(text: str) -> str:
    """``thefuzz==0.19.0``'s preprocessing (with ``force_ascii``, as ``token_set_ratio``
    calls it): characters U+0080-U+00FF removed, every other character that is not a
    letter, digit or underscore replaced by a space, lowercased, stripped."""
    return _NON_WORD.sub(" ", text.translate(_LATIN1)).lower().strip()


def lcs_length(a: str, b: str) -> int:
    """Length of the longest common subsequence of ``a`` and ``b`` (bit-parallel)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    masks: dict[str, int] = {}
    for i, ch in enumerate(b):
        masks[ch] = masks.get(ch, 0) | (1 << i)
    full = (1 << len(b)) - 1
    v = full
    for ch in a:
        u = v & masks.get(ch, 0)
        v = ((v + u) | (v - u)) & full
    return len(b) - v.bit_count()


def indel_ratio(a: str, b: str) -> float:
    """``100 * (1 - indel_distance / (len(a) + len(b)))``: fuzz.ratio before rounding."""
    total = len(a) + len(b)
    if total == 0:
        return 100.0
    return 100.0 * 2 * lcs_length(a, b) / total


def token_set_ratio(s1: str, s2: str) -> int:
    """``thefuzz.fuzz.token_set_ratio(s1, s2)``: 0-100, 100 when one string's word set
    contains the other's.

    Word sets after :func:`full_process`; ``sect`` is the sorted common words, ``d1`` and
    ``d2`` the sorted leftovers; the score is the best :func:`indel_ratio` among
    ``(sect, sect+d1)``, ``(sect, sect+d2)`` and ``(sect+d1, sect+d2)``, rounded.
    """
    a, b = full_process(s1), full_process(s2)
    if not a or not b:
        return 0
    t1, t2 = set(a.split()), set(b.split())
    common = " ".join(sorted(t1 & t2))
    only1 = " ".join(sorted(t1 - t2))
    only2 = " ".join(sorted(t2 - t1))
    if common and (not only1 or not only2):
        return 100
    with1 = f"{common} {only1}".strip()
    with2 = f"{common} {only2}".strip()
    scores = [indel_ratio(with1, with2)]
    if common:
        scores += [indel_ratio(common, with1), indel_ratio(common, with2)]
    return round(max(scores))


def fuzzy_match(a: str, b: str, threshold: int = 85) -> bool:
    """WebShop's match test: ``token_set_ratio(a, b) > threshold``."""
    return token_set_ratio(a, b) > threshold


def normalize_color(value: str) -> str:
    """The first colour word (:data:`COLOR_WORDS`) that ``value`` contains, else ``value``."""
    for color in COLOR_WORDS:
        if color in value:
            return color
    return value


def title_words(title: str) -> list[str]:
    """The product-type words of a title: lowercase alphabetic words of two or more
    letters that are not stop words, sizes or marketing filler.

    WebShop's reward code keeps the words spaCy's ``en_core_web_sm`` tags ``NOUN`` or
    ``PROPN`` in the title. That model is a separate download, not available offline, so
    agentgym keeps content words instead (a documented deviation: adjectives such as
    "slim" count here, and the title score of two different products is a little higher
    than WebShop's).
    """
    return [w for w in _WORD.findall(title.lower()) if len(w) > 1 and w not in _TITLE_STOPWORDS]


def format_price(value: float) -> str:
    """A price the way WebShop prints it: ``$`` and Python's float text (``$12.99``,
    ``$100.0``)."""
    return f"${float(value)}"


def price_tag(pricing: Iterable[float]) -> str:
    """``$x`` for one price, ``$x to $y`` for a range (WebShop's product page text)."""
    values = list(pricing)
    if len(values) == 1:
        return format_price(values[0])
    return f"{format_price(values[0])} to {format_price(values[1])}"


def parse_pricing(raw: object) -> list[float]:
    """Prices from a catalog's ``pricing`` field: a string such as ``"$12.99"`` or
    ``"$10.99 - $15.99"`` (WebShop's scraped form), or a list of numbers. At most two
    values are kept; no price at all means ``[100.0]``, as in WebShop."""
    values: list[float] = []
    if isinstance(raw, str):
        for part in raw.split("$")[1:]:
            digits = re.sub(r"[^\d.]", "", part)
            try:
                values.append(float(digits))
            except ValueError:
                continue
    elif isinstance(raw, (list, tuple)):
        for item in raw:
            try:
                values.append(float(item))
            except (TypeError, ValueError):
                continue
    elif isinstance(raw, (int, float)):
        values.append(float(raw))
    return values[:2] or [100.0]
