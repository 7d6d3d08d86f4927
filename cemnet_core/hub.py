"""Weights bundles on the Hugging Face Hub: ``hf://OWNER/REPO[@REVISION]``, downloaded and checked; uploads.

A weights bundle (:mod:`cemnet_core.bundle`: one release folder per trained network of Fig. 2 of the paper)
published as a Hub model repo is named ``hf://OWNER/REPO``, or ``hf://OWNER/REPO@REVISION`` pinned to a
commit (or a tag or branch). :func:`download_bundle` fetches the repo with
``huggingface_hub.snapshot_download`` into the Hub cache (:func:`cemnet_core.weights.hub_cache_dir`) from
``HF_ENDPOINT`` (default the Hub), reads only the cache when ``HF_HUB_OFFLINE`` is set, warns
(:class:`UnpinnedBundleWarning`) when no revision pins what it gets, and checks every release folder against
its ``checksums.json`` (:func:`cemnet_core.release.verify_manifest`): a damaged file is a ``ChecksumError``
naming it, and that release's cached copy is deleted, so the next download fetches it again.
:func:`upload_bundle` publishes the files of a bundle with ``HfApi.create_repo`` + ``HfApi.upload_folder``;
which files those are, checked first, is :func:`cemnet_core.bundle.bundle_files`
(:func:`cemnet_core.bundle.push_bundle` chains the two).

With :mod:`cemnet_core.weights` (the registry of third-party files, whose endpoint, cache and offline
helpers it uses), the only module that touches the network.
"""

from __future__ import annotations

import glob
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from cemnet_core import weights
from cemnet_core.errors import ChecksumError, InputError, WeightsError
from cemnet_core.release import CHECKSUMS_FILE, MODEL_FILE, verify_manifest

HUB_SCHEME = "hf://"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REPO_ID = re.compile(rf"^{_NAME}/{_NAME}$")
_HUB_NAME = re.compile(rf"^hf://(?P<repo>{_NAME}/{_NAME})(?:@(?P<revision>[A-Za-z0-9._/-]+))?$")
_FORM = "hf://OWNER/REPO or hf://OWNER/REPO@REVISION (REVISION: a commit, tag or branch)"


class UnpinnedBundleWarning(UserWarning):
    """A Hub bundle named without a revision: the same name may download other weights later."""


@dataclass(frozen=True)
class HubBundle:
    """A weights bundle on the Hub: its model repo and the revision asked for (None: the default branch)."""

    repo_id: str
    revision: str | None = None

    def __str__(self) -> str:
        return HUB_SCHEME + self.repo_id + (f"@{self.revision}" if self.revision else "")


def is_hub_name(weights_name: str | os.PathLike[str]) -> bool:
    """True when ``weights_name`` is meant as a Hub bundle (``hf:`` prefix; ``Path`` turns ``hf://`` into
    ``hf:/``, which :func:`parse_hub_name` then refuses with the form to use)."""
    return str(weights_name).startswith("hf:")


