"""Simulate matching rules on the labelled photos' real encodings (issue 14, phase A).

Encodes nothing itself: bench/accuracy_encode.py encodes every labelled image
of ../shared/faces once with the product's engine options (as an event photo,
and each single image as a selfie too) and caches the result. This script then
plays the protocol of ../shared/faces/README.md in NumPy, many times over:
1 and 3 selfies per member, several draws of which images are the selfies,
and measures recall and false matches per 1,000 member–photo pairs for each
rule:

- `global`: today's rule, one threshold for every reference;
- `local`: a limit per reference, `min(cap, scale × d_k)`, d_k being the
  reference's distance to its k-th nearest stored face (k = a share of all
  stored faces);
- `assign`: one face, one person per photo (closest first);
- `learn`: confident matches become extra references (and, with two or more
  selfies, their mean encoding);
- `ask`: "Is this you?" for faces just outside the limit, answered honestly
  from the labels (questions per member counted).

Limits are chosen by cross-validation over the tuning people (members split
into folds: pick on the other folds, measure on this one); a seeded fifth of
the people is held out and never used to choose anything; their figures are
printed last.

    .venv/bin/python bench/accuracy_sim.py            # all tables (a minute or two)
    .venv/bin/python bench/accuracy_sim.py --quick    # fewer settings
"""

from __future__ import annotations

import argparse
import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from accuracy_encode import Face, Image, load  # noqa: E402 - bench/ is on sys.path
from common import out, table  # noqa: E402

UNSCORED_GROUP_FOLDERS = {"bbt_faces"}
TARGET_PER_1000 = 0.1


# --- the data --------------------------------------------------------------------------------------
@dataclass
class Data:
    images: list[Image]
    faces: np.ndarray  # every stored face, n × 128
    face_photo: np.ndarray  # photo (image index) of each face
    face_px: np.ndarray  # face box height in the original image, px
    people: dict[str, list[int]]  # person → their single images (label order)
    held_out: set[str]
    photo_faces: list[np.ndarray]  # face indices per photo


def build(images: list[Image]) -> Data:
    faces, photo, px = [], [], []
    photo_faces = []
    for n, image in enumerate(images):
        start = len(faces)
        for face in image.faces:
            faces.append(face.encoding)
            photo.append(n)
            top, _, bottom, _ = face.box
            px.append(bottom - top)
        photo_faces.append(np.arange(start, len(faces)))
    people: dict[str, list[int]] = defaultdict(list)
    for n, image in enumerate(images):
        if image.kind == "single" and image.selfie is not None:
            for name in image.identities - {"unknown"}:
                people[name].append(n)
    people = {name: shots for name, shots in people.items() if len(shots) >= 2}
    # A seeded fifth of each folder's people is never used to choose anything.
    held_out = set()
    by_folder: dict[str, list[str]] = defaultdict(list)
    for name, shots in sorted(people.items()):
        by_folder[images[shots[0]].folder].append(name)
    for names in by_folder.values():
        ranked = sorted(names, key=lambda name: hashlib.sha256(f"held-out {name}".encode()).hexdigest())
        held_out |= set(ranked[: max(1, round(len(names) / 5))])
    return Data(
        images=images,
        faces=np.asarray(faces, dtype=np.float64),
        face_photo=np.asarray(photo),
        face_px=np.asarray(px),
        people=people,
        held_out=held_out,
        photo_faces=photo_faces,
    )


def distances(refs: np.ndarray, faces: np.ndarray) -> np.ndarray:
    d2 = (refs * refs).sum(1)[:, None] + (faces * faces).sum(1)[None, :] - 2 * refs @ faces.T
    return np.sqrt(np.maximum(d2, 0.0))


# --- enrolment ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SelfieRule:
    dominant: bool = False  # several faces, one clearly the largest: take it
    harder: bool = False  # no face: try upsample 2, then CNN
    dominant_ratio: float = 2.0  # area of the largest / the next one


def selfie_face(image: Image, rule: SelfieRule) -> Face | None:
    faces = image.selfie or []
    if not faces and rule.harder:
        faces = image.selfie_up2 or image.selfie_cnn or []
    if len(faces) == 1:
        return faces[0]
    if len(faces) > 1 and rule.dominant:
        return dominant_face(faces, image.selfie_size, rule.dominant_ratio)
    return None


