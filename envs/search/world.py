"""A synthetic world for the search environment: invented entities, facts, passages and
multi-hop questions, generated deterministically from a seed.

Nothing here exists, so a model cannot answer from memory: it has to search. The world
holds countries, cities, organisations, people and creative works, linked by functional
relations (every fact has exactly one answer)::

    person --born in--> city --in--> country        organisation --founder--> person
    person --works at--> organisation               organisation --based in--> city
    work --created by--> person                     country --capital--> city

Each entity gets one passage in the Search-R1 corpus format
(``{"id", "contents": '"Title"\\ntext'}``) that states its own facts and names the
entities it points to, so answering a k-hop question means reading k passages in a
chain. Questions come with the chain (``hops``: what to search for and which passage
answers it), which is what the environment's expert follows, and with its entities
(``entities``: the entity of each hop's passage, then the answer when it is an entity),
which entity-aware rewards such as E-GRPO's compare a rollout's text against.

Splits are decided by each question's *subject* entity (hash of its name, 80/10/10), so
no question, and no subject, is shared between ``train``, ``valid`` and ``test``.

Generate::

    python -m agentgym.envs.search.world --out DIR                 # the default world
    python -m agentgym.envs.search.world --out DIR --passages 100000 --max-questions 5000

The default world ships with agentgym (``envs/search/data/``); regenerating it
with the defaults reproduces those files byte for byte.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentgym.env import split_of_level


def _words(text: str) -> list[str]:
    return text.split()


# Sounds for invented names. Random combinations of these are (almost) never real words.
_ONSETS = _words("b br c d dr f g gr h j k kr l m n p pr qu r s sh st t th tr v w z")
_VOWELS = _words("a e i o u ae ai ea ei ia io ou y")
_CODAS = ["", "", "", "n", "r", "l", "s", "m", "th", "nd", "rk", "ll", "x", "v"]
_SURNAME_ENDS = ["", "", "", "wick", "ford", "ley", "ton", "ner", "by", "holt", "mere"]
_CITY_ENDS = ["mora", "haven", "dal", "grad", "ton", "vik", "burg", "port", "stead", "ora"]
_COUNTRY_ENDS = ["ia", "ar", "estan", "onia", "and", "ovia", "ur", "enne"]
_RIVER_ENDS = ["", "el", "in", "ane", "ith"]

_OCCUPATIONS = _words(
    "botanist cartographer architect violinist glassblower astronomer novelist engineer "
    "chemist historian painter sculptor linguist photographer economist surgeon "
    "clockmaker geologist composer beekeeper"
)
#: organisation kind -> what it does
_ORG_KINDS = {
    "Shipworks": "shipbuilding",
    "Press": "publishing",
    "Records": "music",
    "Institute": "research",
    "Foundry": "metalworking",
    "Observatory": "astronomy",
    "Pictures": "film",
    "Textiles": "weaving",
    "Laboratories": "chemistry",
    "Bank": "banking",
    "Collective": "design",
    "Railways": "transport",
}
#: work kind -> (verb used in passages and questions, noun of the creator)
_WORK_KINDS = {
    "novel": ("written by", "wrote", "author"),
    "film": ("directed by", "directed", "director"),
    "album": ("recorded by", "recorded", "artist"),
    "painting": ("by", "painted", "painter"),
    "play": ("written by", "wrote", "playwright"),
}
_TITLE_ADJECTIVES = _words(
    "Silent Glass Hollow Crimson Distant Paper Iron Quiet Burning Winter Hidden Golden "
    "Salt Broken Patient Sleeping Amber Velvet Northern Lantern"
)
_TITLE_NOUNS = _words(
    "Orchard Harbour Lantern Cartographer Tide Staircase Letters Garden Bell Atlas "
    "Meridian Archive Compass Lighthouse Ferry Mirror Almanac Chorus Ledger Threshold"
)
_TRAITS = [
    "{P} is known for a patient, careful way of working.",
    "{P} has given many public lectures.",
    "{P} spent several years travelling before settling down.",
    "{P} is remembered by colleagues for a sharp sense of humour.",
    "{P} has received two regional awards.",
    "",
]


@dataclass(frozen=True)
class WorldConfig:
    """How big a world to make. :meth:`with_passages` scales all counts together."""

    seed: int = 0
    num_countries: int = 6
    num_cities: int = 30
    num_orgs: int = 40
    num_people: int = 200
    num_works: int = 120
    #: questions asked about each person, organisation and work (cities and countries
    #: get one each)
    questions_per_subject: int = 2
    #: keep at most this many questions (a seeded sample); ``None`` keeps all
    max_questions: int | None = None

    @property
    def num_passages(self) -> int:
        return (
            self.num_countries + self.num_cities + self.num_orgs + self.num_people + self.num_works
        )

    @classmethod
    def with_passages(
        cls, passages: int, seed: int = 0, max_questions: int | None = None
    ) -> WorldConfig:
        """A world of about ``passages`` passages, in the default world's proportions."""
        base = cls()
        scale = passages / base.num_passages
        return cls(
            seed=seed,
            num_countries=max(2, round(base.num_countries * scale)),
            num_cities=max(3, round(base.num_cities * scale)),
            num_orgs=max(3, round(base.num_orgs * scale)),
            num_people=max(5, round(base.num_people * scale)),
            num_works=max(3, round(base.num_works * scale)),
            max_questions=max_questions,
        )


@dataclass
class _Entity:
    kind: str
    name: str
    doc_id: str = ""
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class World:
    """A generated world: corpus rows and QA rows (see :func:`generate_world`)."""

    config: WorldConfig
    passages: list[dict[str, str]]
    questions: list[dict[str, Any]]

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``corpus.jsonl`` and ``qa.jsonl`` into ``out_dir``; return their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        corpus_path, qa_path = out / "corpus.jsonl", out / "qa.jsonl"
        for path, rows in ((corpus_path, self.passages), (qa_path, self.questions)):
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False, separators=(", ", ": ")))
                    f.write("\n")
        return corpus_path, qa_path


class _Namer:
    """Invented, globally unique names."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _root(self, syllables: int) -> str:
        parts = [self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) for _ in range(syllables)]
        return ("".join(parts) + self.rng.choice(_CODAS)).capitalize()

    def unique(self, make: Callable[[], str]) -> str:
        for _ in range(10_000):
            name = make()
            if name.lower() not in self.used and 4 <= len(name) <= 40:
                self.used.add(name.lower())
                return name
        raise RuntimeError("ran out of invented names; the world is too large for the namer")

    def person(self) -> str:
        return self.unique(
            lambda: (
                f"{self._root(2)} {self._root(self.rng.choice((1, 2)))}"
                f"{self.rng.choice(_SURNAME_ENDS)}"
            )
        )

    def place(self, ends: list[str]) -> str:
        return self.unique(lambda: self._root(self.rng.choice((1, 2))) + self.rng.choice(ends))

    def org(self, kind: str) -> str:
        return self.unique(lambda: f"{self._root(2)} {kind}")

    def work(self, places: list[str]) -> str:
        def make() -> str:
            adj, noun = self.rng.choice(_TITLE_ADJECTIVES), self.rng.choice(_TITLE_NOUNS)
            form = self.rng.random()
            if form < 0.4:
                return f"The {adj} {noun}"
            if form < 0.7:
                return f"{noun} of {self.rng.choice(places)}"
            return f"{adj} {noun} of {self._root(2)}"

        return self.unique(make)


def generate_world(config: WorldConfig | None = None) -> World:
    """Generate the world described by ``config`` (default: the shipped world)."""
    config = config or WorldConfig()
    rng = random.Random(config.seed)
    namer = _Namer(rng)

    countries = [
        _Entity("country", namer.place(_COUNTRY_ENDS)) for _ in range(config.num_countries)
    ]
    cities = [_Entity("city", namer.place(_CITY_ENDS)) for _ in range(config.num_cities)]
    for i, city in enumerate(cities):
        # every country gets at least one city; the first city of a country is its capital
        country = countries[i] if i < len(countries) else rng.choice(countries)
        city.facts.update(country=country, river=namer.place(_RIVER_ENDS) + " river")
        city.facts["population"] = rng.randrange(8, 900) * 1000
        country.facts.setdefault("capital", city)
    orgs = []
    for _ in range(config.num_orgs):
        kind = rng.choice(sorted(_ORG_KINDS))
        orgs.append(_Entity("org", namer.org(kind), facts={"industry": _ORG_KINDS[kind]}))
    people = [_Entity("person", namer.person()) for _ in range(config.num_people)]
    for person in people:
        person.facts.update(
            city=rng.choice(cities),
            org=rng.choice(orgs),
            occupation=rng.choice(_OCCUPATIONS),
            year=rng.randrange(1900, 1995),
            pronoun=rng.choice(("He", "She")),
            trait=rng.choice(_TRAITS),
        )
    for org in orgs:
        org.facts.update(
            founder=rng.choice(people), city=rng.choice(cities), year=rng.randrange(1820, 1990)
        )
    city_names = [c.name for c in cities]
    works = []
    for _ in range(config.num_works):
        kind = rng.choice(sorted(_WORK_KINDS))
        works.append(
            _Entity(
                "work",
                namer.work(city_names),
                facts={
                    "kind": kind,
                    "creator": rng.choice(people),
                    "year": rng.randrange(1920, 2024),
                },
            )
        )

    entities = [*countries, *cities, *orgs, *people, *works]
    order = list(range(len(entities)))
    rng.shuffle(order)  # passage ids do not reveal the entity type
    for doc_id, index in enumerate(order):
        entities[index].doc_id = str(doc_id)
    passages = sorted(
        ({"id": e.doc_id, "contents": f'"{e.name}"\n{_passage_text(e)}'} for e in entities),
        key=lambda row: int(row["id"]),
    )

    name_of_doc = {e.doc_id: e.name for e in entities}
    names = set(name_of_doc.values())
    questions: list[dict[str, Any]] = []
    seen: set[str] = set()
    for entity in entities:
        makers = _QUESTION_MAKERS[entity.kind]
        count = 1 if entity.kind in ("city", "country") else config.questions_per_subject
        by_hops: dict[int, list] = {}
        for make in makers:
            by_hops.setdefault(make.hops, []).append(make)
        hop_counts = sorted(by_hops)
        rng.shuffle(hop_counts)
        for hops in hop_counts[:count]:
            question = rng.choice(by_hops[hops])(entity)
            if question["question"] in seen:
                continue
            seen.add(question["question"])
            question["entities"] = _gold_entities(question, name_of_doc, names)
            question["split"] = split_of_level(f"search-world|{entity.name}")
            questions.append(question)
    if config.max_questions is not None and len(questions) > config.max_questions:
        keep = sorted(rng.sample(range(len(questions)), config.max_questions))
        questions = [questions[i] for i in keep]
    rng.shuffle(questions)  # so every prefix of a split mixes question types
    counters: dict[str, int] = {}
    rows = []
    for q in questions:
        split = q.pop("split")
        index = counters[split] = counters.get(split, -1) + 1
        rows.append({"id": f"{split}-{index}", "split": split, **q})
    return World(config, passages, rows)


# ----------------------------------------------------------------------------- passages


def _a(word: str) -> str:
    """``word`` with its indefinite article: "an economist", "a novel"."""
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _passage_text(e: _Entity) -> str:
    f = e.facts
    if e.kind == "country":
        return f"{e.name} is a country. Its capital is {f['capital'].name}."
    if e.kind == "city":
        return (
            f"{e.name} is a city in {f['country'].name}. It lies on the {f['river']} and has "
            f"about {f['population']:,} inhabitants."
        )
    if e.kind == "org":
        return (
            f"{e.name} is {_a(f['industry'])} organisation founded in {f['year']}. Its founder "
            f"was {f['founder'].name}, and its headquarters are in {f['city'].name}."
        )
    if e.kind == "person":
        trait = f["trait"].format(P=f["pronoun"])
        return (
            f"{e.name} is {_a(f['occupation'])} born in {f['year']} in {f['city'].name}. "
            f"{f['pronoun']} works at {f['org'].name}. {trait}"
        ).strip()
    verb = _WORK_KINDS[f["kind"]][0]
    return f"{e.name} is {_a(f['kind'])} {verb} {f['creator'].name}, first released in {f['year']}."


# ----------------------------------------------------------------------------- questions


def _hop(entity: _Entity, need: str) -> dict[str, str]:
    """One search step: look up ``entity`` (its passage answers ``need``).

    A city is searched as "X city": many people's passages name their birth city, and the
    word "city" is what sets the city's own passage apart from theirs.
    """
    query = f"{entity.name} city" if entity.kind == "city" else entity.name
    return {"query": query, "doc_id": entity.doc_id, "need": need}


def _gold_entities(
    question: dict[str, Any], name_of_doc: dict[str, str], names: set[str]
) -> list[str]:
    """The question's entity chain: the entity of each hop's passage, then the answer when
    it is an entity of the world (a person, place, organisation or work; not a year)."""
    chain = [name_of_doc[hop["doc_id"]] for hop in question["hops"]]
    answer = question["golden_answers"][0]
    if answer in names and answer not in chain:
        chain.append(answer)
    return list(dict.fromkeys(chain))


def _question(text: str, answer: object, hops: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "question": text,
        "golden_answers": [str(answer)],
        "data_source": "agentgym_world",
        "task_type": f"{len(hops)}-hop",
        "hops": hops,
    }


def _maker(hops: int):
    def deco(fn):
        fn.hops = hops
        return fn

    return deco


# person ---------------------------------------------------------------------


@_maker(1)
def _person_city(p: _Entity) -> dict[str, Any]:
    city = p.facts["city"]
    return _question(
        f"In which city was {p.name} born?", city.name, [_hop(p, f"where {p.name} was born")]
    )


@_maker(1)
def _person_year(p: _Entity) -> dict[str, Any]:
    return _question(
        f"In what year was {p.name} born?", p.facts["year"], [_hop(p, f"when {p.name} was born")]
    )


@_maker(1)
def _person_job(p: _Entity) -> dict[str, Any]:
    return _question(
        f"What is the occupation of {p.name}?",
        p.facts["occupation"],
        [_hop(p, f"what {p.name} does for a living")],
    )


@_maker(2)
def _person_country(p: _Entity) -> dict[str, Any]:
    city = p.facts["city"]
    return _question(
        f"In which country was {p.name} born?",
        city.facts["country"].name,
        [_hop(p, f"where {p.name} was born"), _hop(city, f"which country {city.name} is in")],
    )


@_maker(2)
def _person_org_founder(p: _Entity) -> dict[str, Any]:
    org = p.facts["org"]
    return _question(
        f"Who founded the organisation that {p.name} works at?",
        org.facts["founder"].name,
        [_hop(p, f"where {p.name} works"), _hop(org, f"who founded {org.name}")],
    )


@_maker(3)
def _person_org_country(p: _Entity) -> dict[str, Any]:
    org = p.facts["org"]
    city = org.facts["city"]
    return _question(
        f"In which country are the headquarters of the organisation that {p.name} works at?",
        city.facts["country"].name,
        [
            _hop(p, f"where {p.name} works"),
            _hop(org, f"where {org.name} has its headquarters"),
            _hop(city, f"which country {city.name} is in"),
        ],
    )


@_maker(3)
def _person_org_founder_city(p: _Entity) -> dict[str, Any]:
    org = p.facts["org"]
    founder = org.facts["founder"]
    return _question(
        f"In which city was the founder of the organisation that {p.name} works at born?",
        founder.facts["city"].name,
        [
            _hop(p, f"where {p.name} works"),
            _hop(org, f"who founded {org.name}"),
            _hop(founder, f"where {founder.name} was born"),
        ],
    )


# organisation -----------------------------------------------------------------


@_maker(1)
def _org_founder(o: _Entity) -> dict[str, Any]:
    return _question(
        f"Who founded {o.name}?", o.facts["founder"].name, [_hop(o, f"who founded {o.name}")]
    )


@_maker(1)
def _org_year(o: _Entity) -> dict[str, Any]:
    return _question(
        f"In what year was {o.name} founded?",
        o.facts["year"],
        [_hop(o, f"when {o.name} was founded")],
    )


@_maker(1)
def _org_city(o: _Entity) -> dict[str, Any]:
    return _question(
        f"In which city are the headquarters of {o.name}?",
        o.facts["city"].name,
        [_hop(o, f"where {o.name} has its headquarters")],
    )


@_maker(2)
def _org_founder_city(o: _Entity) -> dict[str, Any]:
    founder = o.facts["founder"]
    return _question(
        f"In which city was the founder of {o.name} born?",
        founder.facts["city"].name,
        [_hop(o, f"who founded {o.name}"), _hop(founder, f"where {founder.name} was born")],
    )


@_maker(2)
def _org_country(o: _Entity) -> dict[str, Any]:
    city = o.facts["city"]
    return _question(
        f"In which country are the headquarters of {o.name}?",
        city.facts["country"].name,
        [
            _hop(o, f"where {o.name} has its headquarters"),
            _hop(city, f"which country {city.name} is in"),
        ],
    )


@_maker(3)
def _org_founder_country(o: _Entity) -> dict[str, Any]:
    founder = o.facts["founder"]
    city = founder.facts["city"]
    return _question(
        f"In which country was the founder of {o.name} born?",
        city.facts["country"].name,
        [
            _hop(o, f"who founded {o.name}"),
            _hop(founder, f"where {founder.name} was born"),
            _hop(city, f"which country {city.name} is in"),
        ],
    )


# work ---------------------------------------------------------------------------


def _work_phrase(w: _Entity) -> tuple[str, str, str]:
    """(``the novel X``, past verb ``wrote``, creator noun ``author``)."""
    _, past, noun = _WORK_KINDS[w.facts["kind"]]
    return f"the {w.facts['kind']} {w.name}", past, noun


@_maker(1)
def _work_creator(w: _Entity) -> dict[str, Any]:
    phrase, past, noun = _work_phrase(w)
    return _question(
        f"Who {past} {phrase}?", w.facts["creator"].name, [_hop(w, f"the {noun} of {w.name}")]
    )


@_maker(1)
def _work_year(w: _Entity) -> dict[str, Any]:
    phrase, _, _ = _work_phrase(w)
    return _question(
        f"In what year was {phrase} first released?",
        w.facts["year"],
        [_hop(w, f"when {w.name} was first released")],
    )


@_maker(2)
def _work_creator_city(w: _Entity) -> dict[str, Any]:
    phrase, _, noun = _work_phrase(w)
    creator = w.facts["creator"]
    return _question(
        f"In which city was the {noun} of {phrase} born?",
        creator.facts["city"].name,
        [_hop(w, f"the {noun} of {w.name}"), _hop(creator, f"where {creator.name} was born")],
    )


@_maker(2)
def _work_creator_org(w: _Entity) -> dict[str, Any]:
    phrase, _, noun = _work_phrase(w)
    creator = w.facts["creator"]
    return _question(
        f"At which organisation does the {noun} of {phrase} work?",
        creator.facts["org"].name,
        [_hop(w, f"the {noun} of {w.name}"), _hop(creator, f"where {creator.name} works")],
    )


@_maker(3)
def _work_creator_country(w: _Entity) -> dict[str, Any]:
    phrase, _, noun = _work_phrase(w)
    creator = w.facts["creator"]
    city = creator.facts["city"]
    return _question(
        f"In which country was the {noun} of {phrase} born?",
        city.facts["country"].name,
        [
            _hop(w, f"the {noun} of {w.name}"),
            _hop(creator, f"where {creator.name} was born"),
            _hop(city, f"which country {city.name} is in"),
        ],
    )


@_maker(3)
def _work_creator_org_founder(w: _Entity) -> dict[str, Any]:
    phrase, _, noun = _work_phrase(w)
    creator = w.facts["creator"]
    org = creator.facts["org"]
    return _question(
        f"Who founded the organisation where the {noun} of {phrase} works?",
        org.facts["founder"].name,
        [
            _hop(w, f"the {noun} of {w.name}"),
            _hop(creator, f"where {creator.name} works"),
            _hop(org, f"who founded {org.name}"),
        ],
    )


# places ---------------------------------------------------------------------------


@_maker(1)
def _city_country(c: _Entity) -> dict[str, Any]:
    return _question(
        f"In which country is the city of {c.name}?",
        c.facts["country"].name,
        [_hop(c, f"which country {c.name} is in")],
    )


@_maker(1)
def _country_capital(k: _Entity) -> dict[str, Any]:
    return _question(
        f"What is the capital of {k.name}?",
        k.facts["capital"].name,
        [_hop(k, f"the capital of {k.name}")],
    )


_QUESTION_MAKERS = {
    "person": [
        _person_city,
        _person_year,
        _person_job,
        _person_country,
        _person_org_founder,
        _person_org_country,
        _person_org_founder_city,
    ],
    "org": [
        _org_founder,
        _org_year,
        _org_city,
        _org_founder_city,
        _org_country,
        _org_founder_country,
    ],
    "work": [
        _work_creator,
        _work_year,
        _work_creator_city,
        _work_creator_org,
        _work_creator_country,
        _work_creator_org_founder,
    ],
    "city": [_city_country],
    "country": [_country_capital],
}


# ----------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> None:
    """``python -m agentgym.envs.search.world --out DIR [--passages N] [--seed S]``."""
    parser = argparse.ArgumentParser(description="Generate a synthetic search world.")
    parser.add_argument("--out", required=True, help="folder for corpus.jsonl and qa.jsonl")
    parser.add_argument("--passages", type=int, default=None, help="about this many passages")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-questions", type=int, default=None)
    args = parser.parse_args(argv)
    if args.passages is None:
        config = WorldConfig(seed=args.seed, max_questions=args.max_questions)
    else:
        config = WorldConfig.with_passages(args.passages, args.seed, args.max_questions)
    world = generate_world(config)
    corpus_path, qa_path = world.write(args.out)
    splits: dict[str, int] = {}
    for q in world.questions:
        splits[q["split"]] = splits.get(q["split"], 0) + 1
    print(f"{len(world.passages)} passages -> {corpus_path}")
    print(f"{len(world.questions)} questions {splits} -> {qa_path}")
    print(json.dumps(asdict(config)))


if __name__ == "__main__":
    main()
