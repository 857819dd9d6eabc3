"""Scene question answering through a vision-language chat model, grounded in the instances.

Two ways to ask (``mode``):

- ``paper`` (the IGGT paper's protocol): for each instance, its masks are tinted red in its best
  views (:func:`iggt.tasks.open_vocab.best_views`) and the model is asked whether the highlighted
  areas are what the question asks for, yes or no; the answer is the union of the "yes" instances.
- ``marks`` (set-of-marks): every instance is drawn as its ID number in the few views that show
  the most instances together, and the model names the numbers.

Counting and spatial-relation questions (:func:`needs_scene_table`) also get the instance table as
text: labels when the scene was segmented, 3D centroids, box sizes and pairwise distances.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import distance_transform_edt

from iggt.export.selection import to_uint8
from iggt.tasks.backends.base import ImageTextBackend
from iggt.tasks.chat_client import ChatClient, EndpointError, image_part, png_bytes, text_part
from iggt.tasks.highlight import tint
from iggt.tasks.open_vocab import OpenVocabConfig, best_views, query
from iggt.tasks.result import SavedResult

MODES = ("paper", "marks")
_SCENE_TABLE_WORDS = re.compile(
    r"\b(how many|count|number of|left|right|above|below|under|over|behind|in front|next to|near|nearest|far|"
    r"farthest|closest|between|distance|bigger|biggest|larger|largest|smaller|smallest|taller|tallest)\b",
    re.IGNORECASE,
)
_NONE_ANSWERS = re.compile(r"^\W*(none|no(ne)? (object|objects|numbers?)|nothing|no)\b", re.IGNORECASE)

PAPER_PROMPT = (
    "The areas tinted red in the image(s) are one object of a scene, seen from different viewpoints.\n"
    "Question: {question}\nDo the red areas show what the question asks for? Answer yes or no."
)
MARKS_PROMPT = (
    "Each object in the image(s) is marked with its number; the same number is the same object in every image.\n"
    "Question: {question}\nAnswer with the numbers of the objects that answer the question, separated by commas, "
    "or 'none'."
)


@dataclass
class Exchange:
    """One request and its reply: the prompt text, the PNG images sent and the raw answer."""

    prompt: str
    images: list[bytes]
    answer: str
    instance_id: int | None = None
    views: list[int] = field(default_factory=list)


@dataclass
class AskResult:
    """The instance IDs that answer ``question`` and everything exchanged to find them."""

    question: str
    mode: str
    instance_ids: list[int]
    exchanges: list[Exchange]
    notes: list[str] = field(default_factory=list)
    context: str = ""


def needs_scene_table(question: str) -> bool:
    """Whether a question counts or relates objects in space (then the instance table is sent as text)."""
    return bool(_SCENE_TABLE_WORDS.search(question))


def parse_yes_no(answer: str) -> bool:
    """ "Yes." / "yes, the second one" -> True, "No" -> False; EndpointError when it is neither."""
    match = re.match(r"^\W*(yes|no)\b", answer.strip(), re.IGNORECASE)
    if not match:
        raise EndpointError(
            f"the model's answer is neither yes nor no: {answer.strip()[:80]!r}; ask again or use --mode marks"
        )
    return match.group(1).lower() == "yes"


def parse_marks(answer: str, marks: list[int]) -> tuple[list[int], list[int]]:
    """(mark numbers named that exist, numbers named that are no mark); "none" gives no numbers.

    EndpointError when the answer holds neither a number nor a "none".
    """
    numbers = [int(n) for n in re.findall(r"(?<![\d.])\d+(?!\.?\d)", answer)]
    if not numbers:
        if _NONE_ANSWERS.match(answer.strip()):
            return [], []
        raise EndpointError(f"the model's answer names no mark number: {answer.strip()[:80]!r}; ask again")
    named = list(dict.fromkeys(numbers))
    return [n for n in named if n in marks], [n for n in named if n not in marks]


def scene_table(result: SavedResult, labels: dict[int, str] | None = None) -> str:
    """The instance table as text: ID, label, centroid, box size, and the pairwise centroid distances."""
    instances = result.instances
    lines = ["Objects of the scene (metres in the first camera's frame: x right, y down, z forward):"]
    for row, instance_id in enumerate(instances.ids.tolist()):
        size = instances.bbox_max[row] - instances.bbox_min[row]
        name = f" {labels[instance_id]}" if labels and instance_id in labels else ""
        lines.append(
            f"- object {instance_id}{name}: centre {_vector(instances.centroids[row])}, size {_vector(size)}, "
            f"seen in {int((instances.pixel_counts[row] > 0).sum())} of {result.num_views} views"
        )
    centres = instances.centroids.astype(np.float64)
    distance = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    pairs = [
        f"{a}-{b}: {distance[i, j]:.2f}"
        for i, a in enumerate(instances.ids.tolist())
        for j, b in enumerate(instances.ids.tolist())
        if i < j and np.isfinite(distance[i, j])
    ]
    if pairs:
        lines.append("Distances between object centres: " + ", ".join(pairs))
    return "\n".join(lines)


def _vector(values: np.ndarray) -> str:
    return "(" + ", ".join("?" if not np.isfinite(v) else f"{v:.2f}" for v in values) + ")"


def _with_table(prompt: str, result: SavedResult, question: str, labels: dict[int, str] | None) -> tuple[str, str]:
    if not needs_scene_table(question):
        return prompt, ""
    table = scene_table(result, labels)
    return f"{table}\n\n{prompt}", table


def ask_paper(
    client: ChatClient,
    result: SavedResult,
    question: str,
    labels: dict[int, str] | None = None,
    views_per_instance: int = 2,
) -> AskResult:
    """One yes/no request per instance with its masks tinted red (module docstring)."""
    prompt, table = _with_table(PAPER_PROMPT.format(question=question), result, question, labels)
    exchanges, chosen = [], []
    for instance_id in result.instances.ids.tolist():
        views = best_views(result, instance_id, views_per_instance)
        if not views:
            continue
        text = prompt
        if table:
            text = f"{prompt}\n(The red object is object {instance_id} of the table.)"
        images = [
            png_bytes(tint(result.predictions.images[v], result.instances.labels[v] == instance_id)) for v in views
        ]
        answer = client.complete([text_part(text), *[image_part(png) for png in images]])
        exchanges.append(Exchange(text, images, answer, instance_id, views))
        if _yes(answer, instance_id):
            chosen.append(instance_id)
    return AskResult(question, "paper", chosen, exchanges, context=table)


def _yes(answer: str, instance_id: int) -> bool:
    try:
        return parse_yes_no(answer)
    except EndpointError as exc:
        raise EndpointError(f"instance {instance_id}: {exc}") from exc


def marks_views(result: SavedResult, count: int) -> list[int]:
    """Up to ``count`` views, greedily the one showing the most instances not yet shown."""
    present = [set(np.unique(labels).tolist()) - {0} for labels in result.instances.labels]
    chosen, covered = [], set()
    for _ in range(min(count, result.num_views)):
        gain = [len(p - covered) if v not in chosen else -1 for v, p in enumerate(present)]
        best = int(np.argmax(gain))
        if gain[best] <= 0:
            break
        chosen.append(best)
        covered |= present[best]
    return chosen or [0]


def draw_marks(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(H, W, 3) image with each instance's ID drawn at its mask's innermost pixel; returns uint8."""
    picture = Image.fromarray(to_uint8(image))
    draw = ImageDraw.Draw(picture)
    for instance_id in np.setdiff1d(np.unique(labels), [0]).tolist():
        inside = distance_transform_edt(np.pad(labels == instance_id, 1))[1:-1, 1:-1]
        row, column = np.unravel_index(int(np.argmax(inside)), inside.shape)
        text = str(instance_id)
        left, top, right, bottom = draw.textbbox((column, row), text, anchor="mm")
        draw.rectangle((left - 2, top - 1, right + 2, bottom + 1), fill=(255, 255, 255), outline=(0, 0, 0))
        draw.text((column, row), text, fill=(0, 0, 0), anchor="mm")
    return np.asarray(picture)


