"""Static vocabularies of the sample generator (names, catalog words, review phrases).

Pure data plus two small builders; used only by :mod:`churnwarehouse.generate`.
No I/O and no randomness at import.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FIRST_NAMES: tuple[str, ...] = (
    "oliver", "amelia", "george", "isla", "harry", "ava", "noah", "mia", "jack", "ivy",
    "leo", "lily", "arthur", "grace", "muhammad", "sophia", "oscar", "freya", "charlie",
    "emily", "jacob", "ella", "thomas", "poppy", "henry", "rosie", "william", "evie",
    "james", "chloe", "lucas", "daisy", "finley", "alice", "theo", "sienna", "alfie",
    "hannah", "archie", "zara", "joshua", "maya", "samuel", "anna", "daniel", "sara",
    "liam", "emma", "mateo", "julia", "luca", "lena", "max", "clara", "hugo", "chiara",
    "pablo", "lucia", "ethan", "olivia", "mason", "ruby", "aiden", "priya", "ravi",
    "fatima", "omar", "aisha", "yusuf", "niamh", "sean", "ciara", "lars", "elin",
    "sven", "astrid", "pierre", "camille", "jan", "sanne", "kenji", "mei",
)
LAST_NAMES: tuple[str, ...] = (
    "smith", "jones", "taylor", "brown", "williams", "wilson", "johnson", "davies",
    "patel", "robinson", "wright", "thompson", "evans", "walker", "white", "roberts",
    "green", "hall", "wood", "jackson", "clarke", "khan", "lewis", "harris", "martin",
    "cooper", "king", "lee", "baker", "harrison", "morgan", "allen", "james", "scott",
    "phillips", "watson", "davis", "parker", "price", "bennett", "young", "griffiths",
    "mitchell", "kelly", "cook", "carter", "richardson", "bailey", "collins", "bell",
    "shah", "murphy", "obrien", "muller", "schmidt", "dubois", "martinez", "garcia",
    "rossi", "bianchi", "jansen", "devries", "andersson", "nilsson", "kowalski",
    "nowak", "silva", "santos", "tanaka", "chen", "wang", "singh", "ali", "hussain",
)

# (ISO country, weight, local currency)
COUNTRIES: tuple[tuple[str, float, str], ...] = (
    ("GB", 0.46, "GBP"), ("US", 0.11, "USD"), ("DE", 0.08, "EUR"), ("FR", 0.07, "EUR"),
    ("IE", 0.05, "EUR"), ("NL", 0.05, "EUR"), ("ES", 0.04, "EUR"), ("IT", 0.04, "EUR"),
    ("AU", 0.03, "AUD"), ("CA", 0.03, "CAD"), ("SE", 0.02, "SEK"), ("BE", 0.02, "EUR"),
)
# Units of local currency per GBP (fixed for the whole simulated period).
FX_PER_GBP: dict[str, float] = {
    "GBP": 1.0, "EUR": 1.17, "USD": 1.27, "AUD": 1.93, "CAD": 1.73, "SEK": 13.4,
}
CURRENCIES: tuple[str, ...] = tuple(FX_PER_GBP)

ORDER_CHANNELS: tuple[str, ...] = ("web", "app", "marketplace")
ORDER_CHANNEL_WEIGHTS: tuple[float, ...] = (0.52, 0.33, 0.15)
SEND_CHANNELS: tuple[str, ...] = ("email", "push", "sms")
SEND_CHANNEL_WEIGHTS: tuple[float, ...] = (0.8, 0.12, 0.08)

# Campaign offers: (offer_id, kind, value, effect multiplier on the campaign response).
OFFERS: tuple[tuple[str, str, float, float], ...] = (
    ("PCT10", "pct", 0.10, 0.8),
    ("PCT15", "pct", 0.15, 1.0),
    ("PCT20", "pct", 0.20, 1.25),
    ("GBP5", "fixed", 5.0, 0.85),
    ("GBP10", "fixed", 10.0, 1.1),
)
# Generic (non-campaign) coupon codes: (code, kind, value).
GENERIC_CODES: tuple[tuple[str, str, float], ...] = (
    ("WELCOME10", "pct", 0.10),
    ("BLACKFRIDAY20", "pct", 0.20),
    ("SAVE10", "pct", 0.10),
    ("LOYAL5", "fixed", 5.0),
    ("STUDENT10", "pct", 0.10),
)

# (category, share of lines, median list price in GBP, product nouns)
CATEGORIES: tuple[tuple[str, float, float, tuple[str, ...]], ...] = (
    ("electronics", 0.10, 32.0, ("headphones", "speaker", "charger", "power bank",
                                 "smart watch", "keyboard", "mouse", "webcam", "cable", "earbuds")),
    ("home_kitchen", 0.14, 16.0, ("mug set", "frying pan", "kettle", "knife set", "toaster",
                                  "cushion", "throw", "lamp", "storage box", "tea towel")),
    ("fashion", 0.16, 22.0, ("jacket", "jumper", "dress", "trainers", "scarf", "jeans",
                             "t-shirt", "hoodie", "boots", "backpack")),
    ("beauty", 0.11, 11.0, ("moisturiser", "serum", "shampoo", "lipstick", "perfume",
                            "face mask", "body wash", "hair dryer", "nail polish", "sunscreen")),
    ("sports_outdoors", 0.08, 20.0, ("yoga mat", "water bottle", "running shorts", "tent",
                                     "dumbbells", "bike light", "rucksack", "gloves", "helmet",
                                     "sports bra")),
    ("toys_games", 0.07, 14.0, ("board game", "puzzle", "building set", "plush toy", "card game",
                                "toy car", "doll", "kite", "science kit", "drawing set")),
    ("books", 0.09, 8.0, ("novel", "cookbook", "notebook", "biography", "atlas", "comic",
                           "travel guide", "colouring book", "diary", "poetry collection")),
    ("garden", 0.06, 14.0, ("plant pot", "hose", "seed kit", "bird feeder", "pruners",
                            "solar light", "watering can", "planter", "compost bin", "trowel")),
    ("pet_supplies", 0.07, 11.0, ("dog bed", "cat toy", "lead", "pet bowl", "scratching post",
                                  "dog treats", "grooming brush", "litter tray", "collar",
                                  "pet carrier")),
    ("grocery", 0.12, 4.5, ("coffee beans", "green tea", "olive oil", "granola", "chocolate",
                            "pasta", "hot sauce", "honey", "snack box", "spice mix")),
)
BRANDS: tuple[str, ...] = (
    "Northwind", "Aurora", "Kestrel", "Bramble", "Halcyon", "Larkspur", "Solent",
    "Evergreen", "Copperleaf", "Pennine", "Marlowe", "Tidewell", "Fenwick", "Oakhurst",
)
ADJECTIVES: tuple[str, ...] = (
    "Classic", "Compact", "Premium", "Everyday", "Deluxe", "Eco", "Pro", "Mini",
    "Essential", "Heritage", "Urban", "Signature", "Lightweight", "Family",
)
PRODUCTS_PER_CATEGORY = 50

TICKET_TOPICS: tuple[str, ...] = ("delivery", "refund", "product_quality", "account", "payment")
TICKET_TOPIC_BASE: tuple[float, ...] = (0.34, 0.19, 0.19, 0.13, 0.15)
TICKET_TOPIC_DISTRESS: tuple[float, ...] = (0.36, 0.30, 0.26, 0.04, 0.04)

# Review sentences by tone. "{noun}" is replaced by the reviewed product's noun.
REVIEW_POSITIVE: tuple[str, ...] = (
    "Absolutely love the {noun}.", "Really happy with the {noun}, great quality.",
    "Excellent {noun}, works perfectly.", "Fantastic {noun}, would buy again.",
    "Exactly as described, very pleased.", "Superb value for money.",
    "Brilliant {noun}, exceeded my expectations.", "My new favourite {noun}.",
    "Lovely {noun}, well made and sturdy.", "Highly recommend the {noun}.",
    "Could not be happier with it.", "Feels premium and looks gorgeous.",
    "Five stars, spot on.", "Really impressed with the quality.",
    "Great {noun} for the price.", "Perfect gift, they loved it.",
    "Does everything I wanted and more.", "Top notch {noun}, delighted.",
    "Wonderful quality, so glad I ordered.", "Best {noun} I have ever bought.",
)
REVIEW_NEUTRAL: tuple[str, ...] = (
    "Okay {noun}, does the job.", "Average quality, nothing special.",
    "It's fine for the price.", "Not bad but not amazing either.",
    "Works, though the {noun} feels a bit basic.", "Does what it says.",
    "Reasonable {noun}, a bit smaller than expected.", "Decent enough for everyday use.",
    "Mixed feelings about the {noun}.", "As expected, no surprises.",
    "The colour is slightly different from the photos.", "It's alright, I suppose.",
    "Fair {noun}, might try another brand next time.", "Middle of the road.",
)
REVIEW_NEGATIVE: tuple[str, ...] = (
    "Very disappointed with the {noun}.", "The {noun} broke after a week.",
    "Poor quality, feels cheap.", "Would not recommend.",
    "Complete waste of money.", "The {noun} stopped working almost immediately.",
    "Nothing like the pictures.", "Terrible, the {noun} was faulty.",
    "Returned it, not fit for purpose.", "Flimsy {noun}, fell apart quickly.",
    "Awful quality for the price.", "Really let down by the {noun}.",
    "Cheaply made and overpriced.", "Do not buy, total rubbish.",
    "Useless, avoid.", "The {noun} arrived scratched and dented.",
)
REVIEW_MIXED: tuple[str, ...] = (
    "Looks great but the {noun} broke quickly.", "Good {noun} but delivery was a nightmare.",
    "Poor packaging, although the {noun} itself is fine.", "Love the design, hate the finish.",
    "Nice {noun} but far too expensive.", "Great idea, poor execution.",
    "Comfortable but the sizing is way off.", "Works well when it works, which is not often.",
)
REVIEW_SERVICE_POSITIVE: tuple[str, ...] = (
    "Delivery was quick.", "Arrived a day early.", "Customer service was really helpful.",
    "Well packaged and on time.", "Easy ordering as always.",
)
REVIEW_SERVICE_NEGATIVE: tuple[str, ...] = (
    "Delivery took ages.", "Support never replied to my emails.",
    "Still waiting for my refund.", "The box was crushed on arrival.",
    "Had to chase the courier twice.", "Customer service was unhelpful.",
)

# P(tone of the first sentence | rating); tones: positive, neutral, negative, mixed.
_TONE_FIRST = np.array([
    [0.00, 0.05, 0.85, 0.10],  # 1
    [0.04, 0.16, 0.62, 0.18],  # 2
    [0.14, 0.52, 0.12, 0.22],  # 3
    [0.70, 0.20, 0.02, 0.08],  # 4
    [0.93, 0.05, 0.00, 0.02],  # 5
])
# P(tone of the optional second sentence | rating)
_TONE_SECOND = np.array([
    [0.03, 0.12, 0.85, 0.00],
    [0.12, 0.28, 0.60, 0.00],
    [0.30, 0.40, 0.30, 0.00],
    [0.65, 0.27, 0.08, 0.00],
    [0.88, 0.10, 0.02, 0.00],
])
# P(positive service remark | rating), when a service remark is added
_SERVICE_POSITIVE = np.array([0.1, 0.25, 0.55, 0.85, 0.95])


@dataclass(frozen=True)
class Products:
    """The product catalog used by the simulation (index = product number - 1)."""

    product_id: np.ndarray  # object array of str
    product_name: np.ndarray
    category: np.ndarray  # int category index
    noun: np.ndarray  # object array of str, lowercase noun used in review texts
    list_price_gbp: np.ndarray
    unit_cost_gbp: np.ndarray
    cum_weight: np.ndarray  # global cumulative popularity (blocks of PRODUCTS_PER_CATEGORY)


def build_products(rng: np.random.Generator) -> Products:
    """Draw the product catalog: ~500 products in 10 categories.

    Parameters
    ----------
    rng
        Generator for the catalog draws.

    Returns
    -------
    Products
        Catalog with list prices above unit costs and Zipf-like popularity within
        each category.
    """
    per = PRODUCTS_PER_CATEGORY
    ids, names, cats, nouns, prices, costs, weights = [], [], [], [], [], [], []
    for c, (_, _, median, cat_nouns) in enumerate(CATEGORIES):
        combos = rng.permutation(len(BRANDS) * len(ADJECTIVES) * len(cat_nouns))[:per]
        for k, combo in enumerate(combos):
            b, rest = divmod(int(combo), len(ADJECTIVES) * len(cat_nouns))
            a, n = divmod(rest, len(cat_nouns))
            noun = cat_nouns[n]
            ids.append(f"P{c * per + k + 1:04d}")
            names.append(f"{BRANDS[b]} {ADJECTIVES[a]} {noun.title()}")
            cats.append(c)
            nouns.append(noun)
        price = np.round(median * rng.lognormal(0.0, 0.45, per), 2).clip(1.5)
        prices.append(price)
        costs.append(np.round(price * rng.uniform(0.35, 0.7, per), 2))
        w = 1.0 / np.arange(1, per + 1) ** 0.9
        weights.append(rng.permutation(w) / w.sum())
    w_all = np.concatenate(weights)
    return Products(
        product_id=np.array(ids, dtype=object),
        product_name=np.array(names, dtype=object),
        category=np.array(cats, dtype=np.int16),
        noun=np.array(nouns, dtype=object),
        list_price_gbp=np.concatenate(prices),
        unit_cost_gbp=np.concatenate(costs),
        cum_weight=np.cumsum(w_all),
    )


def _split_templates(bank: tuple[str, ...]) -> tuple[pa.Array, pa.Array, np.ndarray]:
    pre, post, has = [], [], []
    for t in bank:
        if "{noun}" in t:
            a, b = t.split("{noun}", 1)
            pre.append(a)
            post.append(b)
            has.append(True)
        else:
            pre.append(t)
            post.append("")
            has.append(False)
    return pa.array(pre), pa.array(post), np.array(has)


def _pick_sentences(
    rng: np.random.Generator, tone: np.ndarray, nouns: pa.Array,
    banks: tuple[tuple[str, ...], ...],
) -> pa.Array:
    """One sentence per row from ``banks[tone]`` with the noun filled in."""
    sizes = np.array([len(b) for b in banks])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = tuple(s for b in banks for s in b)
    pre, post, has = _split_templates(flat)
    idx = offsets[tone] + (rng.random(len(tone)) * sizes[tone]).astype(np.int64)
    idx_pa = pa.array(idx)
    noun_or_empty = pc.if_else(pa.array(has[idx]), nouns, "")
    return pc.binary_join_element_wise(pre.take(idx_pa), noun_or_empty, post.take(idx_pa), "")


def _draw_tone(rng: np.random.Generator, table: np.ndarray, rating: np.ndarray) -> np.ndarray:
    cum = np.cumsum(table, axis=1)[rating - 1]
    u = rng.random(len(rating))[:, None]
    return np.minimum((u > cum).sum(axis=1), table.shape[1] - 1)


def review_texts(rng: np.random.Generator, rating: np.ndarray, nouns: np.ndarray) -> pa.Array:
    """Compose review texts whose tone follows the rating, with noise and mixed texts.

    Parameters
    ----------
    rng
        Generator for the draws.
    rating
        Ratings 1-5, one per review.
    nouns
        Object array of product nouns, one per review.

    Returns
    -------
    pyarrow.Array
        Strings (null for ~10% of reviews, which carry a rating only).
    """
    n = len(rating)
    if n == 0:
        return pa.array([], type=pa.string())
    noun_pa = pa.array(nouns, type=pa.string())
    banks = (REVIEW_POSITIVE, REVIEW_NEUTRAL, REVIEW_NEGATIVE, REVIEW_MIXED)
    first = _pick_sentences(rng, _draw_tone(rng, _TONE_FIRST, rating), noun_pa, banks)
    second = _pick_sentences(rng, _draw_tone(rng, _TONE_SECOND, rating), noun_pa, banks)
    second = pc.if_else(pa.array(rng.random(n) < 0.45), second, pa.nulls(n, pa.string()))
    good = rng.random(n) < _SERVICE_POSITIVE[rating - 1]
    service = _pick_sentences(rng, np.where(good, 0, 1), noun_pa,
                              (REVIEW_SERVICE_POSITIVE, REVIEW_SERVICE_NEGATIVE))
    service = pc.if_else(pa.array(rng.random(n) < 0.3), service, pa.nulls(n, pa.string()))
    text = pc.binary_join_element_wise(first, second, service, " ", null_handling="skip")
    return pc.if_else(pa.array(rng.random(n) < 0.1), pa.nulls(n, pa.string()), text)
