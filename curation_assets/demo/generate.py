"""Build the small, deterministic demo corpus under `<root>/raw/` and describe it in a manifest.

Each shard is mostly clean rows with known defects planted at fixed positions. The manifest
records, per shard, how many rows a correct reader should keep or quarantine (and why), and
which sample keys carry which defect, so tests can check readers and filters row by row.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from curation_assets.quarantine import Reason

from . import images
from .images import Scene, SceneSampler
from .writers import (
    CaptionSample,
    DocImage,
    InterleavedDoc,
    TextDoc,
    sample_key,
    truncate_tar_inside_member,
    write_dj_jsonl,
    write_dj_parquet,
    write_img2dataset_parquet,
    write_llava_json,
    write_mmc4_jsonl,
    write_obelics_parquet,
    write_text_jsonl,
    write_text_parquet,
    write_webdataset_tar,
)

MANIFEST_NAME = "demo_manifest.json"
# The proxy eval's demo set (smoke.yaml names it `data:evals/demo_eval.tar`): pictures of the same
# kind as the training shards, none of them in any shard, each with two captions as COCO has five.
EVAL_SET_FILE = "evals/demo_eval.tar"
EVAL_IMAGES, EVAL_CAPTIONS_PER_IMAGE = 24, 2

# Quarantine reasons are the readers' own codes; these are the ones the demo plants on purpose.
UNDECODABLE_IMAGE = Reason.undecodable_image.value
TRUNCATED_IMAGE = Reason.truncated_image.value
DECOMPRESSION_BOMB = Reason.decompression_bomb.value
EMPTY_FILE = Reason.empty_file.value
MISSING_FILE = Reason.missing_file.value
PATH_ESCAPE = Reason.path_escape.value
MALFORMED_JSON = Reason.malformed_json.value
MISSING_FIELD = Reason.missing_field.value
EMPTY_TEXT = Reason.empty_text.value
NON_UTF8_TEXT = Reason.non_utf8_text.value
TRUNCATED_TAR = Reason.truncated_tar.value
MISSING_IMAGE = Reason.missing_image.value
QUARANTINE_REASONS = (
    UNDECODABLE_IMAGE, TRUNCATED_IMAGE, DECOMPRESSION_BOMB, EMPTY_FILE, MISSING_FILE, PATH_ESCAPE,
    MALFORMED_JSON, MISSING_FIELD, EMPTY_TEXT, NON_UTF8_TEXT, TRUNCATED_TAR, MISSING_IMAGE,
)  # fmt: skip

# Defects that leave a row readable; later filters and dedup are expected to catch them.
CAPTION_DEFECTS = (
    "mismatched_caption",
    "exact_duplicate",
    "near_duplicate",
    "tiny_image",
    "extreme_aspect",
    "watermark",
)
# Interleaved documents: image rules drop an image (tiny_image), image dedup drops copies (across
# documents, exact or pHash, and of caption pool images), document rules drop the rest.
INTERLEAVED_DEFECTS = (
    "unrelated_images",  # no image matches any sentence: image_text_similarity_filter drops them all
    "all_images_broken",  # every image a 1x1 placeholder: image_shape_filter, then images_left_filter
    "tiny_image",  # one of three images is 8x8: only that image goes
    "cross_document_duplicate_image",  # an earlier document's image, same bytes
    "near_duplicate_image",  # an earlier document's image re-encoded (pHash neighbour)
    "caption_duplicate_image",  # a caption pool image, same bytes (duplicate across kinds)
    "near_duplicate_document",  # an earlier document re-hosted with a footer: MinHash
    "non_english",  # German text: language_id_score_filter
    "repetitive_spam",  # one sentence over and over: word_repetition_filter
)
# Text documents: one defect per Data-Juicer text filter (exact and near duplicates as before).
TEXT_DEFECTS = (
    "non_english",  # German or French: language_id_score_filter
    "repetitive_spam",  # character_repetition_filter and word_repetition_filter
    "symbol_noise",  # alphanumeric_filter and special_characters_filter
    "keyword_list",  # SEO keywords without a sentence: stopwords_filter
    "too_short",  # text_length_filter and words_num_filter
)
KEPT_DEFECTS = tuple(dict.fromkeys(CAPTION_DEFECTS + INTERLEAVED_DEFECTS + TEXT_DEFECTS))

NON_UTF8_CAPTION = b"a caf\xe9 sign in r\xf6d letters \xff\xfe"  # Latin-1 bytes, invalid as UTF-8


# --- bookkeeping ------------------------------------------------------------------------------


@dataclass
class ShardLedger:
    """What a shard should look like to a correct reader: one entry per source row."""

    keys: list[str] = field(default_factory=list)
    outcomes: list[str | None] = field(default_factory=list)  # a reason/defect name, or None if clean

    def add(self, key: str, outcome: str | None = None) -> None:
        self.keys.append(key)
        self.outcomes.append(outcome)

    def summary(self) -> dict:
        quarantine = Counter(o for o in self.outcomes if o in QUARANTINE_REASONS)
        defects: dict[str, list[str]] = {}
        for key, outcome in zip(self.keys, self.outcomes):
            if outcome is not None:
                defects.setdefault(outcome, []).append(key)
        return {
            "rows": len(self.keys),
            "valid": len(self.keys) - sum(quarantine.values()),
            "quarantine": dict(sorted(quarantine.items())),
            "defects": dict(sorted(defects.items())),
        }


@dataclass
class DemoContext:
    """Shared state across shards: one RNG, one scene pool, and the clean samples so far
    (sources for exact and near duplicates, within and across shards)."""

    seed: int
    rng: random.Random = field(init=False)
    scenes: SceneSampler = field(init=False)
    clean: list[tuple[Scene, CaptionSample]] = field(default_factory=list)
    shard_start: int = 0  # index into `clean` where the current shard's samples begin
    near_duplicate_queue: list[tuple[bytes, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.scenes = SceneSampler(self.seed)

    def begin_shard(self) -> None:
        self.shard_start = len(self.clean)

    def pick_clean(self, earlier_shards: bool) -> tuple[Scene, CaptionSample]:
        pool = self.clean[: self.shard_start] if earlier_shards else self.clean[self.shard_start :]
        return self.rng.choice(pool or self.clean)


# --- caption rows -----------------------------------------------------------------------------


def _plain(ctx: DemoContext, encode: Callable = images.jpeg_bytes) -> tuple[Scene, CaptionSample]:
    scene = ctx.scenes.next()
    return scene, CaptionSample(encode(images.render(scene)), scene.caption())


def _fresh(ctx: DemoContext, image: bytes | None = None, caption: str | bytes | None = None, **extra) -> CaptionSample:
    """A new picture; image/caption override what it would truthfully be."""
    scene = ctx.scenes.next()
    return CaptionSample(
        image if image is not None else images.scene_jpeg(scene),
        caption if caption is not None else scene.caption(),
        dict(extra),
    )


def _clean(ctx: DemoContext, encode: Callable = images.jpeg_bytes) -> tuple[CaptionSample, None]:
    scene, sample = _plain(ctx, encode)
    ctx.clean.append((scene, sample))
    return sample, None


def _exact_duplicate(ctx: DemoContext, earlier_shards: bool) -> tuple[CaptionSample, str]:
    _, source = ctx.pick_clean(earlier_shards)
    return CaptionSample(source.image, source.caption), "exact_duplicate"


def _near_duplicate(ctx: DemoContext) -> tuple[CaptionSample, str]:
    # Variants come three at a time from one source, so consecutive near_duplicate rows share it.
    if not ctx.near_duplicate_queue:
        scene, _ = ctx.pick_clean(earlier_shards=False)
        ctx.near_duplicate_queue = [(v, scene.caption()) for v in images.near_duplicate_variants(scene)]
    image, caption = ctx.near_duplicate_queue.pop(0)
    return CaptionSample(image, caption), "near_duplicate"


def _mismatched(ctx: DemoContext) -> tuple[CaptionSample, str]:
    other = ctx.scenes.next()  # a scene never drawn, so its caption is guaranteed wrong here
    return _fresh(ctx, caption=other.caption()), "mismatched_caption"


def _resized(ctx: DemoContext, reshape: Callable[[Scene], Scene], defect: str) -> tuple[CaptionSample, str]:
    scene = reshape(ctx.scenes.next())
    return CaptionSample(images.scene_jpeg(scene), scene.caption()), defect


def _watermark(ctx: DemoContext) -> tuple[CaptionSample, str]:
    scene = ctx.scenes.next()
    return CaptionSample(images.watermarked(scene), scene.caption()), "watermark"


def _truncated(ctx: DemoContext) -> tuple[CaptionSample, str]:
    scene = ctx.scenes.next()
    return CaptionSample(images.truncated(images.scene_jpeg(scene)), scene.caption()), TRUNCATED_IMAGE


# Every row kind the caption shards use: tag -> (sample, reason or defect or None).
CAPTION_ROWS: dict[str, Callable[[DemoContext], tuple[CaptionSample, str | None]]] = {
    "ok": _clean,
    "ok_png": lambda ctx: _clean(ctx, images.png_bytes),
    "ok_webp": lambda ctx: _clean(ctx, images.webp_bytes),
    "mismatched_caption": _mismatched,
    "exact_duplicate": lambda ctx: _exact_duplicate(ctx, earlier_shards=False),
    "cross_shard_duplicate": lambda ctx: _exact_duplicate(ctx, earlier_shards=True),
    "near_duplicate": _near_duplicate,
    "tiny_image": lambda ctx: _resized(ctx, images.tiny_scene, "tiny_image"),
    "extreme_aspect": lambda ctx: _resized(ctx, images.extreme_aspect_scene, "extreme_aspect"),
    "watermark": _watermark,
    "empty_caption": lambda ctx: (_fresh(ctx, caption=""), EMPTY_TEXT),
    "whitespace_caption": lambda ctx: (_fresh(ctx, caption="  \t \n "), EMPTY_TEXT),
    "non_utf8_caption": lambda ctx: (_fresh(ctx, caption=NON_UTF8_CAPTION), NON_UTF8_TEXT),
    "truncated_image": _truncated,
    "random_bytes": lambda ctx: (_fresh(ctx, image=images.random_bytes(ctx.rng)), UNDECODABLE_IMAGE),
    "zero_bytes": lambda ctx: (_fresh(ctx, image=b""), EMPTY_FILE),
    "bomb": lambda ctx: (
        CaptionSample(images.decompression_bomb_png(), "a completely black square image"),
        DECOMPRESSION_BOMB,
    ),
    "no_image": lambda ctx: (CaptionSample(None, ctx.scenes.next().caption()), MISSING_IMAGE),
    "bad_sidecar": lambda ctx: (_fresh(ctx, raw_json=b'{"key": "broken", "caption": '), MALFORMED_JSON),
    "malformed_line": lambda ctx: (
        _fresh(ctx, raw_line=b'{"text": "<__dj__image> a green square <|__dj__eoc|>", "images": ['),
        MALFORMED_JSON,
    ),
    "path_dotdot": lambda ctx: (_fresh(ctx, image_ref="../../../outside.jpg"), PATH_ESCAPE),
    "path_absolute": lambda ctx: (_fresh(ctx, image_ref="/etc/passwd"), PATH_ESCAPE),
    "symlink_out": lambda ctx: (_fresh(ctx, symlink_to="/etc/hostname"), PATH_ESCAPE),
    "missing_file": lambda ctx: (_fresh(ctx, omit_image_file=True), MISSING_FILE),
    "missing_gpt_turn": lambda ctx: (_fresh(ctx, drop_gpt_turn=True), MISSING_FIELD),
}


def _caption_rows(ctx: DemoContext, total: int, planted: dict[int, str], key: Callable[[int], str]):
    """`total` rows, clean except the planted tags; returns the samples and their ledger."""
    ctx.begin_shard()
    ledger, samples = ShardLedger(), []
    for index in range(total):
        sample, outcome = CAPTION_ROWS[planted.get(index, "ok")](ctx)
        samples.append(sample)
        ledger.add(key(index), outcome)
    return samples, ledger


def _row_key(index: int) -> str:
    return f"{index:06d}"


# --- caption shards ---------------------------------------------------------------------------


def _wds_tar(raw: Path, name: str, ctx: DemoContext, total: int, planted: dict[int, str]) -> dict:
    samples, ledger = _caption_rows(ctx, total, planted, sample_key)
    write_webdataset_tar(raw / name, samples)
    return ledger.summary()


def _truncated_wds_tar(raw: Path, name: str, ctx: DemoContext, total: int, planted: dict[int, str]) -> dict:
    """A tar cut inside the last sample's image data, like an interrupted copy."""
    samples, ledger = _caption_rows(ctx, total - 1, planted, sample_key)
    scene = ctx.scenes.next(width=256, height=256)  # large, so the cut lands well inside the data
    samples.append(CaptionSample(images.scene_jpeg(scene), scene.caption()))
    ledger.add(sample_key(total - 1), TRUNCATED_TAR)
    write_webdataset_tar(raw / name, samples)
    truncate_tar_inside_member(raw / name, f"{sample_key(total - 1)}.jpg")
    return ledger.summary()


