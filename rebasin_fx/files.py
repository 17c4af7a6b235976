"""Files: models as safetensors (original state_dict keys) or Hugging Face folders; permutations as JSON.

Every write goes to a temporary name in the target folder and is renamed into
place at the end, so a failure never leaves a half-written file under the
final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import tempfile
from typing import Mapping

import torch
from torch import nn

from .errors import RebasinError
from .permute import as_perms, clone_model, copy_state_into
from .spec import PermutationSpec

PERMS_FORMAT = "rebasin_fx.permutations/1"


def writable_folder(folder: pathlib.Path, what: str = "folder") -> pathlib.Path:
    """Create ``folder`` if needed; a RebasinError unless it is a writable folder."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RebasinError(f"cannot create {what} {folder}: {e.strerror}; choose a writable location") from e
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise RebasinError(f"{what} {folder} is not a writable folder; choose a writable location")
    return folder


def _parent(path: pathlib.Path) -> pathlib.Path:
    return writable_folder(path.parent)


@contextlib.contextmanager
def _atomic_file(path: pathlib.Path):
    """Yield a temporary path next to ``path``; it becomes ``path`` only if the block succeeds."""
    parent = _parent(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    try:
        yield pathlib.Path(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise RebasinError(f"could not write {path}: {e}") from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def file_state_dict(model_or_state_dict) -> dict[str, torch.Tensor]:
    """Every state_dict key as its own contiguous CPU tensor (tied weights become copies)."""
    sd = model_or_state_dict.state_dict() if isinstance(model_or_state_dict, nn.Module) else model_or_state_dict
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}


def save_model(model: nn.Module, path, spec: PermutationSpec | None = None, perms: Mapping | None = None
               ) -> pathlib.Path:
    """Save ``model``: ``*.safetensors`` (metadata ``{"format": "pt"}``), ``*.pt``/``*.pth`` (torch.save of the
    state_dict), or, for a model with ``save_pretrained`` and a path without suffix, a Hugging Face folder.
    With ``spec`` and ``perms``, the permutations are written next to it (see ``save_permutations``).

    Example:
        >>> import tempfile, pathlib, torch, rebasin_fx as rfx
        >>> net = torch.nn.Linear(3, 2)
        >>> path = rfx.save_model(net, pathlib.Path(tempfile.mkdtemp()) / "net.safetensors")
        >>> torch.equal(rfx.load_state_dict(path)["weight"], net.weight)
        True
    """
    path = pathlib.Path(path)
    if path.suffix == "" and hasattr(model, "save_pretrained"):
        parent = _parent(path)
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
        try:
            model.save_pretrained(tmp)
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        except OSError as e:
            raise RebasinError(f"could not write {path}: {e}") from e
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        perms_path = path / "permutations.json"
    elif path.suffix == ".safetensors":
        from safetensors.torch import save_file

        with _atomic_file(path) as tmp:
            save_file(file_state_dict(model), str(tmp), metadata={"format": "pt"})
        perms_path = path.with_suffix(".perms.json")
    elif path.suffix in (".pt", ".pth", ".bin"):
        with _atomic_file(path) as tmp:
            torch.save(file_state_dict(model), tmp)
        perms_path = path.with_suffix(".perms.json")
    else:
        raise RebasinError(f"unknown model file type {path.name!r}: use .safetensors, .pt or .pth (or a folder "
                           "name without suffix for a model with save_pretrained)")
    if perms is not None:
        if spec is None:
            raise RebasinError("saving permutations needs the spec they belong to: pass spec=")
        save_permutations(perms_path, spec, perms)
    return path


def load_state_dict(path) -> dict[str, torch.Tensor]:
    """Read a state_dict from ``*.safetensors`` or a torch file (``weights_only=True``)."""
    path = pathlib.Path(path)
    if not path.exists():
        raise RebasinError(f"checkpoint {path} does not exist; check the path")
    if path.is_dir():
        found = sorted(path.glob("*.safetensors"))
        if len(found) != 1:
            raise RebasinError(f"{path} is a folder with {len(found)} .safetensors files; pass one file "
                               "(sharded Hugging Face folders: load them with from_pretrained)")
        path = found[0]
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise RebasinError(f"could not read checkpoint {path}: {type(e).__name__}: {str(e)[:200]}") from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise RebasinError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    return sd


def load_into(model: nn.Module, state_dict: Mapping[str, torch.Tensor], where: str = "checkpoint") -> nn.Module:
    """A copy of ``model`` holding ``state_dict``; missing/extra keys, shapes and dtypes are checked by name."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    extra = [k for k in state_dict if k not in own]
    if missing or extra:
        raise RebasinError(f"{where} does not fit {type(model).__name__}: missing keys {missing[:5]}, unexpected "
                           f"keys {extra[:5]}; was it saved from another architecture?")
    for k, t in own.items():
        v = state_dict[k]
        if tuple(v.shape) != tuple(t.shape):
            raise RebasinError(f"{where}: {k} has shape {tuple(v.shape)}, the model expects {tuple(t.shape)}")
        if v.is_floating_point() != t.is_floating_point():
            raise RebasinError(f"{where}: {k} has dtype {v.dtype}, the model expects {t.dtype}")
    return copy_state_into(clone_model(model), state_dict)


def save_permutations(path, spec: PermutationSpec, perms: Mapping) -> pathlib.Path:
    """JSON with the spec and ``{group: permutation}``, to replay an alignment on another copy of B."""
    path = pathlib.Path(path)
    perms = as_perms(spec, perms)
    doc = {"format": PERMS_FORMAT, "spec": json.loads(spec.to_json()),
           "permutations": {g: p.tolist() for g, p in perms.items()}}
    with _atomic_file(path) as tmp:
        tmp.write_text(json.dumps(doc))
    return path


def load_permutations(path) -> tuple[PermutationSpec, dict[str, torch.Tensor]]:
    """(spec, permutations) from ``save_permutations``'s JSON; every field is checked."""
    path = pathlib.Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise RebasinError(f"permutations file {path} does not exist") from e
    except (OSError, ValueError) as e:
        raise RebasinError(f"{path} is not a permutations JSON file: {e}") from e
    if not isinstance(doc, dict) or doc.get("format") != PERMS_FORMAT:
        raise RebasinError(f"{path}: field 'format' must be {PERMS_FORMAT!r}")
    for field in ("spec", "permutations"):
        if field not in doc:
            raise RebasinError(f"{path}: field {field!r} is missing")
    spec = PermutationSpec.from_json(json.dumps(doc["spec"]))
    if not isinstance(doc["permutations"], dict):
        raise RebasinError(f"{path}: field 'permutations' must map group names to lists")
    return spec, as_perms(spec, doc["permutations"])
