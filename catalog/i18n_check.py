"""Check the translation files in catalog/data/i18n/<lang>/ against the English source.

    python -m catalog.i18n_check            # every language
    python -m catalog.i18n_check kk         # one language

Each file mirrors one source file (services_1.json, clinics.json, information.json) and maps a
row's slug to its translated fields, shaped exactly like the English value (a string with the same
paragraphs, or a list with the same number of items). Exits non-zero and says what is wrong.
"""

import json
import re
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
I18N = DATA / "i18n"
TARGETS = ("ru", "kk", "ky", "uz", "tg", "zh_hans")
# Russian has every text already; only the equipment lists were English-only.
RU_FIELDS = {"services": ("equipment",), "clinics": ("equipment",)}

# Which fields of which source file a translation must cover.
FIELDS = {
    "services": ("description", "who_for", "course", "documents", "included", "faqs", "equipment"),
    "clinics": ("short_name", "address", "description", "equipment"),
    "information": ("body",),
}

CYRILLIC = re.compile(r"[\u0400-\u04FF]")
LATIN = re.compile(r"[A-Za-z]")
HAN = re.compile(r"[\u4e00-\u9fff]")
MARKERS = {  # letters only that language uses (a text of any length should show some)
    "kk": "әғқңөұүһі",
    "ky": "ңөү",
    "tg": "ӣӯҳҷқғ",
    "uz": "ʻ",
}


def english(row: dict, field: str):
    value = row.get(field)
    if isinstance(value, dict):
        return value.get("en")
    if field == "faqs":
        return [{"q": f["q"]["en"], "a": f["a"]["en"]} for f in value or []]
    return value  # plain lists (equipment)


def script_problem(lang: str, text: str) -> str | None:
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 12:
        return None
    if lang == "zh_hans":
        if not HAN.search(text):
            return "no Chinese characters"
        return None
    if lang == "ru":
        return "mostly Latin letters (Cyrillic expected)" if len(CYRILLIC.findall(text)) < len(LATIN.findall(text)) / 2 else None
    if lang == "uz":
        if len(CYRILLIC.findall(text)) > 0:
            return "Cyrillic letters in Uzbek (Latin script expected)"
        return None
    cyr = len(CYRILLIC.findall(text))
    lat = len(LATIN.findall(text))
    if cyr < lat:
        return "mostly Latin letters (Cyrillic expected)"
    if len(letters) > 120 and not any(c in MARKERS[lang] for c in text.lower()):
        return f"none of the letters {MARKERS[lang]} (is this Russian?)"
    return None


def compare(lang, where, en, tr, problems):
    if en in (None, "", []):
        return
    if tr is None:
        problems.append(f"{where}: missing")
        return
    if isinstance(en, str):
        if not isinstance(tr, str) or not tr.strip():
            problems.append(f"{where}: expected a non-empty string")
            return
        if en.count("\n\n") != tr.count("\n\n"):
            problems.append(f"{where}: {en.count(chr(10) * 2) + 1} paragraphs in English, {tr.count(chr(10) * 2) + 1} here")
        problem = script_problem(lang, tr)
        if problem:
            problems.append(f"{where}: {problem}")
    elif isinstance(en, list):
        if not isinstance(tr, list) or len(tr) != len(en):
            problems.append(f"{where}: expected a list of {len(en)} items")
            return
        for i, (e, t) in enumerate(zip(en, tr, strict=True)):
            if isinstance(e, dict):
                for k in e:
                    compare(lang, f"{where}[{i}].{k}", e[k], (t or {}).get(k) if isinstance(t, dict) else None, problems)
            else:
                compare(lang, f"{where}[{i}]", e, t, problems)


def sources():
    for path in sorted(DATA.glob("services_*.json")):
        yield path.name, "services", json.loads(path.read_text(encoding="utf-8"))
    for name in ("clinics", "information"):
        yield f"{name}.json", name, json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


def check(lang: str) -> list[str]:
    problems = []
    for filename, kind, rows in sources():
        fields = RU_FIELDS.get(kind, ()) if lang == "ru" else FIELDS[kind]
        if not fields:
            continue
        stem = filename.removesuffix(".json")
        paths = sorted((I18N / lang).glob(f"{stem}.json")) + sorted((I18N / lang).glob(f"{stem}.*.json"))
        if not paths:
            problems.append(f"{lang}/{filename}: file missing")
            continue
        data = {}
        try:
            for path in paths:  # a file may come in parts: services_2.json, services_2.b.json, ...
                data.update(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as exc:
            problems.append(f"{lang}/{filename}: not valid JSON ({exc})")
            continue
        for row in rows:
            tr = data.get(row["slug"])
            if tr is None:
                problems.append(f"{lang}/{filename}: {row['slug']} missing")
                continue
            for field in fields:
                compare(lang, f"{lang}/{filename}: {row['slug']}.{field}", english(row, field), tr.get(field), problems)
    return problems


def main(argv):
    langs = argv or TARGETS
    problems = [p for lang in langs for p in check(lang)]
    for p in problems:
        print(p)
    print(f"{len(problems)} problems in {', '.join(langs)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