def _row_shard(writer: Callable, raw: Path, name: str, ctx: DemoContext, total: int, planted: dict[int, str]) -> dict:
    samples, ledger = _caption_rows(ctx, total, planted, _row_key)
    writer(raw / name, samples)
    return ledger.summary()


# --- text -------------------------------------------------------------------------------------

# Small grammars per topic: subjects x predicates x settings gives hundreds of sentences each, so
# ordinary documents rarely share whole sentences and only planted ones look like near-duplicates.
TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # Subjects within a topic are all the same kind of thing, so any predicate fits any subject.
    "gardening": (
        (
            "Tomato seedlings",
            "Most culinary herbs",
            "Young fruit trees",
            "Climbing beans",
            "Leafy greens like chard",
            "Potted citrus plants",
            "Spring bulbs",
            "Strawberry plants",
        ),
        (
            "do best with steady, deep watering",
            "benefit from a sheltered and sunny spot",
            "should be checked for aphids every few days",
            "can be started indoors well before the last frost",
            "need loose soil that drains freely",
            "respond well to a light feed of seaweed fertiliser",
            "are easier to look after when they are labelled clearly",
            "tend to struggle when the nights turn cold",
        ),
        (
            "during the first weeks of spring",
            "in most temperate gardens",
            "according to experienced growers",
            "especially in heavy clay",
            "if the summer is dry",
            "without much extra effort",
        ),
    ),
    "astronomy": (
        (
            "The outer planets",
            "Meteor showers",
            "Globular clusters",
            "The brighter comets",
            "Double stars",
            "The craters of the moon",
            "Distant galaxies",
            "The rings of Saturn",
        ),
        (
            "reveal surprising detail on a steady night",
            "are best seen well away from city lights",
            "reward patience more than expensive equipment",
            "look brighter once your eyes have adapted to the dark",
            "are easier to find with a printed star chart",
            "often disappoint when the air is turbulent",
            "make a good first target for beginners",
            "can be enjoyed with ordinary binoculars",
        ),
        (
            "after midnight in late summer",
            "from a rural back garden",
            "when the moon is below the horizon",
            "with a little practice",
            "on clear winter evenings",
            "as most club members will tell you",
        ),
    ),
    "cooking": (
        (
            "Slow-cooked stews",
            "Homemade soups",
            "Roasted root vegetables",
            "Simple tomato sauces",
            "Lentil curries",
            "Baked pasta dishes",
            "Vegetable frittatas",
            "Bean salads",
        ),
        (
            "taste better with a pinch of salt added early",
            "can be frozen in portions for busy weeknights",
            "are forgiving of small changes to the recipe",
            "improve when they rest before serving",
            "rely on good olive oil more than on spices",
            "are cheaper to make at home than most people expect",
            "need only a few good ingredients",
            "are a good way to use up leftover vegetables",
        ),
        (
            "in a small home kitchen",
            "according to many professional cooks",
            "on a cold autumn evening",
            "with very little washing up",
            "if you plan a little ahead",
            "for a family of four",
        ),
    ),
    "cycling": (
        (
            "Commuter bikes",
            "Gravel tyres",
            "Disc brakes",
            "Chain lubricants",
            "Touring panniers",
            "Steel frames",
            "Full-length mudguards",
            "Rechargeable lights",
        ),
        (
            "make the daily ride noticeably smoother",
            "should be inspected before every long trip",
            "last longer when they are cleaned after wet rides",
            "are a sensible choice for mixed terrain",
            "cost less to maintain than many people assume",
            "are worth fitting properly at a local shop",
            "feel like a luxury until you ride without them",
            "are easy to service with a few basic tools",
        ),
        (
            "through the winter months",
            "on busy city streets",
            "over several thousand kilometres",
            "for riders of every level",
            "on quiet country lanes",
            "when the weather turns",
        ),
    ),
    "local history": (
        (
            "The old stone bridges",
            "The market buildings",
            "The parish records",
            "The early photographs of the harbour",
            "The mill cottages",
            "The railway buildings",
            "The letters kept by local families",
            "The church bells",
        ),
        (
            "tell a different story from the official guidebook",
            "were restored with help from volunteers",
            "show how quickly the town grew after the railway arrived",
            "are now displayed in the small museum",
            "reveal how ordinary people lived and worked",
            "survived two floods and a serious fire",
            "were nearly lost in the nineteen sixties",
            "attract visitors from across the region",
        ),
        (
            "according to the county records",
            "as local historians have shown",
            "to the surprise of many residents",
            "despite years of neglect",
            "as the town archive makes clear",
            "in the view of most visitors",
        ),
    ),
    "home repair": (
        (
            "Dripping taps",
            "Sticking wooden doors",
            "Cracks in plaster walls",
            "Draughty window frames",
            "Squeaky floorboards",
            "Blocked sink drains",
            "Loose stair rails",
            "Peeling exterior paint jobs",
        ),
        (
            "can usually be fixed with basic hand tools",
            "are worth dealing with before they get worse",
            "often come down to a single worn part",
            "deserve a careful look before any money is spent",
            "are a common complaint in older houses",
            "take less time to sort out than most people fear",
            "are best left to a professional if wiring is involved",
            "become obvious once the heating is on",
        ),
        (
            "in a typical weekend",
            "with a little patience",
            "according to most builders",
            "in houses built before the war",
            "when the seasons change",
            "on a modest budget",
        ),
    ),
    "birdwatching": (
        (
            "Garden robins",
            "Migrating swallows",
            "Song thrushes",
            "Blue tits",
            "Wading birds",
            "Woodpeckers",
            "Goldfinches",
            "Barn owls",
        ),
        (
            "are easiest to spot at first light",
            "return to the same places year after year",
            "become easier to identify once you learn their calls",
            "visit well-stocked feeders surprisingly often",
            "are best watched quietly from a hide",
            "nest earlier when the spring is mild",
            "are counted each year by volunteer surveys",
            "can be told apart by the way they fly",
        ),
        (
            "throughout the spring migration",
            "in an ordinary suburban garden",
            "along the river path",
            "with a cheap pair of binoculars",
            "during hard winters",
            "as many keen observers note",
        ),
    ),
    "photography": (
        (
            "Portrait photographers",
            "Street photographers",
            "Beginners with a new camera",
            "Wedding photographers",
            "Landscape photographers",
            "Weekend hobbyists",
            "Students on evening courses",
            "Travel photographers",
        ),
        (
            "learn the most from shooting every day",
            "benefit from talking to their subjects first",
            "often carry less gear than you would expect",
            "tend to prefer soft, natural window light",
            "rely on a sturdy tripod for evening shots",
            "learn to anticipate a moment before it happens",
            "should back up their files after every session",
            "get better results from simple compositions",
        ),
        (
            "in almost any season",
            "whatever camera they use",
            "late in the afternoon",
            "when travelling light",
            "as many working professionals agree",
            "with a little planning",
        ),
    ),
}