def parse_hub_name(text: str) -> HubBundle:
    """``hf://OWNER/REPO[@REVISION]`` as a :class:`HubBundle`.

    Raises:
        InputError: ``text`` has another form (the message shows the one to use).
    """
    match = _HUB_NAME.match(text)
    if match is None or ".." in match["repo"] or "--" in match["repo"]:
        raise InputError(f"{text!r} is not a Hub weights bundle; write {_FORM}")
    return HubBundle(match["repo"], match["revision"])


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` when it is ``OWNER/REPO`` (an ``hf://`` prefix is dropped); InputError otherwise."""
    repo_id = repo_id.removeprefix(HUB_SCHEME)
    if not _REPO_ID.match(repo_id) or ".." in repo_id or "--" in repo_id:
        raise InputError(f"{repo_id!r} is not a Hub repo; write OWNER/REPO, e.g. cemnet/cemnet-mead")
    return repo_id


def _where() -> str:
    return weights.hub_endpoint() or "https://huggingface.co"


def download_bundle(bundle: HubBundle) -> Path:
    """The local snapshot folder of ``bundle``, from the Hub cache or downloaded, every release checked.

    Warns with :class:`UnpinnedBundleWarning` when ``bundle.revision`` is None.

    Raises:
        WeightsError: the repo or revision does not exist, the Hub cannot be reached (or HF_HUB_OFFLINE is
            set) and the cache lacks it, or a release folder has no ``checksums.json``.
        ChecksumError: a file differs from its release's ``checksums.json`` (the message names it).
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    local_only, cache = weights.offline(), weights.hub_cache_dir()
    if not local_only:
        weights.allow_hub_requests()
    try:
        with weights.hub_quietly():
            fetched = snapshot_download(
                bundle.repo_id,
                revision=bundle.revision,
                cache_dir=cache,
                endpoint=weights.hub_endpoint(),
                local_files_only=local_only,
            )
        folder = Path(fetched)
    except LocalEntryNotFoundError as exc:
        if local_only:
            raise WeightsError(
                f"{bundle} is not (completely) in the Hub cache {cache} and HF_HUB_OFFLINE is set; unset "
                "HF_HUB_OFFLINE to download it once, or pass --weights a local bundle folder"
            ) from exc
        raise WeightsError(
            f"cannot reach {_where()} to download {bundle}, and the Hub cache {cache} does not hold it; "
            "check the network (or HF_ENDPOINT) and retry"
        ) from exc
    except RevisionNotFoundError as exc:
        raise WeightsError(
            f"{bundle}: the repo has no revision {bundle.revision!r}; give one of its commits, tags or "
            "branches"
        ) from exc
    except RepositoryNotFoundError as exc:  # also a gated repo
        raise WeightsError(
            f"{bundle}: no such model repo on {_where()}; check the name, or log in (`hf auth login` or "
            "HF_TOKEN) if it is private or gated"
        ) from exc
    except HFValidationError as exc:
        raise InputError(f"{str(bundle)!r} is not a Hub weights bundle; write {_FORM}") from exc
    except HfHubHTTPError as exc:
        raise WeightsError(
            f"{_where()} answered HTTP {exc.response.status_code} to the download of {bundle}; retry later"
        ) from exc
    except Exception as exc:  # connection drops during a file, disk errors: many types, no text pasted
        raise WeightsError(
            f"cannot download {bundle} from {_where()} ({type(exc).__name__}); check the network and the "
            f"free space of the Hub cache {cache}, and retry"
        ) from exc
    if bundle.revision is None:
        warnings.warn(
            f"{bundle} is not pinned: it gave commit {folder.name} now and may give other weights later; "
            f"use {HUB_SCHEME}{bundle.repo_id}@{folder.name} to get these ones every time",
            UnpinnedBundleWarning,
            stacklevel=3,
        )
    _verify_snapshot(folder, bundle)
    return folder


def _verify_snapshot(folder: Path, bundle: HubBundle) -> None:
    """Check every release folder of a downloaded snapshot; delete the cached copy of one that fails."""
    releases = sorted({path.parent for name in (MODEL_FILE, CHECKSUMS_FILE) for path in folder.rglob(name)})
    if not releases:
        raise WeightsError(
            f"{bundle} holds no release folder ({MODEL_FILE} + config.json + {CHECKSUMS_FILE}); it is not a "
            "weights bundle (publish one with `cemnet weights push BUNDLE OWNER/REPO`)"
        )
    for release in releases:
        try:
            checked = verify_manifest(release)
        except ChecksumError:
            for path in release.iterdir():
                if path.is_file() or path.is_symlink():
                    weights.discard_bad_download(path)  # the next download fetches them again
            raise
        if not checked:
            raise WeightsError(
                f"{bundle}: {release.relative_to(folder)}/ has no {CHECKSUMS_FILE}, so its download cannot "
                "be checked; publish the bundle with `cemnet weights push`, which requires one per release"
            )


def upload_bundle(
    folder: str | os.PathLike[str],
    files: list[str],
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool = False,
) -> HubBundle:
    """Upload ``files`` (paths relative to ``folder``) to the model repo ``repo_id``, created if missing.

    revision: the branch to commit to (created from the default branch if missing); None: the default branch.
    Returns the bundle pinned to the new commit.

    Raises:
        WeightsError: HF_HUB_OFFLINE is set, the Hub refuses (no write access) or cannot be reached.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    repo_id = check_repo_id(repo_id)
    if weights.offline():
        raise WeightsError(
            "HF_HUB_OFFLINE is set, so nothing can be pushed; unset it (--dry-run lists the files)"
        )
    weights.allow_hub_requests()
    api = HfApi(endpoint=weights.hub_endpoint())
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        with weights.hub_quietly():
            commit = api.upload_folder(
                folder_path=folder,
                repo_id=repo_id,
                revision=revision,
                allow_patterns=[glob.escape(name) for name in files],  # exactly these files
                commit_message=f"CEM-Net weights bundle ({len(files)} files)",
            )
    except HfHubHTTPError as exc:
        status = exc.response.status_code
        how = "log in with `hf auth login` (or set HF_TOKEN) as a user who may write to it"
        raise WeightsError(
            f"{_where()} refused the push to {repo_id} (HTTP {status}); "
            + (how if status in (401, 403, 404) else "retry later")
        ) from exc
    except Exception as exc:  # connection errors of many types; no text pasted
        raise WeightsError(
            f"cannot push to {repo_id} on {_where()} ({type(exc).__name__}); check the network and retry"
        ) from exc
    return HubBundle(repo_id, commit.oid)
