"""Which files in a folder have changes git has not committed (`new --force` asks before
replacing them). Git is optional: without it, or outside a work tree, nothing is reported."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

TIMEOUT_SECONDS = 30


class GitError(Exception):
    """git is there but could not answer; the message says why."""


def uncommitted(folder: Path, paths: list[str]) -> list[str]:
    """The paths (relative to folder) that are modified, staged, untracked or in conflict."""
    if not paths:
        return []
    prefix = _git(folder, "rev-parse", "--show-prefix")
    if prefix is None:
        return []  # not in a work tree (or no git)
    prefix = prefix.strip()
    # -z: paths exactly as they are; porcelain paths are relative to the repository's top
    listing = _git(
        folder,
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--",
        *(f":(literal){path}" for path in paths),
    )
    wanted = set(paths)
    found = []
    entries = iter((listing or "").split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        if entry[0] in "RC":
            next(entries, None)  # a rename or copy is followed by its source path
        path = entry[3:]
        if path.startswith(prefix) and path[len(prefix) :] in wanted:
            found.append(path[len(prefix) :])
    return sorted(found)


def _git(folder: Path, *args: str) -> str | None:
    """git's stdout; None when git is missing or folder is not in a work tree."""
    env = dict(os.environ, LC_ALL="C", GIT_OPTIONAL_LOCKS="0")  # a read must not take locks
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=folder,
            env=env,
            capture_output=True,
            encoding="utf-8",
            errors="surrogateescape",
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        return None
    except (OSError, subprocess.TimeoutExpired) as err:
        raise GitError(str(err)) from None
    if done.returncode == 0:
        return done.stdout
    message = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    if "not a git repository" in message or "must be run in a work tree" in message:
        return None
    raise GitError(message or f"git {args[0]} exited with {done.returncode}")


def have_git() -> bool:
    return shutil.which("git") is not None


def first_commit(folder: Path, message: str) -> str:
    """git init in folder (unless it is inside a work tree already), add everything, commit.

    Returns what was done, for the user. Without a configured identity git refuses to commit;
    then the commit is made as "scaffold", which the user can amend with their own name.
    """
    inside = _git(folder, "rev-parse", "--show-toplevel")
    if inside is None:
        _git(folder, "init", "--quiet")
    _git(folder, "add", "--all", "--", ".")
    identity = []
    if not (_git_config(folder, "user.name") and _git_config(folder, "user.email")):
        identity = ["-c", "user.name=scaffold", "-c", "user.email=scaffold@localhost"]
    # only the project's paths: whatever else the user had staged stays staged
    _git(folder, *identity, "commit", "--quiet", "--no-verify", "-m", message, "--", ".")
    where = f"existing repository {inside.strip()}" if inside else "new repository"
    who = " as 'scaffold' (no git identity configured)" if identity else ""
    return f"committed the project to the {where}{who}"


def _git_config(folder: Path, key: str) -> str:
    try:
        return (_git(folder, "config", "--get", key) or "").strip()
    except GitError:
        return ""  # `config --get` exits 1 when the key is not set