# The same kind of gardening prose in other languages, for the language filter to catch.
FOREIGN_TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "de": (
        ("Die Tomatenpflanzen", "Die meisten Küchenkräuter", "Junge Obstbäume", "Die Erdbeeren", "Die Kletterbohnen"),
        (
            "brauchen im Sommer regelmäßig viel Wasser",
            "wachsen am besten an einem geschützten und sonnigen Platz",
            "sollten alle paar Tage auf Blattläuse geprüft werden",
            "vertragen leider keinen späten Frost",
            "mögen lockeren Boden, der gut abtrocknet",
            "freuen sich über eine Gabe reifen Kompost",
        ),
        (
            "in den ersten Wochen des Frühlings",
            "in den meisten Gärten",
            "nach der Erfahrung vieler Gärtner",
            "besonders auf schwerem Lehmboden",
            "wenn der Sommer trocken ist",
        ),
    ),
    "fr": (
        ("Les plants de tomates", "La plupart des herbes aromatiques", "Les jeunes arbres fruitiers", "Les fraisiers"),
        (
            "ont besoin d'un arrosage profond et régulier",
            "poussent mieux dans un endroit abrité et ensoleillé",
            "doivent être surveillés contre les pucerons tous les deux jours",
            "craignent beaucoup les gelées tardives",
            "aiment une terre légère qui se draine bien",
            "apprécient un peu de compost bien mûr",
        ),
        (
            "au début du printemps",
            "dans la plupart des jardins",
            "selon les jardiniers expérimentés",
            "surtout dans les sols argileux",
            "quand l'été est sec",
        ),
    ),
}
SPAM_SENTENCE = "Buy cheap replica watches online now, best prices guaranteed!"
# Spam pages shout: the run of exclamation marks is what character repetition catches (a repeated
# sentence alone keeps Data-Juicer's top-sqrt(n) 10-gram share near 0.1).
SHOUTED_SPAM = " ".join([SPAM_SENTENCE + "!" * 100] * 30)
KEYWORDS = (
    "cheap flights london paris hotels deals discount travel insurance car rental airport parking cruise "
    "holidays packages booking coupon voucher promo code lowest price bargain offers tickets visa passport "
    "resorts spa beach villa apartments hostel luxury budget weekend breaks city tours"
)


