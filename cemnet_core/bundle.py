"""What a weights bundle is: the release folder of each role of the CEM-Net pipeline, and its ablations.

A weights bundle (``cemnet generate --weights DST``) is a folder with one release folder
(:mod:`cemnet_core.release`) per trained network of Fig. 2 of the paper, as ``cemnet export RUN DST`` writes
them: every training stage exports into ``DST/<folder>/`` with the folder of its role here
(:func:`release_spec`, used by each stage's ``releases()``). For each role :data:`WEIGHT_BUNDLE_LAYOUT`
gives (model kind, folder names tried in order): the first is what export writes, the rest are aliases.
Beside them a bundle may hold ``syncnet/`` (:data:`OPTIONAL_LAYOUT`), the LipSync judge evaluation uses.

The Table IV ablations (Sec. IV-F) are other trained networks in ``<bundle>/ablations/<name>/``
(:data:`ABLATION_LAYOUT`: only the listed roles differ from the full model):

- ``"aee"`` ("w/o AEE"): ``ablations/wo_aee/{emotion_enhancer,emotion_memory}/``;
- ``"ebm"`` ("w/o EBM"): ``ablations/wo_ebm/emotion_memory/``;
- ``"a2m"`` (:data:`A2M_BASELINE`, "Audio2Mouth without emotion") needs no extra weights.

A bundle is named by a path, by a name under ``$CEMNET_WEIGHTS_DIR``, by a bundle entry of ``weights.toml``
(:data:`STARTER`, the starter release shipped inside the package, or a Hub bundle pinned there), or as a Hub
model repo ``hf://OWNER/REPO[@REVISION]`` (:mod:`cemnet_core.hub`, which downloads and checks it;
:func:`push_bundle` publishes one, :func:`bundle_files` lists what it sends). Without a name
(:func:`resolve_bundle`) it is ``$CEMNET_WEIGHTS_DIR/cemnet`` when that folder exists, else :data:`STARTER`.
:func:`load_bundle` loads the frozen network of every role for one variant and refuses an EBM that does not
fit it (:meth:`cemnet_core.pipeline.CEMNetPipeline.from_bundle` chains them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from cemnet_core import hub
from cemnet_core.errors import ConfigError, WeightsError
from cemnet_core.release import load_model, verified_files
from cemnet_core.weights import get_entry, registry, resolve, verify_file

DEFAULT_BUNDLE = "cemnet"  # $CEMNET_WEIGHTS_DIR/cemnet when --weights is not given, if it exists ...
STARTER = "cemnet.starter"  # ... else the starter release shipped in the package (weights.toml)
MODEL_CARD = "README.md"  # a bundle's model card (`cemnet weights show`)
# role -> (model kind, folder names tried in order; the first is what `cemnet export` writes).
WEIGHT_BUNDLE_LAYOUT: dict[str, tuple[str, tuple[str, ...]]] = {
    "audio_to_mouth": ("audio_to_mouth", ("audio_to_mouth", "a2m")),
    "emotion_enhancer": ("emotion_enhancer", ("emotion_enhancer", "aee")),
    "image_emotion": ("image_emotion", ("image_emotion",)),
    "emotion_memory": ("emotion_memory", ("emotion_memory", "ebm")),
    "renderer": ("renderer", ("renderer",)),
}
# Releases a bundle may hold beside the pipeline's, in the same form: the LipSync judge (evaluation only).
OPTIONAL_LAYOUT: dict[str, tuple[str, tuple[str, ...]]] = {
    "syncnet": ("syncnet", ("syncnet",)),
}
# Table IV ablation -> (sub-folder of <bundle>/ablations/, roles whose release folders it replaces).
ABLATIONS_FOLDER = "ablations"
ABLATION_LAYOUT: dict[str, tuple[str, tuple[str, ...]]] = {
    "aee": ("wo_aee", ("emotion_enhancer", "emotion_memory")),
    "ebm": ("wo_ebm", ("emotion_memory",)),
}
A2M_BASELINE = "a2m"  # Audio2Mouth without emotion: no EBM, no extra weights
VARIANTS = (None, *ABLATION_LAYOUT, A2M_BASELINE)


def export_folder(role: str) -> str:
    """The folder name ``cemnet export`` writes ``role``'s release into (the first of its layout row)."""
    return {**WEIGHT_BUNDLE_LAYOUT, **OPTIONAL_LAYOUT}[role][1][0]