def dominant_face(faces: Sequence[Face], size: tuple[int, int], ratio: float) -> Face | None:
    """The face that is at least `ratio` × the area of every other one and lies in the middle half."""

    def area(face: Face) -> int:
        top, right, bottom, left = face.box
        return (bottom - top) * (right - left)

    ranked = sorted(faces, key=area, reverse=True)
    if area(ranked[0]) < ratio * area(ranked[1]):
        return None
    top, right, bottom, left = ranked[0].box
    cx, cy = (left + right) / 2 / size[0], (top + bottom) / 2 / size[1]
    if not (0.2 <= cx <= 0.8 and 0.15 <= cy <= 0.85):
        return None
    return ranked[0]


@dataclass
class Enrolment:
    """Per member: the images enrolled as selfies and their encodings; refused images per person."""

    selfies: dict[str, list[int]]
    encodings: dict[str, list[np.ndarray]]
    refused: int = 0
    people_without: int = 0


def enrol(data: Data, *, references: int, draw: int, rule: SelfieRule) -> Enrolment:
    """Like `evaluate`: the first usable images (draw 0) or a seeded shuffle (draw > 0); never the last."""
    result = Enrolment({}, {})
    for name, shots in data.people.items():
        order = list(shots)
        if draw:
            rng = np.random.default_rng(int(hashlib.sha256(f"{name} {draw}".encode()).hexdigest()[:8], 16))
            rng.shuffle(order)
        chosen, encodings = [], []
        for n in order[:-1]:
            if len(chosen) == references:
                break
            face = selfie_face(data.images[n], rule)
            if face is None:
                result.refused += 1
                continue
            chosen.append(n)
            encodings.append(face.encoding.astype(np.float64))
        if chosen:
            result.selfies[name] = chosen
            result.encodings[name] = encodings
        else:
            result.people_without += 1
    return result


# --- the matching rules -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    name: str = "global"
    threshold: float = 0.49  # global rule
    local: bool = False
    share: float = 0.03  # k = share × stored faces
    scale: float = 1.0
    cap: float = 0.55
    assign: bool = False
    assign_by_ratio: bool = False
    learn: bool = False
    learn_ratio: float = 0.9  # learn faces with distance ≤ ratio × limit (faces.services.learning)
    learn_cap: int = 3  # per selfie
    learn_min_px: int = 0
    learn_agree: bool = True  # with ≥2 selfies: within the limit of two of them
    learn_min_distance: float = 0.12  # a copy of the selfie itself teaches nothing
    mean_ref: bool = False
    learned_factor: float = 1.0  # limit of learned references: this × the rule's limit
    band: float = 0.0  # "Is this you?": ratio of the limit up to which faces are asked about
    tighten: float = 0.0  # every limit of a member minus this per selfie beyond the first (faces/limits.py)


def limits_of(rule: Rule, d: np.ndarray, *, scale: float | None = None) -> np.ndarray:
    """Per-row limits for a references × faces distance matrix."""
    if not rule.local:
        return np.full(d.shape[0], rule.threshold)
    k = max(1, math.ceil(rule.share * d.shape[1]))
    dk = np.partition(d, k - 1, axis=1)[:, k - 1]
    return np.minimum(rule.cap, (rule.scale if scale is None else scale) * dk)


@dataclass
class Refs:
    member: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)  # selfie, mean, learned, confirmed
    vectors: list[np.ndarray] = field(default_factory=list)
    learned_face: list[int] = field(default_factory=list)  # -1 for selfies

    def add(self, member: str, kind: str, vector: np.ndarray, face: int = -1) -> None:
        self.member.append(member)
        self.kind.append(kind)
        self.vectors.append(vector)
        self.learned_face.append(face)


@dataclass
class Outcome:
    matched: dict[str, set[int]]  # member → photos
    questions: dict[str, int] = field(default_factory=dict)
    learned: dict[str, int] = field(default_factory=dict)