def _sentence(rng: random.Random, topic: str, grammar: dict | None = None) -> str:
    subjects, predicates, settings = (grammar or TOPICS)[topic]
    return f"{rng.choice(subjects)} {rng.choice(predicates)} {rng.choice(settings)}."


def _foreign_article(rng: random.Random, language: str) -> str:
    paragraphs = [
        " ".join(_sentence(rng, language, FOREIGN_TOPICS) for _ in range(rng.randint(3, 5))) for _ in range(3)
    ]
    return "\n\n".join(paragraphs)


def _symbol_noise(rng: random.Random) -> str:
    symbols = "#$%&*+/<=>@[]^_{|}~"
    lines = [" ".join("".join(rng.choice(symbols) for _ in range(4)) + str(rng.randint(0, 99)) for _ in range(12))]
    return "\n".join(lines * 4)


def _article(rng: random.Random, topic: str) -> str:
    paragraphs = [" ".join(_sentence(rng, topic) for _ in range(rng.randint(3, 5))) for _ in range(rng.randint(3, 4))]
    return "\n\n".join(paragraphs)


def _near_copy(rng: random.Random, text: str, topic: str) -> str:
    """The same article with the end of its first sentence reworded and a sharing footer, as a
    re-hosted page would be. (Swapping a whole sentence of a short article leaves a character
    5-gram Jaccard near 0.8, where MinHash-LSH at threshold 0.8 finds the pair only half the time.)"""
    paragraphs = text.split("\n\n")
    first, rest = paragraphs[0].split(". ", 1)  # every paragraph has at least three sentences
    _, _, settings = TOPICS[topic]
    paragraphs[0] = f"{' '.join(first.split()[:-3])} {rng.choice(settings)}. {rest}"
    return "\n\n".join(paragraphs + [DOCUMENT_FOOTER])