def release_spec(role: str, model: str, config: Any) -> dict[str, tuple[str, str, Any]]:
    """A stage's ``releases()`` for ``role``: ``{folder: (model name in the task, kind, config)}``.

    The folder is the one export writes for that role (the first name in its layout row).
    """
    kind = {**WEIGHT_BUNDLE_LAYOUT, **OPTIONAL_LAYOUT}[role][0]
    return {export_folder(role): (model, kind, config)}


def ablation_folder(bundle: str | os.PathLike[str], ablation: str) -> Path:
    """``<bundle>/ablations/<name>/``: where the release folders of a Table IV ``ablation`` go."""
    return Path(bundle) / ABLATIONS_FOLDER / ABLATION_LAYOUT[ablation][0]


def resolve_bundle(weights: str | os.PathLike[str] | None) -> Path:
    """A weights folder: an existing folder, a named bundle ``$CEMNET_WEIGHTS_DIR/<name>``, a bundle entry of
    ``weights.toml`` (checked against its digest), or a Hub bundle ``hf://OWNER/REPO[@REVISION]``
    downloaded into the Hub cache and checked (:func:`cemnet_core.hub.download_bundle`; it warns when no
    revision pins it). None: ``$CEMNET_WEIGHTS_DIR/cemnet`` if it exists, else the shipped :data:`STARTER`.

    Raises:
        WeightsError: no such folder; the Hub bundle cannot be had (offline, unknown repo or revision).
        ChecksumError: a file of a downloaded release differs from its ``checksums.json``, or a registered
            bundle from its digest.
        InputError: a malformed ``hf://`` name.
    """
    root = os.environ.get("CEMNET_WEIGHTS_DIR", "")
    if weights is None:
        default = Path(root) / DEFAULT_BUNDLE
        return default if root and default.is_dir() else _registered_bundle(STARTER)
    name = str(weights)
    if hub.is_hub_name(name):
        return hub.download_bundle(hub.parse_hub_name(name))
    if Path(name).is_dir():
        return Path(name)
    if root and "/" not in name and (Path(root) / name).is_dir():
        return Path(root) / name
    if name in registry():
        return _registered_bundle(name)
    raise WeightsError(
        f"no weights folder {name!r} (nor {name!r} under CEMNET_WEIGHTS_DIR, nor a bundle of weights.toml: "
        f"{', '.join(bundle_names())}); train the stages and `cemnet export RUN DST` each into one folder, "
        "then pass --weights DST"
    )


def bundle_names() -> list[str]:
    """The weights bundles of ``weights.toml`` (``cemnet weights list`` shows them with the files)."""
    return [name for name, entry in registry().items() if entry.bundle]


def _registered_bundle(name: str) -> Path:
    """The folder of a bundle entry of ``weights.toml``: shipped (checked against its digest) or from the
    Hub at its pinned revision (each release checked against its ``checksums.json``, then the digest)."""
    entry = get_entry(name)
    if not entry.bundle:
        raise WeightsError(f"{name} is one file of weights.toml, not a weights bundle; use one of "
                           f"{', '.join(bundle_names())}")  # fmt: skip
    if entry.package:
        return resolve(name)
    return verify_file(hub.download_bundle(hub.HubBundle(entry.repo_id, entry.revision)), entry)