def match(data: Data, rule: Rule, refs: Refs) -> tuple[dict[str, dict[int, float]], np.ndarray, np.ndarray]:
    """member → {face: ratio or distance} within limits, after the assignment rule; plus D and limits."""
    vectors = np.asarray(refs.vectors)
    d = distances(vectors, data.faces)
    kinds = np.asarray(refs.kind)
    limits = limits_of(rule, d)
    limits[kinds == "learned"] *= rule.learned_factor
    if rule.tighten:
        selfies = defaultdict(int)
        for member, kind in zip(refs.member, refs.kind, strict=True):
            selfies[member] += kind == "selfie"
        limits = limits - rule.tighten * np.asarray([max(selfies[m] - 1, 0) for m in refs.member])
    within = d <= limits[:, None]
    # Per member and face: the smallest distance (and its ratio to that reference's limit).
    best: dict[str, dict[int, tuple[float, float]]] = defaultdict(dict)
    for r, f in zip(*np.nonzero(within), strict=True):
        member = refs.member[r]
        value = (float(d[r, f]), float(d[r, f] / limits[r]))
        old = best[member].get(f)
        if old is None or value[0] < old[0]:
            best[member][f] = value
    if not rule.assign:
        return {m: {f: v[0] for f, v in faces.items()} for m, faces in best.items()}, d, limits
    key = 1 if rule.assign_by_ratio else 0
    by_photo: dict[int, list[tuple[float, str, int, float]]] = defaultdict(list)
    for member, faces in best.items():
        for f, value in faces.items():
            by_photo[int(data.face_photo[f])].append((value[key], member, f, value[0]))
    result: dict[str, dict[int, float]] = defaultdict(dict)
    for candidates in by_photo.values():
        taken_faces, taken_members = set(), set()
        for _, member, f, dist in sorted(candidates):
            if f in taken_faces or member in taken_members:
                continue
            taken_faces.add(f)
            taken_members.add(member)
            result[member][f] = dist
    return result, d, limits


def play(data: Data, rule: Rule, enrolment: Enrolment, *, answer: bool = False) -> Outcome:
    """Enrol, match, learn (one round), ask; return each member's photos."""
    refs = Refs()
    for member, encodings in enrolment.encodings.items():
        for vector in encodings:
            refs.add(member, "selfie", vector)
        if rule.mean_ref and len(encodings) >= 2:
            refs.add(member, "mean", np.mean(encodings, axis=0))
    hits, d, limits = match(data, rule, refs)
    outcome = Outcome({})
    if rule.learn:
        hits, d, limits = learn(data, rule, refs, hits, d, limits, outcome)
    if answer and rule.band > 0:
        hits = ask(data, rule, refs, hits, d, limits, outcome)
    outcome.matched = {m: {int(data.face_photo[f]) for f in faces} for m, faces in hits.items()}
    return outcome


def learn(
    data: Data,
    rule: Rule,
    refs: Refs,
    hits: dict[str, dict[int, float]],
    d: np.ndarray,
    limits: np.ndarray,
    outcome: Outcome,
) -> tuple[dict[str, dict[int, float]], np.ndarray, np.ndarray]:
    """One round: each member's most confident matches become learned references; match again."""
    selfie_rows: dict[str, list[int]] = defaultdict(list)
    for r, kind in enumerate(refs.kind):
        if kind in ("selfie", "mean"):
            selfie_rows[refs.member[r]].append(r)
    for member, faces in hits.items():
        rows = [r for r in selfie_rows[member] if refs.kind[r] == "selfie"]
        candidates = []
        for f in faces:
            ratios = d[rows, f] / limits[rows]
            # A copy of the member's selfie (its own photo) teaches nothing.
            if d[rows, f].min() < rule.learn_min_distance:
                continue
            if ratios.min() > rule.learn_ratio:
                continue
            if rule.learn_agree and len(rows) >= 2 and (ratios <= 1).sum() < 2:
                continue
            if data.face_px[f] < rule.learn_min_px:
                continue
            candidates.append((float(ratios.min()), f))
        cap = rule.learn_cap * len(rows)
        chosen = [f for _, f in sorted(candidates)[:cap]]
        for f in chosen:
            refs.add(member, "learned", data.faces[f], f)
        outcome.learned[member] = len(chosen)
    return match(data, rule, refs)