@dataclass
class TextCorpus:
    """Articles written so far, so later shards can copy or nearly copy them."""

    articles: list[tuple[str, str]] = field(default_factory=list)  # (topic, text)


def _text_docs(
    ctx: DemoContext, corpus: TextCorpus, shard: str, total: int, planted: dict[int, tuple]
) -> tuple[list[TextDoc], ShardLedger]:
    docs, ledger = [], ShardLedger()
    topics = sorted(TOPICS)
    for index in range(total):
        kind, *args = planted.get(index, ("ok",))
        meta = {"url": f"https://www.example.com/{shard}/{index}", "language": "en", "source": "demo-web"}
        outcome = None
        if kind == "ok":
            topic = topics[ctx.rng.randrange(len(topics))]
            text = _article(ctx.rng, topic)
            corpus.articles.append((topic, text))
        # Copies name their source by its index in corpus.articles (clean articles, all shards so far).
        elif kind == "exact_duplicate":
            topic, text = corpus.articles[args[0]]
            outcome = "exact_duplicate"
        elif kind == "near_duplicate":
            topic, source = corpus.articles[args[0]]
            text, outcome = _near_copy(ctx.rng, source, topic), "near_duplicate"
        elif kind == "empty":
            topic, text, outcome = "none", args[0], EMPTY_TEXT
        elif kind == "non_english":
            topic, text, outcome = "gardening", _foreign_article(ctx.rng, args[0]), "non_english"
            meta["language"] = args[0]
        elif kind == "repetitive_spam":
            topic, text, outcome = "spam", SHOUTED_SPAM, "repetitive_spam"
        elif kind == "symbol_noise":
            topic, text, outcome = "none", _symbol_noise(ctx.rng), "symbol_noise"
        elif kind == "keyword_list":
            topic, text, outcome = "spam", KEYWORDS, "keyword_list"
        elif kind == "too_short":
            topic, text, outcome = "none", "Click here to read more.", "too_short"
        elif kind == "malformed_line":
            docs.append(TextDoc("", extra={"raw_line": b'{"text": "An article that was cut off mid-wr'}))
            ledger.add(_row_key(index), MALFORMED_JSON)
            continue
        else:
            raise ValueError(kind)
        docs.append(TextDoc(text, {**meta, "topic": topic}))
        ledger.add(_row_key(index), outcome)
    return docs, ledger


