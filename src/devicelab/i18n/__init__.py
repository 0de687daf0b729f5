"""Output in the user's language: a gettext message catalogue, English by default.

The language is ``--lang`` (set once by the CLI with ``set_language``), else ``DEVICELAB_LANG``, else the
locale (``LC_ALL``, ``LC_MESSAGES``, ``LANG``); only ``en`` and ``zh`` exist. User-visible sentences are
wrapped in ``_()`` with named placeholders (``_("{n} epochs").format(n=n)``), never assembled from pieces,
so that a translation can reorder them; numbers and units are formatted the same in both languages.

The catalogue's source is ``locale/zh/LC_MESSAGES/devicelab.po``; the compiled ``devicelab.mo`` beside it
ships in the package (``python -m devicelab.i18n.compile`` rebuilds it; a test checks the two agree).
"""

from __future__ import annotations

import gettext
import os
from functools import cache
from pathlib import Path

DOMAIN = "devicelab"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "zh")
_chosen: str | None = None


def normalize(name: str | None) -> str | None:
    """'zh_CN.UTF-8', 'zh-Hans', 'ZH' -> 'zh'; 'C', 'POSIX', 'en_US' -> 'en'; '' or None -> None."""
    if not name:
        return None
    base = name.split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    if base in ("c", "posix"):
        return "en"
    return base or None


def detect_language(environ: os._Environ | dict | None = None) -> str:
    """DEVICELAB_LANG, else the locale's language; English when neither names a language we have."""
    env = os.environ if environ is None else environ
    for var in ("DEVICELAB_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        lang = normalize(env.get(var))
        if lang:
            return lang if lang in LANGUAGES else "en"
    return "en"


def set_language(lang: str | None) -> str:
    """Use ``lang`` (``en`` or ``zh``; None = detect) from now on; returns the language in use."""
    global _chosen
    _chosen = normalize(lang) if lang else None
    if _chosen is not None and _chosen not in LANGUAGES:
        _chosen = "en"
    return language()


def language() -> str:
    return _chosen or detect_language()


@cache
def _translations(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)


def _(message: str) -> str:
    """``message`` in the current language (itself when there is no translation)."""
    return _translations(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translations(language()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` as it reads in ``context`` (a word that another place translates differently)."""
    return _translations(language()).pgettext(context, message)


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue without translating it now (tables of labels)."""
    return message


def translate(text: str) -> str:
    """A sentence made elsewhere (a probe's reason, an error raised deep in the library) in the current
    language: the catalogue's translation of the whole sentence, else of the first template in
    ``devicelab.i18n.templates`` it matches, with the values it holds put back (each translated in turn);
    the sentence as it is when nothing matches."""
    if not text or language() == "en":
        return text
    whole = _(text)
    if whole != text:
        return whole
    from devicelab.i18n.templates import match, option_values

    found = match(text)
    if found is None:
        for separator in (
            "; ",
            ", ",
            " -> ",
        ):  # a list of reasons (or a column and what it became): each part
            parts = text.split(separator)
            if len(parts) > 1:
                translated = [translate(part) for part in parts]
                if translated != parts:
                    return _("; ").join(translated) if separator == "; " else separator.join(translated)
        return text
    template, values = found
    typed = option_values(template)  # an option's value is what the user types: as it is
    if "{v0}" in template:  # an error's values are the user's paths, names and numbers: never translated
        typed = set(values)
    return _(template).format(**{k: v if k in typed else translate(v) for k, v in values.items()})
