"""Suggestions: work workbench found in a repository (failing check, linters, TODOs, CI,
issues, a log), listed, started as a session, or dismissed. docs/suggestions.md."""

from typing import Literal, NotRequired, TypedDict

from workbench.protocol.method import Method
from workbench.protocol.session import SessionInfo

Source = Literal["check", "lint", "todo", "ci", "issue", "log"]


class Suggestion(TypedDict):
    id: str  # stable: from the repository, the source and the source's key
    repo: str
    source: Source
    title: str  # one line
    evidence: str  # file:line and/or the failing output, truncated
    prompt: str  # ready to run; carries the evidence
    rank: float  # higher first within the list
    locations: list[str]  # file:line of the evidence, where known
    sessions: list[str]  # ids of sessions started on it that are still there


class SuggestParams(TypedDict):
    repo: str
    # also run the repository's check now (else it runs on a schedule and after a merge)
    refresh: NotRequired[bool]
    # wait for a scan of the current HEAD (default); false: reply at once with what is cached
    wait: NotRequired[bool]


class SuggestReply(TypedDict):
    repo: str
    head: str
    scanned_at: float | None
    scanning: bool
    suggestions: list[Suggestion]
    dismissed: int  # how many were left out as dismissed
    errors: list[str]  # sources that could not run, one line each


class SuggestIdParams(TypedDict):
    id: str


class SuggestStartParams(TypedDict):
    id: str
    agent: NotRequired[str]
    attempts: NotRequired[int]
    # the prompt as edited by the person (default: the suggestion's)
    prompt: NotRequired[str]


class SuggestStartResult(TypedDict):
    suggestion: str
    sessions: list[SessionInfo]
    group: NotRequired[str]
    warnings: list[str]


class SuggestDismissResult(TypedDict):
    dismissed: str


SUGGEST: Method[SuggestParams, SuggestReply] = Method("suggest", SuggestParams, slow=True)
SUGGEST_START: Method[SuggestStartParams, SuggestStartResult] = Method("suggest_start", SuggestStartParams, slow=True)
SUGGEST_DISMISS: Method[SuggestIdParams, SuggestDismissResult] = Method("suggest_dismiss", SuggestIdParams)