# --- interleaved ------------------------------------------------------------------------------


@dataclass
class InterleavedCorpus:
    """Clean documents written so far and their scenes, for later copies across documents."""

    docs: list[InterleavedDoc] = field(default_factory=list)
    scenes: list[Scene] = field(default_factory=list)


DOCUMENT_FOOTER = "Thanks for reading. Feel free to share this page with a friend."
REPOST_CREDIT = "Originally posted on our blog."


def _pictured(scene: Scene) -> str:
    return f"Pictured: {scene.caption()}."


def _document(ctx: DemoContext, corpus: InterleavedCorpus, url: str, n_images: int | None = None) -> InterleavedDoc:
    """An article with 2-4 pictures, each matched to a sentence that describes it."""
    topics = sorted(TOPICS)
    topic = topics[ctx.rng.randrange(len(topics))]
    n_sentences, drawn = ctx.rng.randint(3, 8), ctx.rng.randint(2, 4)
    n_images = min(n_images or drawn, n_sentences)
    sentences = [_sentence(ctx.rng, topic) for _ in range(n_sentences)]
    doc_images = []
    for position in sorted(ctx.rng.sample(range(n_sentences), n_images)):
        scene = ctx.scenes.next()
        sentences[position] = _pictured(scene)
        doc_images.append(DocImage(images.scene_jpeg(scene), position))
        corpus.scenes.append(scene)
    return InterleavedDoc(url, sentences, doc_images)