def ask(
    data: Data,
    rule: Rule,
    refs: Refs,
    hits: dict[str, dict[int, float]],
    d: np.ndarray,
    limits: np.ndarray,
    outcome: Outcome,
) -> dict[str, dict[int, float]]:
    """ "Is this you?" until nothing is left to ask: faces within band × limit, not taken, not matched."""
    asked: set[tuple[str, int]] = set()
    for _ in range(10):
        taken = {f: m for m, faces in hits.items() for f in faces}
        mine = {m: {int(data.face_photo[f]) for f in faces} for m, faces in hits.items()}
        within_band = d <= (limits * rule.band)[:, None]
        new_refs = False
        for r, f in zip(*np.nonzero(within_band), strict=True):
            member = refs.member[r]
            photo = int(data.face_photo[f])
            if f in taken or photo in mine.get(member, set()) or (member, f) in asked:
                continue
            asked.add((member, f))
            outcome.questions[member] = outcome.questions.get(member, 0) + 1
            if member in data.images[photo].identities:
                refs.add(member, "confirmed", data.faces[f], f)
                new_refs = True
                mine.setdefault(member, set()).add(photo)
        if not new_refs:
            break
        hits, d, limits = match(data, rule, refs)
    return hits


# --- scoring ------------------------------------------------------------------------------------------
@dataclass
class Count:
    pairs: int = 0
    positives: int = 0
    hits: int = 0
    false: int = 0

    def add(self, other: Count) -> None:
        self.pairs += other.pairs
        self.positives += other.positives
        self.hits += other.hits
        self.false += other.false

    @property
    def recall(self) -> float:
        return self.hits / self.positives if self.positives else float("nan")

    @property
    def per_1000(self) -> float:
        return 1000 * self.false / self.pairs if self.pairs else float("nan")


def score(
    data: Data,
    enrolment: Enrolment,
    outcome: Outcome,
    members: Iterable[str],
    *,
    hidden: set[int] | None = None,
) -> dict[str, Count]:
    """Per member: pairs, positives, hits, false (own selfies, bbt group stills and `hidden` photos left out)."""
    result = {}
    for member in members:
        if member not in enrolment.selfies:
            continue
        own = set(enrolment.selfies[member]) | (hidden or set())
        count = Count()
        matched = outcome.matched.get(member, set())
        for n, image in enumerate(data.images):
            if n in own or (image.folder in UNSCORED_GROUP_FOLDERS and image.kind == "group"):
                continue
            count.pairs += 1
            positive = member in image.identities
            count.positives += positive
            if n in matched:
                count.hits += positive
                count.false += not positive
        result[member] = count
    return result


def total(counts: Iterable[Count]) -> Count:
    result = Count()
    for count in counts:
        result.add(count)
    return result


def tuning_counts(data: Data, enrolment: Enrolment, outcome: Outcome) -> dict[str, Count]:
    """The tuning people's counts, without any photo showing a held-out person."""
    hidden = {n for n, image in enumerate(data.images) if image.identities & data.held_out}
    tuning = [m for m in enrolment.selfies if m not in data.held_out]
    return score(data, enrolment, outcome, tuning, hidden=hidden)


# --- experiments --------------------------------------------------------------------------------------
@dataclass
class Evaluation:
    """A rule over several draws: per draw, per member counts (all people, and tuning-only)."""

    rule: Rule
    all: list[dict[str, Count]]
    tuning: list[dict[str, Count]]
    questions: list[dict[str, int]]
    learned: list[dict[str, int]]


def evaluate_rule(data: Data, rule: Rule, enrolments: list[Enrolment], *, answer: bool = False) -> Evaluation:
    result = Evaluation(rule, [], [], [], [])
    for enrolment in enrolments:
        outcome = play(data, rule, enrolment, answer=answer)
        counts = score(data, enrolment, outcome, enrolment.selfies)
        result.all.append(counts)
        result.tuning.append(tuning_counts(data, enrolment, outcome))
        result.questions.append(outcome.questions)
        result.learned.append(outcome.learned)
    return result


def folds_of(names: Sequence[str], k: int) -> list[set[str]]:
    ranked = sorted(names, key=lambda name: hashlib.sha256(f"fold {name}".encode()).hexdigest())
    return [set(ranked[i::k]) for i in range(k)]


