"""Files of ``iggt ask``: what was sent and answered, the answer, and the answer highlighted.

``request_NNN.json`` (endpoint, model, prompt, the images' file names, the instance or views it
is about; never the API key), ``images/request_NNN_K.png`` (the images exactly as sent),
``answers/answer_NNN.txt`` (raw replies), ``answer.json`` (question, mode, instance IDs, notes)
and the answer's instances highlighted: ``views/highlight_NNN.png`` and ``points.ply``.
"""

from __future__ import annotations

from pathlib import Path

from iggt.structures.strict_json import write_strict_json
from iggt.tasks.highlight import write_highlights
from iggt.tasks.qa import AskResult
from iggt.tasks.result import SavedResult


def write_answer(result: SavedResult, answer: AskResult, request_info: dict, folder: Path) -> list[Path]:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "answers").mkdir(exist_ok=True)
    written = []
    for number, exchange in enumerate(answer.exchanges):
        image_names = []
        for index, png in enumerate(exchange.images):
            path = folder / "images" / f"request_{number:03d}_{index}.png"
            path.write_bytes(png)
            image_names.append(str(path.relative_to(folder)))
            written.append(path)
        answer_path = folder / "answers" / f"answer_{number:03d}.txt"
        answer_path.write_text(exchange.answer)
        request = {
            **request_info,
            "prompt": exchange.prompt,
            "images": image_names,
            "instance_id": exchange.instance_id,
            "views": exchange.views,
            "answer_file": str(answer_path.relative_to(folder)),
        }
        written += [answer_path, write_strict_json(folder / f"request_{number:03d}.json", request)]
    document = {
        "question": answer.question,
        "mode": answer.mode,
        "instance_ids": answer.instance_ids,
        "notes": answer.notes,
        "scene_table": answer.context,
        **request_info,
    }
    written.append(write_strict_json(folder / "answer.json", document))
    return written + write_highlights(result, answer.instance_ids, folder)