def ask_marks(
    client: ChatClient, result: SavedResult, question: str, labels: dict[int, str] | None = None, num_views: int = 2
) -> AskResult:
    """One request with every instance drawn as a numbered mark (module docstring)."""
    views = marks_views(result, num_views)
    marks = sorted({int(i) for v in views for i in np.unique(result.instances.labels[v]) if i != 0})
    prompt, table = _with_table(MARKS_PROMPT.format(question=question), result, question, labels)
    images = [png_bytes(draw_marks(result.predictions.images[v], result.instances.labels[v])) for v in views]
    answer = client.complete([text_part(prompt), *[image_part(png) for png in images]])
    named, ignored = parse_marks(answer, marks)
    notes = [f"the answer named numbers that are no mark, ignored: {ignored}"] if ignored else []
    return AskResult(question, "marks", named, [Exchange(prompt, images, answer, views=views)], notes, table)


def ground_by_text(
    result: SavedResult, backend: ImageTextBackend, question: str, top_k: int = 1, config: OpenVocabConfig | None = None
) -> AskResult:
    """Without a chat endpoint: the ``top_k`` instances the image-text backend ranks first for the question."""
    ranking = query(result, backend, question, config)
    note = f"no --endpoint: grounded by the {backend.name} backend's text query; no chat model was asked"
    return AskResult(question, "text_query", [i for i, _ in ranking[:top_k]], [], [note])