def _planted_document(ctx: DemoContext, corpus: InterleavedCorpus, kind: str, url: str) -> InterleavedDoc:
    """A readable document carrying one of INTERLEAVED_DEFECTS."""
    if kind == "near_duplicate_document":
        # A re-hosted copy: the same sentences and the same hotlinked pictures, plus a short credit line
        # (short: these documents are a few hundred characters, and MinHash-LSH should see ~0.9).
        source = next(doc for doc in corpus.docs if len(doc.sentences) >= 5)
        copied = [
            DocImage(image.data, image.matched_text_index, url=image.url or f"{source.url}/image-{position}.jpg")
            for position, image in enumerate(source.images)
        ]
        return InterleavedDoc(url, [*source.sentences, REPOST_CREDIT], copied)
    doc = _document(ctx, corpus, url, n_images=3 if kind == "tiny_image" else None)
    first = doc.images[0]
    if kind == "unrelated_images":
        # Pictures from elsewhere: no sentence describes them, and MMC4's matrix says so too.
        topic = sorted(TOPICS)[ctx.rng.randrange(len(TOPICS))]
        doc.sentences = [_sentence(ctx.rng, topic) for _ in doc.sentences]
        doc.extra["unrelated"] = True
    elif kind == "all_images_broken":
        for image in doc.images:  # 1x1 placeholders, as pages use for spacers and tracking pixels
            image.data = images.png_bytes(images.Image.new("RGB", (1, 1), (ctx.rng.randrange(256), 0, 0)))
    elif kind == "tiny_image":
        tiny = images.tiny_scene(ctx.scenes.next())
        doc.images[-1].data = images.scene_jpeg(tiny)
        doc.sentences[doc.images[-1].matched_text_index] = _pictured(tiny)
    elif kind == "cross_document_duplicate_image":
        source = corpus.docs[0].images[0]
        first.data = source.data
        doc.sentences[first.matched_text_index] = corpus.docs[0].sentences[source.matched_text_index]
    elif kind == "near_duplicate_image":
        scene = corpus.scenes[1]
        first.data = images.near_duplicate_variants(scene)[0]  # re-encoded at quality 60
        doc.sentences[first.matched_text_index] = _pictured(scene)
    elif kind == "caption_duplicate_image":
        scene, sample = ctx.clean[0]
        first.data = sample.image
        doc.sentences[first.matched_text_index] = _pictured(scene)
    elif kind == "non_english":
        doc.sentences = [_sentence(ctx.rng, "de", FOREIGN_TOPICS) for _ in doc.sentences]
    elif kind == "repetitive_spam":
        doc.sentences = [SPAM_SENTENCE for _ in doc.sentences]
    else:
        raise ValueError(kind)
    return doc


def _interleaved_docs(
    ctx: DemoContext, corpus: InterleavedCorpus, shard: str, total: int, planted: dict[int, str]
) -> tuple[list[InterleavedDoc], ShardLedger]:
    """Articles with 2-4 pictures, each matched to a sentence that describes it, and planted defects:
    quarantine reasons (missing_image, corrupt_image, truncated_image, malformed_line) and the
    readable INTERLEAVED_DEFECTS."""
    docs, ledger = [], ShardLedger()
    for index in range(total):
        kind = planted.get(index, "ok")
        url = f"https://blog.example.org/{shard}/{index}"
        if kind == "malformed_line":
            cut_off = b'{"url": "' + url.encode() + b'", "text_list": ["A'
            docs.append(InterleavedDoc(url, [], [], extra={"raw_line": cut_off}))
            ledger.add(_row_key(index), MALFORMED_JSON)
            continue
        if kind in INTERLEAVED_DEFECTS:
            docs.append(_planted_document(ctx, corpus, kind, url))
            ledger.add(_row_key(index), kind)
            continue
        doc = _document(ctx, corpus, url)
        outcome = None
        broken = doc.images[ctx.rng.randrange(len(doc.images))]
        if kind == "missing_image":
            broken.data, outcome = None, MISSING_FILE
        elif kind == "corrupt_image":
            broken.data, outcome = images.random_bytes(ctx.rng), UNDECODABLE_IMAGE
        elif kind == "truncated_image":
            broken.data, outcome = images.truncated(broken.data), TRUNCATED_IMAGE
        else:
            corpus.docs.append(doc)
        docs.append(doc)
        ledger.add(_row_key(index), outcome)
    return docs, ledger


# --- entry point ------------------------------------------------------------------------------


def _eval_set(path: Path, ctx: DemoContext) -> None:
    """A WebDataset tar of EVAL_IMAGES new scenes (drawn after every training scene, so none is in a
    shard), each image written once per caption phrasing: rows sharing an image are one eval image."""
    samples = []
    for _ in range(EVAL_IMAGES):
        scene = ctx.scenes.next()
        image = images.scene_jpeg(scene)
        for offset in range(EVAL_CAPTIONS_PER_IMAGE):
            phrasing = replace(scene, template=(scene.template + offset) % len(images.CAPTION_TEMPLATES))
            samples.append(CaptionSample(image, phrasing.caption()))
    write_webdataset_tar(path, samples)