def find_release(bundle: str | os.PathLike[str], role: str) -> Path:
    """The release folder of ``role`` (a key of :data:`WEIGHT_BUNDLE_LAYOUT`) inside a weights bundle.

    Raises:
        WeightsError: the bundle folder or the role's release folder is missing.
    """
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise WeightsError(f"weights folder {bundle} does not exist; give the folder `cemnet export` wrote")
    _, names = WEIGHT_BUNDLE_LAYOUT[role]
    for name in names:
        if (bundle / name).is_dir():
            return bundle / name
    layout = ", ".join(f"{names[0]}/" for _, names in WEIGHT_BUNDLE_LAYOUT.values())
    raise WeightsError(
        f"{bundle} has no {names[0]}/ release folder; a weights folder holds {layout} "
        f"(export each trained stage with `cemnet export RUN {bundle}`)"
    )


def find_optional_release(bundle: str | os.PathLike[str], role: str) -> Path | None:
    """The release folder of ``role`` (a key of :data:`OPTIONAL_LAYOUT`) in the bundle, or None."""
    _, names = OPTIONAL_LAYOUT[role]
    return next((Path(bundle) / name for name in names if (Path(bundle) / name).is_dir()), None)


def bundle_files(bundle: str | os.PathLike[str]) -> list[str]:
    """The files that publish a bundle, relative to it, checked: every role's release folder, the optional
    releases and the ablation releases present, each as its ``checksums.json`` and the files it lists.

    Raises:
        WeightsError: a role's release folder is missing, or a release has no ``checksums.json``.
        ChecksumError: a file differs from its release's ``checksums.json``.
    """
    bundle = Path(bundle)
    folders = [find_release(bundle, role) for role in WEIGHT_BUNDLE_LAYOUT]
    folders += [folder for role in OPTIONAL_LAYOUT if (folder := find_optional_release(bundle, role))]
    folders += [
        folder
        for ablation, (_, roles) in ABLATION_LAYOUT.items()
        for role in roles
        if (folder := ablation_folder(bundle, ablation) / WEIGHT_BUNDLE_LAYOUT[role][1][0]).is_dir()
    ]
    return [
        (folder / name).relative_to(bundle).as_posix()
        for folder in folders
        for name in verified_files(folder)
    ]


def push_bundle(
    bundle: str | os.PathLike[str],
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool = False,
    dry_run: bool = False,
) -> tuple[list[str], hub.HubBundle | None]:
    """Check a bundle folder (:func:`bundle_files`) and upload its files to the Hub model repo ``repo_id``.

    Returns the files and the bundle pinned to the new commit (None for ``dry_run``: nothing is sent).
    revision: the branch to commit to (default: the repo's default branch); private: a new repo's visibility.

    Raises:
        InputError: ``repo_id`` is not OWNER/REPO. WeightsError / ChecksumError: see :func:`bundle_files` and
            :func:`cemnet_core.hub.upload_bundle`.
    """
    repo_id = hub.check_repo_id(repo_id)
    if not Path(bundle).is_dir():
        raise WeightsError(f"weights folder {bundle} does not exist; give the folder `cemnet export` wrote")
    files = bundle_files(bundle)
    if dry_run:
        return files, None
    return files, hub.upload_bundle(bundle, files, repo_id, revision=revision, private=private)


def _ablation_help(bundle: Path, ablation: str) -> str:
    """How to train and export the release folders of ``ablation`` into ``bundle`` (for error messages)."""
    folder = ablation_folder(bundle, ablation)
    if ablation == "aee":
        return (
            "train the AEE by classification only and stop at its pre-training: `cemnet train aee --data D "
            f"--run R1 --steps P` (P = pretrain_steps), `cemnet export R1 {folder}`; then an EBM on it: "
            f"`cemnet train ebm --data D --run R2 --set aee={folder}/emotion_enhancer --set a2m=... "
            f"--set image_emotion=...`, `cemnet export R2 {folder}`"
        )
    return (
        "train an EBM without memories: `cemnet train ebm --data D --run R --set model.use_memory=false "
        f"--set a2m=... --set aee=... --set image_emotion=...`, then `cemnet export R {folder}`"
    )


def find_ablation_release(bundle: str | os.PathLike[str], ablation: str, role: str) -> Path:
    """The release folder of ``role`` for a Table IV ``ablation`` (a key of :data:`ABLATION_LAYOUT`).

    Raises:
        WeightsError: the folder is missing; the message says how to train and export it.
    """
    bundle = Path(bundle)
    folder = ablation_folder(bundle, ablation) / WEIGHT_BUNDLE_LAYOUT[role][1][0]
    if not folder.is_dir():
        raise WeightsError(
            f"{bundle} has no {folder.relative_to(bundle)}/ release folder for the "
            f'"w/o {ablation.upper()}" ablation; {_ablation_help(bundle, ablation)}'
        )
    return folder


def choose_variant(ablation: str | None, use_aee: bool = True, use_ebm: bool = True) -> str | None:
    """The variant of :data:`VARIANTS` that ``ablation`` and the ``use_aee`` / ``use_ebm`` switches name.

    ``use_aee=False`` is ``ablation="aee"``; ``use_ebm=False`` is ``ablation="a2m"``.

    Raises:
        ConfigError: an unknown ablation, or switches that contradict ``ablation``.
    """
    if ablation not in VARIANTS:
        raise ConfigError(f"unknown ablation {ablation!r}; use aee, ebm or a2m (or none for CEM-Net)")
    implied = [name for name, on in (("aee", not use_aee), (A2M_BASELINE, not use_ebm)) if on]
    if len(implied) > 1 or (implied and ablation not in (None, implied[0])):
        raise ConfigError(
            f"use_aee={use_aee}, use_ebm={use_ebm} and ablation={ablation!r} disagree; choose one ablation"
        )
    return ablation or (implied[0] if implied else None)


def load_bundle(bundle: str | os.PathLike[str], ablation: str | None = None) -> dict[str, nn.Module | None]:
    """The frozen network of every role of :data:`WEIGHT_BUNDLE_LAYOUT` for ``ablation`` (a key of
    :data:`VARIANTS`); ``emotion_memory`` is None for the :data:`A2M_BASELINE`.

    Raises:
        WeightsError: a release folder is missing (for an ablation: with how to train it), unreadable,
            does not fit its model, or an EBM does not fit the emotion encoder it is paired with.
    """
    bundle = Path(bundle)
    replaced = ABLATION_LAYOUT[ablation][1] if ablation in ABLATION_LAYOUT else ()
    models: dict[str, nn.Module | None] = {}
    for role, (kind, _) in WEIGHT_BUNDLE_LAYOUT.items():
        if role == "emotion_memory" and ablation == A2M_BASELINE:
            models[role] = None
        elif role in replaced:
            assert ablation is not None
            models[role] = load_model(find_ablation_release(bundle, ablation, role), kind)
        else:
            models[role] = load_model(find_release(bundle, role), kind)
    memory, enhancer = models["emotion_memory"], models["emotion_enhancer"]
    if memory is not None and enhancer is not None:
        _check_memory(memory, enhancer, ablation, bundle)
    return models


def _check_memory(memory: nn.Module, enhancer: nn.Module, ablation: str | None, bundle: Path) -> None:
    """Refuse an EBM that is not the one the variant needs (memory on/off, AEE embedding width)."""
    wants_memory = ablation != "ebm"
    if bool(memory.config.use_memory) != wants_memory:
        variant = '"w/o EBM" ablation (ablations/wo_ebm/emotion_memory/)' if ablation == "ebm" else "model"
        raise WeightsError(
            f"{bundle}: the EBM of the {variant} was trained with model.use_memory="
            f"{str(not wants_memory).lower()} but needs use_memory={str(wants_memory).lower()}; "
            "retrain that EBM and export it there"
        )
    width = int(enhancer.config.emotion_dim)
    if int(memory.config.target_emotion_dim) != width:
        raise WeightsError(
            f"{bundle}: the EBM expects {memory.config.target_emotion_dim}-d target emotions but its emotion "
            f"encoder gives {width}-d ones; train the EBM on that encoder (ebm stage `aee=` pointing at it) "
            "and export both into the same folder"
        )