def cross_validate(
    evaluations: list[Evaluation], *, folds: int = 5, target: float = TARGET_PER_1000
) -> tuple[list[tuple[Rule, Count]], Count]:
    """Per fold: the rule with the best recall at ≤ target false per 1,000 on the other folds, scored on this one.

    Uses tuning people only. Returns (per fold: the rule chosen and its count on the fold), and the sum.
    """
    names = sorted({m for e in evaluations for draw in e.tuning for m in draw})
    chosen = []
    for fold in folds_of(names, folds):
        best: tuple[float, float, int] | None = None
        pick = evaluations[0]
        for i, e in enumerate(evaluations):
            train = total(c for draw in e.tuning for m, c in draw.items() if m not in fold)
            if train.per_1000 > target:
                continue
            key = (train.recall, -train.per_1000, -i)
            if best is None or key > best:
                best, pick = key, e
        test = total(c for draw in pick.tuning for m, c in draw.items() if m in fold)
        chosen.append((pick.rule, test))
    return chosen, total(c for _, c in chosen)


def best_at_target(
    evaluations: list[Evaluation], *, target: float = TARGET_PER_1000, part: str = "tuning"
) -> Evaluation | None:
    best = None
    for e in evaluations:
        counts = total(c for draw in getattr(e, part) for c in draw.values())
        if counts.per_1000 <= target and (best is None or counts.recall > best[0]):
            best = (counts.recall, e)
    return None if best is None else best[1]


def summary(e: Evaluation, part: str = "all") -> Count:
    return total(c for draw in getattr(e, part) for c in draw.values())


def spread(e: Evaluation, part: str = "all") -> str:
    """Recall and false/1000 of each draw: min–max."""
    recalls = [total(d.values()).recall for d in getattr(e, part)]
    rates = [total(d.values()).per_1000 for d in getattr(e, part)]
    return f"{min(recalls):.3f}–{max(recalls):.3f} / {min(rates):.2f}–{max(rates):.2f}"


def held_out_count(data: Data, e: Evaluation) -> Count:
    return total(c for draw in e.all for m, c in draw.items() if m in data.held_out)


def describe(rule: Rule) -> str:
    parts = []
    if rule.local:
        parts.append(f"local q={rule.share:g} s={rule.scale:.2f} cap={rule.cap:.2f}")
    else:
        parts.append(f"t={rule.threshold:.2f}")
    if rule.assign:
        parts.append("assign" + ("/ratio" if rule.assign_by_ratio else ""))
    if rule.learn:
        parts.append(
            f"learn ρ={rule.learn_ratio:.2f} cap={rule.learn_cap} px≥{rule.learn_min_px}"
            + (" mean" if rule.mean_ref else "")
            + ("" if rule.learned_factor == 1 else f" lf={rule.learned_factor:.2f}")
        )
    elif rule.mean_ref:
        parts.append("mean")
    if rule.band:
        parts.append(f"band={rule.band:.2f}")
    if rule.tighten:
        parts.append(f"-{rule.tighten:g}/selfie")
    return " ".join(parts)


def sweep_table(data: Data, title: str, evaluations: list[Evaluation]) -> None:
    out(f"\n{title}")
    rows = []
    for e in evaluations:
        a, t = summary(e), summary(e, "tuning")
        rows.append(
            [
                describe(e.rule),
                f"{a.recall:.3f}",
                f"{a.false}",
                f"{a.per_1000:.3f}",
                f"{t.recall:.3f}",
                f"{t.per_1000:.3f}",
                spread(e),
            ]
        )
    table(
        ["rule", "recall", "false", "per 1000", "tune recall", "tune /1000", "draws recall / per 1000"], rows
    )


def cv_line(data: Data, label: str, evaluations: list[Evaluation], folds: int = 5) -> list[object]:
    chosen, cv = cross_validate(evaluations, folds=folds)
    rates = [c.per_1000 for _, c in chosen]
    recalls = [c.recall for _, c in chosen]
    return [
        label,
        f"{cv.recall:.3f}",
        f"{cv.per_1000:.3f}",
        f"{min(recalls):.3f}–{max(recalls):.3f}",
        f"{min(rates):.2f}–{max(rates):.2f}",
        "; ".join(sorted({describe(r) for r, _ in chosen})),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=4, help="enrolment draws (draw 0 is evaluate's)")
    parser.add_argument("--quick", action="store_true", help="fewer settings")
    args = parser.parse_args()
    data = build(load())
    out(
        f"{len(data.images)} images, {len(data.faces)} faces, {len(data.people)} people; held out: "
        + ", ".join(sorted(data.held_out))
    )
    selfie_rules = {"today": SelfieRule(), "dominant+harder": SelfieRule(dominant=True, harder=True)}
    for label, srule in selfie_rules.items():
        for refs in (1, 3):
            refused = sum(enrol(data, references=refs, draw=n, rule=srule).refused for n in range(args.draws))
            out(f"selfies {label}, {refs} per member: {refused} images refused over {args.draws} draws")
    for references in (1, 3):
        enrolments = [
            enrol(data, references=references, draw=n, rule=SelfieRule()) for n in range(args.draws)
        ]
        run_all(data, references, enrolments, quick=args.quick)


def step_rules(quick: bool) -> dict[str, list[Rule]]:
    """The steps of docs/accuracy.md, each swept over its main setting."""
    thresholds = [round(0.45 + 0.01 * i, 2) for i in range(11 if not quick else 6)]
    scales = [round(0.66 + 0.02 * i, 2) for i in range(7 if not quick else 4)]
    learn = {"learn": True, "mean_ref": True, "tighten": 0.01}
    return {
        "today's rule": [Rule(threshold=t) for t in thresholds],
        "+ one face, one person": [Rule(threshold=t, assign=True) for t in thresholds],
        "+ local limits (q 0.1, cap 0.55)": [
            Rule(local=True, share=0.1, scale=x, cap=0.55, assign=True) for x in scales
        ],
        "+ 0.01 tighter per extra selfie": [Rule(threshold=t, assign=True, tighten=0.01) for t in thresholds],
        "+ learned, global limit": [Rule(threshold=t, assign=True, **learn) for t in thresholds],  # type: ignore[arg-type]
        "+ learned, local limits": [
            Rule(local=True, share=0.1, scale=x, cap=0.55, assign=True, **learn)  # type: ignore[arg-type]
            for x in scales
        ],
    }


def run_all(data: Data, references: int, enrolments: list[Enrolment], *, quick: bool) -> None:
    out(f"\n===== {references} selfie(s) per member, {len(enrolments)} draws =====")
    rows, chosen_rules = [], {}
    for name, rules in step_rules(quick).items():
        evaluations = [evaluate_rule(data, rule, enrolments) for rule in rules]
        sweep_table(data, name, evaluations)
        rows.append(cv_line(data, name, evaluations))
        best = best_at_target(evaluations)  # chosen on all tuning people: applied to the held-out ones
        if best is not None:
            chosen_rules[name] = best
    out("\nCross-validated (5 folds of tuning people, chosen at <= 0.1 false per 1,000 on the other folds)")
    table(["step", "recall", "per 1000", "fold recall", "fold /1000", "chosen"], rows)
    out("\nHeld-out people (never used to choose), at the value chosen on all tuning people")
    held = []
    for name, e in chosen_rules.items():
        c = held_out_count(data, e)
        held.append([name, describe(e.rule), f"{c.recall:.3f}", c.false, f"{c.per_1000:.3f}"])
    table(["step", "chosen", "recall", "false", "per 1000"], held)
    out('\n"Is this you?" answered honestly from the labels, at the chosen rule of each learned step')
    asked = []
    for name in ("+ learned, global limit", "+ learned, local limits"):
        if name not in chosen_rules:
            continue
        for band in (1.1, 1.15, 1.2):
            rule = replace(chosen_rules[name].rule, band=band)
            e = evaluate_rule(data, rule, enrolments, answer=True)
            a, h = summary(e), held_out_count(data, e)
            members = max(1, sum(len(x) for x in e.all))
            questions = sum(sum(x.values()) for x in e.questions) / members
            asked.append(
                [
                    describe(rule),
                    f"{a.recall:.3f}",
                    f"{a.per_1000:.3f}",
                    f"{h.recall:.3f}",
                    f"{questions:.1f}",
                ]
            )
    table(["rule", "recall", "per 1000", "held-out recall", "questions/member"], asked)


if __name__ == "__main__":
    main()
