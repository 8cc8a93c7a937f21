"""Review state of a structure set: per structure a status, comment, reviewer and time, and the history.

Kept in two places that say the same: a sidecar JSON (:meth:`ReviewState.save` / :meth:`ReviewState.load`,
written atomically, next to exported files) and tags on the segments of a segmentation node
(:func:`to_segment_tags` / :func:`from_segment_tags`; Slicer saves segment tags in ``.seg.nrrd`` and ``.mrb``).
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

from ..errors import ImgSuiteError
from ..io.atomic import atomic_path

STATUSES = ("unreviewed", "approved", "needs-edit", "rejected")
TAG_PREFIX = "ImgSuiteReview."  # segment tag names: ImgSuiteReview.status, .comment, .reviewer, .time, .history
FORMAT = "SlicerImgSuite review 1"


def now_iso() -> str:
    """The current local time, ISO 8601 with offset, to the second."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass
class Change:
    """One status change: who, when, from -> to, and the comment given with it."""

    reviewer: str
    time: str
    from_status: str
    to_status: str
    comment: str = ""


@dataclass
class StructureReview:
    """The review of one structure."""

    status: str = "unreviewed"
    comment: str = ""
    reviewer: str = ""
    time: str = ""
    history: list[Change] = field(default_factory=list)
    fingerprint: str = ""  # digest of the contours decided on (a review resumed on changed contours resets it)


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise ImgSuiteError(f"unknown review status {status!r}; one of {', '.join(STATUSES)}")
    return status


class ReviewState:
    """Statuses of the structures of one structure set.

    Examples
    --------
    >>> s = ReviewState(["GTV", "Heart"])
    >>> s.set_status("GTV", "approved", reviewer="Dr A", comment="fine")
    >>> s.set_status("GTV", "needs-edit", reviewer="Dr B")
    >>> s["GTV"].status, [(c.from_status, c.to_status) for c in s["GTV"].history]
    ('needs-edit', [('unreviewed', 'approved'), ('approved', 'needs-edit')])
    >>> s.all_approved()
    False
    """

    def __init__(self, names=(), structures: dict[str, StructureReview] | None = None, frame_of_reference: str = ""):
        self.structures: dict[str, StructureReview] = dict(structures or {})
        self.frame_of_reference = frame_of_reference  # of the CT reviewed on ("" unknown): the scan, the patient
        for name in names:
            self.structures.setdefault(str(name), StructureReview())

    def __getitem__(self, name: str) -> StructureReview:
        if name not in self.structures:
            raise ImgSuiteError(f"no structure {name!r} in the review; it holds {list(self.structures)}")
        return self.structures[name]

    def __contains__(self, name) -> bool:
        return name in self.structures

    def names(self) -> list[str]:
        return list(self.structures)

    def status(self, name: str) -> str:
        return self[name].status

    def set_status(self, name: str, status: str, *, reviewer: str, comment: str = "", time: str | None = None) -> None:
        """Set a structure's status; the change (who, when, from -> to) goes to its history."""
        check_status(status)
        if not str(reviewer).strip():
            raise ImgSuiteError("a review status needs the reviewer's name")
        s = self.structures.setdefault(name, StructureReview())
        when = time or now_iso()
        s.history.append(Change(str(reviewer), when, s.status, status, comment))
        s.status, s.comment, s.reviewer, s.time = status, comment, str(reviewer), when

    def all_approved(self, names=None) -> bool:
        """Whether every structure (of ``names``, default all) is approved (False for none)."""
        names = self.names() if names is None else list(names)
        return bool(names) and all(self[n].status == "approved" for n in names)

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.structures.values()) for s in STATUSES}

    def to_dict(self) -> dict:
        out = {"format": FORMAT, "structures": {n: asdict(r) for n, r in self.structures.items()}}
        return out | ({"frame_of_reference": self.frame_of_reference} if self.frame_of_reference else {})

    @classmethod
    def from_dict(cls, data: dict, where=None) -> ReviewState:
        try:
            structures = {}
            for name, r in data["structures"].items():
                history = [Change(**c) for c in r.get("history", [])]
                for change in history:  # a history the Review tab shows: only statuses it knows
                    if {change.from_status, change.to_status} - set(STATUSES):
                        raise ImgSuiteError(f"structure {name!r}: history change {change.from_status!r} -> "
                                            f"{change.to_status!r}; statuses are {', '.join(STATUSES)}", where)
                if r["status"] not in STATUSES:
                    raise ImgSuiteError(
                        f"structure {name!r}: unknown review status {r['status']!r}; one of {', '.join(STATUSES)}", where
                    )
                text = {key: r.get(key, "") for key in ("comment", "reviewer", "time", "fingerprint")}
                for key, value in text.items():
                    if not isinstance(value, str):
                        raise ImgSuiteError(f"structure {name!r}: {key} {value!r} is not text", where)
                structures[name] = StructureReview(r["status"], history=history, **text)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ImgSuiteError(f"not a review state ({type(exc).__name__}: {exc})", where) from None
        frame = data.get("frame_of_reference", "")
        if not isinstance(frame, str):
            raise ImgSuiteError(f"frame_of_reference {frame!r} is not text", where)
        return cls(structures=structures, frame_of_reference=frame)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the state as JSON, atomically (a crash leaves the previous file)."""
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ReviewState:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ImgSuiteError("no such review file", path) from None
        except (OSError, ValueError) as exc:
            raise ImgSuiteError(f"cannot read the review file ({exc})", path) from None
        return cls.from_dict(data, path)


def review_tags(review: StructureReview) -> dict[str, str]:
    """The segment tags that hold one structure's review.

    Values are percent-encoded (``:``, ``|``, ``%``, line breaks...): ``.seg.nrrd`` stores a segment's tags
    as ``name:value|name:value|`` in one header line.
    """
    values = {
        "status": review.status,
        "comment": review.comment,
        "reviewer": review.reviewer,
        "time": review.time,
        "history": json.dumps([asdict(c) for c in review.history]),
    }
    return {TAG_PREFIX + k: quote(v, safe=" ,.-_@/()[]{}\"'") for k, v in values.items()}


def review_from_tags(tags: dict[str, str]) -> StructureReview | None:
    """A structure's review from its segment tags (None when it has none)."""
    if TAG_PREFIX + "status" not in tags:
        return None
    tags = {k: unquote(v) for k, v in tags.items()}
    try:
        history = [Change(**c) for c in json.loads(tags.get(TAG_PREFIX + "history", "[]") or "[]")]
    except (ValueError, TypeError):
        history = []
    return StructureReview(
        check_status(tags[TAG_PREFIX + "status"]),
        tags.get(TAG_PREFIX + "comment", ""),
        tags.get(TAG_PREFIX + "reviewer", ""),
        tags.get(TAG_PREFIX + "time", ""),
        history,
    )


def to_segment_tags(state: ReviewState, segmentation) -> None:
    """Write the state onto the segments (by name) of a vtkMRMLSegmentationNode or vtkSegmentation."""
    seg = segmentation.GetSegmentation() if hasattr(segmentation, "GetSegmentation") else segmentation
    for n in range(seg.GetNumberOfSegments()):
        segment = seg.GetNthSegment(n)
        if segment.GetName() in state:
            for key, value in review_tags(state[segment.GetName()]).items():
                segment.SetTag(key, value)


def from_segment_tags(segmentation) -> ReviewState:
    """The review state held in a segmentation's tags (segments without tags are unreviewed)."""
    seg = segmentation.GetSegmentation() if hasattr(segmentation, "GetSegmentation") else segmentation
    structures = {}
    for n in range(seg.GetNumberOfSegments()):
        segment = seg.GetNthSegment(n)
        tags = {}
        for key in ("status", "comment", "reviewer", "time", "history"):
            value = _get_tag(segment, TAG_PREFIX + key)
            if value is not None:
                tags[TAG_PREFIX + key] = value
        structures[segment.GetName()] = review_from_tags(tags) or StructureReview()
    return ReviewState(structures=structures)


def _get_tag(segment, name: str) -> str | None:
    import vtk

    value = vtk.reference("")
    return str(value) if segment.GetTag(name, value) else None