def generate_demo_data(root: str | Path, seed: int = 0) -> dict:
    """Write the demo shards under `<root>/raw/` and `<root>/demo_manifest.json`; return the manifest.

    Files this writes are replaced; anything else already under `raw/` is left alone (the CLI
    clears `raw/` first when asked to overwrite).
    """
    root = Path(root)
    raw = root / "raw"
    ctx = DemoContext(seed)
    manifest: dict[str, dict] = {}

    manifest["caption/wds-00000.tar"] = _wds_tar(raw, "caption/wds-00000.tar", ctx, 32, {
        1: "mismatched_caption", 3: "exact_duplicate", 5: "near_duplicate", 6: "near_duplicate",
        7: "near_duplicate", 9: "tiny_image", 11: "extreme_aspect", 12: "watermark", 14: "empty_caption",
        16: "whitespace_caption", 18: "non_utf8_caption", 20: "truncated_image", 22: "random_bytes",
        24: "no_image", 26: "bad_sidecar", 28: "mismatched_caption", 30: "watermark",
    })  # fmt: skip
    manifest["caption/wds-00001.tar"] = _wds_tar(raw, "caption/wds-00001.tar", ctx, 32, {
        2: "cross_shard_duplicate", 4: "ok_png", 6: "zero_bytes", 8: "bomb", 10: "near_duplicate",
        12: "watermark", 14: "tiny_image", 16: "ok_webp", 18: "exact_duplicate", 20: "truncated_image",
        23: "mismatched_caption", 25: "no_image", 27: "cross_shard_duplicate",
    })  # fmt: skip
    manifest["caption/wds-00002.tar"] = _truncated_wds_tar(raw, "caption/wds-00002.tar", ctx, 8, {3: "watermark"})
    manifest["caption/img2dataset-00000.parquet"] = _row_shard(
        write_img2dataset_parquet, raw, "caption/img2dataset-00000.parquet", ctx, 24, {
            2: "cross_shard_duplicate", 5: "near_duplicate", 7: "truncated_image", 9: "random_bytes",
            11: "whitespace_caption", 13: "watermark", 15: "extreme_aspect", 18: "mismatched_caption",
            21: "empty_caption",
        })  # fmt: skip
    manifest["caption/dj-bytes-00000.parquet"] = _row_shard(
        write_dj_parquet, raw, "caption/dj-bytes-00000.parquet", ctx, 16, {
            1: "empty_caption", 4: "random_bytes", 6: "mismatched_caption", 8: "tiny_image",
            10: "near_duplicate", 12: "zero_bytes", 14: "ok_png",
        })  # fmt: skip
    manifest["caption/dj-00000.jsonl"] = _row_shard(
        write_dj_jsonl, raw, "caption/dj-00000.jsonl", ctx, 20, {
            1: "malformed_line", 3: "path_dotdot", 5: "path_absolute", 7: "symlink_out", 9: "missing_file",
            11: "zero_bytes", 13: "non_utf8_caption", 15: "whitespace_caption", 17: "cross_shard_duplicate",
            18: "tiny_image",
        })  # fmt: skip
    manifest["caption/llava-00000.json"] = _row_shard(
        write_llava_json, raw, "caption/llava-00000.json", ctx, 16, {
            2: "missing_gpt_turn", 4: "truncated_image", 6: "mismatched_caption", 8: "watermark",
            10: "empty_caption", 12: "cross_shard_duplicate", 14: "random_bytes", 15: "missing_file",
        })  # fmt: skip

    documents = InterleavedCorpus()
    mmc4, ledger = _interleaved_docs(ctx, documents, "mmc4", 16, {
        3: "malformed_line", 6: "missing_image", 8: "truncated_image", 10: "unrelated_images",
        11: "all_images_broken", 12: "tiny_image", 13: "cross_document_duplicate_image", 15: "near_duplicate_image",
    })  # fmt: skip
    write_mmc4_jsonl(raw / "interleaved/mmc4-00000.jsonl", mmc4)
    manifest["interleaved/mmc4-00000.jsonl"] = ledger.summary()
    obelics, ledger = _interleaved_docs(ctx, documents, "obelics", 14, {
        4: "corrupt_image", 9: "caption_duplicate_image", 10: "near_duplicate_document", 11: "non_english",
        12: "repetitive_spam",
    })  # fmt: skip
    write_obelics_parquet(raw / "interleaved/obelics-00000.parquet", obelics)
    manifest["interleaved/obelics-00000.parquet"] = ledger.summary()

    corpus = TextCorpus()
    web0, ledger = _text_docs(ctx, corpus, "web-00000", 24, {
        4: ("malformed_line",), 9: ("empty", ""), 12: ("near_duplicate", 2), 16: ("near_duplicate", 7),
        20: ("non_english", "de"), 21: ("repetitive_spam",), 22: ("symbol_noise",), 23: ("keyword_list",),
    })  # fmt: skip
    write_text_jsonl(raw / "text/web-00000.jsonl", web0)
    manifest["text/web-00000.jsonl"] = ledger.summary()
    web1, ledger = _text_docs(ctx, corpus, "web-00001", 22, {
        3: ("empty", " \n\n  "), 6: ("exact_duplicate", 0), 10: ("near_duplicate", 5), 15: ("near_duplicate", 20),
        20: ("non_english", "fr"), 21: ("too_short",),
    })  # fmt: skip
    write_text_parquet(raw / "text/web-00001.parquet", web1)
    manifest["text/web-00001.parquet"] = ledger.summary()

    _eval_set(root / EVAL_SET_FILE, ctx)  # not a shard: not in the manifest of ingest outcomes

    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest
