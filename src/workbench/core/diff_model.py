"""A diff as files of hunks: what the review, the daemon's replies and the UI work on.

A FileDiff keeps what git said about one file (status, modes, similarity, index line,
binary patch) so that `render` writes it back as a `git apply`-able patch; `to_json` is its
wire form, with undecodable bytes shown as U+FFFD. The hunks are core/diff_hunk.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from workbench.core.diff_hunk import Hunk, display_text
from workbench.core.git_paths import quote_header_path, quote_path
from workbench.errors import NotFound

FileStatus = Literal["added", "modified", "deleted", "renamed", "copied", "typechange"]


@dataclass(slots=True)
class FileDiff:
    path: str
    old_path: str | None
    status: FileStatus
    binary: bool
    added: int
    removed: int
    hunks: list[Hunk]
    mode_change: tuple[str, str] | None = None
    old_mode: str | None = None
    new_mode: str | None = None
    similarity: int | None = None
    index: str | None = None  # "abc123..def456" from git's index line
    binary_patch: str | None = field(default=None, repr=False)  # "GIT binary patch" payload

    @property
    def is_symlink(self) -> bool:
        return "120000" in (self.old_mode, self.new_mode)

    def to_json(self, lines: Callable[[Hunk], Any] = Hunk.rows) -> dict[str, Any]:
        """The wire form; `lines` gives a hunk's lines (its rows, or those rows encoded)."""
        return {
            "path": display_text(self.path),
            "old_path": display_text(self.old_path) if self.old_path is not None else None,
            "status": self.status,
            "binary": self.binary,
            "added": self.added,
            "removed": self.removed,
            "mode_change": list(self.mode_change) if self.mode_change else None,
            "old_mode": self.old_mode,
            "new_mode": self.new_mode,
            "hunks": [
                {
                    "id": h.id,
                    "header": display_text(h.header),
                    "old_start": h.old_start,
                    "old_lines": h.old_lines,
                    "new_start": h.new_start,
                    "new_lines": h.new_lines,
                    "lines": lines(h),
                }
                for h in self.hunks
            ],
        }

    def render(self) -> str:
        """This file's part of a `git apply`-able patch."""
        if self.status == "typechange":
            gone = FileDiff(
                self.path,
                None,
                "deleted",
                self.binary,
                0,
                0,
                [h for h in self.hunks if _only_removals(h)],
                old_mode=self.old_mode,
            )
            new = FileDiff(
                self.path,
                None,
                "added",
                self.binary,
                0,
                0,
                [h for h in self.hunks if not _only_removals(h)],
                new_mode=self.new_mode,
            )
            return gone.render() + new.render()
        old = self.old_path if self.old_path is not None else self.path
        out = [f"diff --git {quote_path('a/' + old)} {quote_path('b/' + self.path)}\n"]
        if self.status == "added":
            out.append(f"new file mode {self.new_mode or '100644'}\n")
        elif self.status == "deleted":
            out.append(f"deleted file mode {self.old_mode or '100644'}\n")
        if self.mode_change:
            out.append(f"old mode {self.mode_change[0]}\nnew mode {self.mode_change[1]}\n")
        if self.status in ("renamed", "copied"):
            verb = "rename" if self.status == "renamed" else "copy"
            if self.similarity is not None:
                out.append(f"similarity index {self.similarity}%\n")
            out.append(f"{verb} from {quote_path(old)}\n{verb} to {quote_path(self.path)}\n")
        if self.index:
            mode = (
                f" {self.new_mode}"
                if self.status in ("modified", "renamed", "copied")
                and not self.mode_change
                and self.new_mode
                else ""
            )
            out.append(f"index {self.index}{mode}\n")
        src = "/dev/null" if self.status == "added" else quote_header_path("a/" + old)
        dst = "/dev/null" if self.status == "deleted" else quote_header_path("b/" + self.path)
        if self.binary:
            if self.binary_patch is not None:
                out.append("GIT binary patch\n" + self.binary_patch)
            else:
                out.append(f"Binary files {src} and {dst} differ\n")
        if self.hunks:  # (never both from git; kept so odd input round-trips)
            out.append(f"--- {src}\n+++ {dst}\n")
            out.extend(h.render() for h in self.hunks)
        return "".join(out)


def _only_removals(h: Hunk) -> bool:
    return all(ln.kind == "-" for ln in h.lines)


@dataclass(slots=True)
class Diff:
    base: str
    files: list[FileDiff]
    digest: str = ""  # hash of git's output: equal digests, equal diffs
    # Files changed but not listed (a bounded diff of a huge change; their lines not counted).
    more_files: int = 0
    # What the diff leaves out and why ("too large to review: big.bin (2.0 GB)").
    notes: list[str] = field(default_factory=list)
    # Build artefacts the session added (core/review_noise.py): not in `files`, not
    # reviewed, not merged. Paths (the first MAX_LISTED_FILES), their count, where they are.
    ignored: list[str] = field(default_factory=list)
    ignored_count: int = 0
    ignored_where: list[str] = field(default_factory=list)

    def stat(self) -> tuple[int, int, int]:
        """(files changed, lines added, lines removed)."""
        return (
            len(self.files) + self.more_files,
            sum(f.added for f in self.files),
            sum(f.removed for f in self.files),
        )

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "files": [f.to_json() for f in self.files]}

    def unified(self) -> str:
        return "".join(f.render() for f in self.files)

    def find_hunk(self, hunk_id: str) -> tuple[FileDiff, Hunk]:
        for f in self.files:
            for h in f.hunks:
                if h.id == hunk_id:
                    return f, h
        raise NotFound(f"hunk {hunk_id!r} no longer exists; refresh the diff")

    def file(self, path: str) -> FileDiff:
        for f in self.files:
            if path in (f.path, f.old_path):
                return f
        raise NotFound(f"{path!r} has no changes against the base")
