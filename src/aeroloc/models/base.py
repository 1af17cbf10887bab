"""What every similarity model offers: the embedder base class and the pair-scorer protocol.

An *embedder* maps an image to a vector; two images are compared by the
Euclidean distance ``d`` of their vectors, mapped monotonically into [0, 1]:

- L2-normalised embeddings (``d`` in [0, 2]): ``sim = 1 - d² / 4``, which equals
  ``(1 + cos θ) / 2``; identical vectors score 1, opposite ones 0.
- unnormalised embeddings (``d`` in [0, ∞)): ``sim = 1 / (1 + d / s)`` with the
  scale ``s`` = the model's loss margin, so a pair at the margin scores 0.5.

Both are strictly decreasing in ``d``, so ranking windows by similarity is
ranking them by distance.

Every embedder is split into a convolutional :meth:`Embedder.trunk` and a
:meth:`Embedder.head_from_map`. The head runs on a feature map of any size at
least one window's map and returns one embedding per window position (fully
connected layers act as convolutions whose kernel is the window's feature-map
size; pooled heads pool over each window). A dense heatmap engine computes the
trunk once on the whole area of interest and slides only the head, with a step
of :attr:`Embedder.stride_px` image pixels. Windows whose top-left corner is a
multiple of the stride see the same receptive fields as the crop would, except
that the crop's borders see zero padding where the large map sees neighbouring
image content; so dense and per-crop embeddings agree closely but not exactly.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, Protocol, Self

import torch
from torch import Tensor, nn

from aeroloc.errors import ConfigError, InvalidInputError, ModelError
from aeroloc.files import require_file

Kind = Literal["embedder", "pair_scorer"]
Preprocessing = Literal["binary", "gray"]
PREPROCESSING_MODES: tuple[str, ...] = ("binary", "gray")

CHECKPOINT_FORMAT = "aeroloc-checkpoint"

# Values outside [0, 1] by less than this are rounding noise from resampling.
_RANGE_TOLERANCE = 1e-3
#: Windows gathered per head call in :meth:`Embedder.similarity_at` (ResNet-50: 50 MB each).
_GATHER_CHUNK = 128


class TrunkSplit(NamedTuple):
    """A model's trunk as a frozen prefix and a trainable suffix (:meth:`Embedder.trunk_split`).

    Attributes:
        prefix: ``[B x C x H x W]`` image in [0, 1] → prefix feature map; no
            trainable parameter, its batch norms stay in eval mode.
        suffix: prefix map → trunk map; ``suffix(prefix(x))`` equals ``trunk(x)``.
        margin: each suffix output cell sees only prefix cells within this many cells.
    """

    prefix: Callable[[Tensor], Tensor]
    suffix: Callable[[Tensor], Tensor]
    margin: int


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """Metadata that rebuilds a model and tells callers how to feed it.

    Attributes:
        name: registry name.
        kind: ``"embedder"`` (image → vector) or ``"pair_scorer"``.
        input_size: (H, W) in pixels of one input image (one window).
        channels: channels the network itself takes (gray input is replicated).
        preprocessing: ``"binary"`` (rock = 0, rest = 1) or ``"gray"``.
        desc_dim: length D of one embedding.
        stride_px: step in input pixels between neighbouring dense-head outputs.
        loss: training loss, ``"contrastive"`` or ``"triplet"``.
        margin: margin of that loss, in embedding-distance units.
        normalized: whether embeddings are L2-normalised.
    """

    name: str
    kind: Kind
    input_size: tuple[int, int]
    channels: int
    preprocessing: Preprocessing
    desc_dim: int
    stride_px: int
    loss: Literal["contrastive", "triplet"]
    margin: float
    normalized: bool


class Embedder(nn.Module, abc.ABC):
    """Image → vector model; subclasses define the trunk, the head and a config.

    Input images are ``float`` tensors ``[B x C x H x W]`` in [0, 1], with
    ``C`` = 1 (gray or binary) or the model's own channel count.
    """

    name: ClassVar[str]
    kind: ClassVar[Kind] = "embedder"
    config_class: ClassVar[type]
    batch_windows: ClassVar[int] = 32
    """Windows per forward pass in the ``batched`` heatmap engine, when not given:
    the fastest measured on a 2-core CPU (ResNet-50 and SigNet gain up to 32)."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.spec: ModelSpec = self.spec_for(config)

    # -- to be defined by each model -------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def spec_for(cls, config: Any) -> ModelSpec:
        """The :class:`ModelSpec` of a model built with ``config``."""

    @classmethod
    @abc.abstractmethod
    def build(cls, *, weights: str | Path | None = None, **config: Any) -> Self:
        """Build the model from config keywords and load ``weights`` (None = random)."""

    # -- shared by the models -----------------------------------------------------------

    def train(self, mode: bool = True) -> Self:
        """Training mode, except batch norms whose parameters are frozen (a frozen
        trunk keeps its pretrained statistics: :func:`keep_frozen_bn_eval`)."""
        super().train(mode)
        keep_frozen_bn_eval(self)
        return self

    @classmethod
    def embedder_spec(cls, **fields: Any) -> ModelSpec:
        """A :class:`ModelSpec` of this embedder (its name and kind filled in)."""
        return ModelSpec(name=cls.name, kind="embedder", **fields)

    @classmethod
    def build_with_trunk(
        cls, weights: str | Path | None, config: Mapping[str, Any], imagenet: Callable[[], Path]
    ) -> Self:
        """Build from config keywords; load trunk ``weights``: ``"imagenet"`` (the file
        ``imagenet()`` finds), a path, or None (random trunk). The model defines
        ``load_trunk_weights(path)``."""
        model = cls(make_config(cls.name, cls.config_class, config))
        if weights is not None:
            path = imagenet() if weights == "imagenet" else Path(weights)
            model.load_trunk_weights(path)
        return model

    def load_trunk_weights(self, path: str | Path) -> None:
        """Load a trunk weights file (models with a pretrained trunk override this)."""
        raise ModelError(f"{self.name} has no pretrained trunk to load {path} into")

    @abc.abstractmethod
    def trunk(self, x: Tensor) -> Tensor:
        """Feature map of an image of any size ≥ the input size.

        Args:
            x: ``[B x C x H x W]`` float in [0, 1].

        Returns:
            ``[B x F x h x w]`` feature map; one window maps to
            :attr:`window_map_size`.
        """

    @abc.abstractmethod
    def head_from_map(self, fmap: Tensor) -> Tensor:
        """Embeddings of every window of a feature map.

        Args:
            fmap: ``[B x F x h x w]`` from :meth:`trunk`, ``h, w`` ≥ the window's map size.

        Returns:
            ``[B x D x (h - wh + 1) x (w - ww + 1)]`` with ``(wh, ww)`` =
            :attr:`window_map_size`; entry ``[:, :, i, j]`` embeds the window
            whose map starts at cell ``(i, j)``.
        """

    @property
    @abc.abstractmethod
    def window_map_size(self) -> tuple[int, int]:
        """(h, w) of the trunk's feature map for one ``input_size`` image."""

    def trunk_split(self) -> TrunkSplit | None:
        """Split :meth:`trunk` into a frozen prefix and a trainable suffix, if the model has one.

        The prefix's output on a fixed image does not change while training, so
        it can be cached. It ends at the model's full stride.

        Returns:
            The split, or None (the default) for models that train every layer
            or whose trainable part changes the stride.
        """
        return None

    # -- shared behaviour -------------------------------------------------------------

    @property
    def stride_px(self) -> int:
        """Input pixels between neighbouring dense-head outputs."""
        return self.spec.stride_px

    def config_dict(self) -> dict[str, Any]:
        """The config as plain JSON-able values (what a checkpoint records)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()}

    def check_input(self, x: Tensor, *, exact_size: bool, values: bool = True) -> Tensor:
        """Validate ``x`` and expand a 1-channel image to the model's channels.

        Args:
            x: ``[B x C x H x W]`` float in [0, 1].
            exact_size: require ``(H, W) == input_size`` (otherwise ≥).
            values: also check the value range (one pass over ``x``).

        Returns:
            ``[B x channels x H x W]``.
        """
        if not isinstance(x, Tensor) or x.ndim != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InvalidInputError(
                f"{self.spec.name}: expected an image batch [B x C x H x W], got {shape}"
            )
        if not x.is_floating_point():
            raise InvalidInputError(
                f"{self.spec.name}: expected float images in [0, 1], got dtype {x.dtype}; "
                "divide uint8 images by 255"
            )
        c, h, w = x.shape[1:]
        if c not in (1, self.spec.channels):
            raise InvalidInputError(
                f"{self.spec.name}: expected 1 or {self.spec.channels} channels, got {c}"
            )
        ih, iw = self.spec.input_size
        if (exact_size and (h, w) != (ih, iw)) or h < ih or w < iw:
            need = "exactly" if exact_size else "at least"
            raise InvalidInputError(
                f"{self.spec.name}: expected images of {need} {ih} x {iw} px (H x W), "
                f"got {h} x {w}; resize windows to the model's input size"
            )
        if values and x.numel():
            lo, hi = float(x.min()), float(x.max())
            # Written so that NaN (which compares false) fails too.
            if not (lo >= -_RANGE_TOLERANCE and hi <= 1 + _RANGE_TOLERANCE):
                raise InvalidInputError(
                    f"{self.spec.name}: expected values in [0, 1], got [{lo:.3g}, {hi:.3g}]; "
                    "scale images to [0, 1]"
                )
        if c != self.spec.channels:
            x = x.expand(-1, self.spec.channels, -1, -1)
        return x

    def embed(self, x: Tensor) -> Tensor:
        """Embed a batch of windows.

        Call ``model.eval()`` and wrap in ``torch.inference_mode()`` to score;
        in training mode gradients flow as usual.

        Args:
            x: ``[B x C x H x W]`` float in [0, 1], ``(H, W)`` = ``spec.input_size``.

        Returns:
            ``[B x D]`` embeddings.
        """
        # Shape only: the trunk checks the values.
        self.check_input(x, exact_size=True, values=False)
        out = self.head_from_map(self.trunk(x))
        return out[:, :, 0, 0]

    def embed_dense(self, x: Tensor) -> Tensor:
        """Embed every window of larger images in one pass (trunk once, head per window).

        Args:
            x: ``[B x C x H x W]`` float in [0, 1], ``H, W`` ≥ ``spec.input_size``.

        Returns:
            ``[B x D x h' x w']``; entry ``[:, :, i, j]`` embeds the window whose
            top-left pixel is ``(i, j) * stride_px``, seen with its surroundings.
        """
        return self.head_from_map(self.trunk(x))

    def similarity_map(self, anchor: Tensor, fmap: Tensor) -> Tensor:
        """Similarity ``[h' x w']`` of one embedding ``[D]`` to every window of a trunk map.

        Args:
            anchor: ``[D]`` embedding (usually the photo's).
            fmap: ``[1 x F x h x w]`` from :meth:`trunk`.

        Models whose windows have long embeddings override this with a
        cheaper equivalent; the result must equal this default.
        """
        desc = self.head_from_map(fmap)[0]  # [D x h' x w']
        return self.similarity(anchor, desc.movedim(0, -1))

    def for_inference(self) -> Embedder:
        """The model to score with: same outputs (up to float rounding), faster.

        Weights go to channels-last layout, which makes the CPU convolutions
        1.3–1.4× faster (measured on both trunks); the default does that in
        place (a layout change only) and returns ``self``. Models whose batch
        norms can be folded into the preceding convolutions return a folded
        copy instead (ResNet-50: a further 1.2–1.3×), leaving ``self`` as it
        is. Call on a model in eval mode.
        """
        return self.to(memory_format=torch.channels_last)

    def similarity_at(self, anchor: Tensor, fmap: Tensor, cells: Tensor) -> Tensor:
        """Similarity ``[N]`` of one embedding ``[D]`` to the windows starting at ``cells``.

        Args:
            anchor: ``[D]`` embedding (usually the photo's).
            fmap: ``[1 x F x h x w]`` from :meth:`trunk`.
            cells: ``[N x 2]`` integer (row, col) of each window's first map
                cell, within ``[0, h - wh] x [0, w - ww]``.

        Equal to ``similarity_map(anchor, fmap)[rows, cols]``, but the head
        runs only on the windows asked for. A heatmap's windows (a quarter
        window apart) are sparser than the trunk's cells, so for a heavy head
        (ResNet-50's 100,352 → 512 layer) this is several times cheaper than
        the full map. Models with a cheap :meth:`similarity_map` override it.
        """
        wh, ww = self.window_map_size
        out = [anchor.new_zeros(0)]
        for start in range(0, len(cells), _GATHER_CHUNK):
            chunk = cells[start : start + _GATHER_CHUNK]
            windows = torch.stack([fmap[0, :, i : i + wh, j : j + ww] for i, j in chunk.tolist()])
            out.append(self.similarity(anchor, self.head_from_map(windows)[:, :, 0, 0]))
        return torch.cat(out)

    def forward(self, x: Tensor) -> Tensor:
        """Same as :meth:`embed`."""
        return self.embed(x)

    def distance(self, a: Tensor, b: Tensor) -> Tensor:
        """Euclidean distance of embeddings ``[... x D]`` (broadcast) → ``[...]``."""
        return torch.linalg.vector_norm(a - b, dim=-1)

    def similarity(self, a: Tensor, b: Tensor) -> Tensor:
        """Similarity in [0, 1] of embeddings ``[... x D]`` (broadcast) → ``[...]``.

        ``1 - d²/4`` for normalised embeddings, ``1 / (1 + d / margin)``
        otherwise (see the module docstring).
        """
        return similarity_from_distance(
            self.distance(a, b), normalized=self.spec.normalized, scale=self.spec.margin
        )

    def score(self, x: Tensor, y: Tensor) -> Tensor:
        """Similarity ``[B]`` of two image batches ``[B x C x H x W]``."""
        return self.similarity(self.embed(x), self.embed(y))

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters that training updates (frozen trunk layers excluded)."""
        return [p for p in self.parameters() if p.requires_grad]


def similarity_from_distance(d: Tensor, *, normalized: bool, scale: float = 1.0) -> Tensor:
    """Map Euclidean distances ``[...]`` monotonically into [0, 1].

    Args:
        d: distances, ≥ 0.
        normalized: the embeddings were L2-normalised (``d`` ≤ 2).
        scale: distance that maps to 0.5 for unnormalised embeddings.
    """
    if normalized:
        return (1.0 - d.square() / 4.0).clamp(0.0, 1.0)
    return 1.0 / (1.0 + d / scale)


class PairScorer(Protocol):
    """A learned metric: features once per image, a small head per pair."""

    spec: ModelSpec

    def features(self, x: Tensor) -> Tensor:
        """Features ``[B x ...]`` of images ``[B x C x H x W]`` in [0, 1]."""
        ...

    def score_features(self, fa: Tensor, fb: Tensor) -> Tensor:
        """Match probability ``[B]`` in [0, 1] of feature pairs."""
        ...


def make_config(model_name: str, config_class: type, options: Mapping[str, Any]) -> Any:
    """Instantiate ``config_class`` from keyword options, naming unknown keys."""
    fields = [f.name for f in dataclasses.fields(config_class)]
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for model {model_name!r}; "
            f"valid options: weights, {', '.join(fields)}"
        )
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    return config_class(**values)


def freeze(module: nn.Module) -> None:
    """Stop gradients into ``module``; :func:`keep_frozen_bn_eval` keeps its BN statistics."""
    for p in module.parameters():
        p.requires_grad_(False)


def keep_frozen_bn_eval(model: nn.Module) -> None:
    """Put batch-norm layers whose parameters are frozen back into eval mode.

    A frozen layer must keep normalising with its pretrained running
    statistics (as Keras does for ``trainable=False``), not with batch ones.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(
            p.requires_grad for p in m.parameters(recurse=False)
        ):
            m.eval()


def load_state_dict_checked(
    module: nn.Module, state_dict: Mapping[str, Any], *, what: str, limit: int = 5
) -> None:
    """Load ``state_dict`` strictly, raising :class:`ModelError` naming the first mismatches.

    Args:
        module: the module to fill.
        state_dict: parameter name → tensor.
        what: how the message names the weights ("weights file x.pth").
        limit: how many mismatching names to list per kind.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong_shape = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict
        and isinstance(state_dict[k], Tensor)
        and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    not_tensor = [k for k in own if k in state_dict and not isinstance(state_dict[k], Tensor)]
    problems = []
    for label, names in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("shape mismatch (file vs model)", wrong_shape),
        ("not a tensor", not_tensor),
    ):
        if names:
            more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
            problems.append(f"{label}: {', '.join(names[:limit])}{more}")
    if problems:
        raise ModelError(f"{what} does not fit {type(module).__name__}: " + "; ".join(problems))
    module.load_state_dict(state_dict, strict=True)


def torch_load(path: Path, *, what: str) -> Any:
    """``torch.load(path, weights_only=True)``, every failure one line of :class:`ModelError`.

    A file holding Python objects beyond tensors and plain containers (a pickle
    payload, which could run code) is refused; the message says so in one line
    instead of passing on torch's several lines and its advice to load the file
    unsafely.
    """
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc) or "Unsupported class" in str(exc):
            raise ModelError(
                f"{what} {path} holds Python objects besides tensors (a pickle payload), which "
                "aeroloc never loads since they can run code: give a file written by aeroloc "
                "or torch.save(state_dict)"
            ) from None
        raise ModelError(_not_torch(what, path)) from None
    except Exception:  # torch raises many types for a non-torch file
        # torch's own message advises loading with weights_only=False, which
        # would run the file's code: never pass that on.
        raise ModelError(_not_torch(what, path)) from None


def _not_torch(what: str, path: str | Path) -> str:
    return (
        f"cannot read {what} {path}: not a PyTorch file (not an aeroloc checkpoint): "
        "give a .pt file written by aeroloc train or torch.save"
    )


def read_weights_file(path: str | Path, *, what: str) -> dict[str, Tensor]:
    """Read a state dict saved with ``torch.save`` (tensors only), or raise ModelError."""
    p = require_file(path, what)
    obj = torch_load(p, what=what)
    if isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT:
        raise ModelError(
            f"{what} {p} is an aeroloc checkpoint of model {obj.get('model')!r}, not raw "
            "weights: continue it with aeroloc train --resume, or search with locate --model"
        )
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ModelError(f"{what} {p} is not a state dict (name → tensor)")
    return dict(obj)


def dense_linear(fmap: Tensor, linear: nn.Linear, window: tuple[int, int]) -> Tensor:
    """A fully connected layer over flattened windows, applied to every window of a map.

    The layer's weight ``[O x (F·wh·ww)]`` is read as a convolution kernel
    ``[O x F x wh x ww]`` (the flatten order of ``[F x wh x ww]``), so output
    ``[:, :, i, j]`` equals the layer applied to ``fmap[:, :, i:i+wh, j:j+ww]``
    flattened.

    Args:
        fmap: ``[B x F x h x w]``.
        linear: layer with ``in_features = F · wh · ww``.
        window: ``(wh, ww)``.

    Returns:
        ``[B x O x (h - wh + 1) x (w - ww + 1)]``.
    """
    f, h, w = fmap.shape[1:]
    wh, ww = window
    if f * wh * ww != linear.in_features or h < wh or w < ww:
        raise InvalidInputError(
            f"feature map {tuple(fmap.shape)} does not fit a window of {f} x {wh} x {ww} "
            f"({linear.in_features} inputs expected)"
        )
    if (h, w) == (wh, ww):
        # The plain matrix product is faster than a convolution on CPU.
        return linear(fmap.flatten(1))[:, :, None, None]
    kernel = linear.weight.view(linear.out_features, f, wh, ww)
    return nn.functional.conv2d(fmap, kernel, linear.bias)


def per_position(module: nn.Module, x: Tensor) -> Tensor:
    """Apply a layer made for ``[N x D]`` (BatchNorm1d, Dropout...) to ``[B x D x h x w]``."""
    b, d, h, w = x.shape
    if h == w == 1:
        return module(x.view(b, d)).view(b, d, 1, 1)
    y = module(x.permute(0, 2, 3, 1).reshape(-1, d))
    return y.view(b, h, w, d).permute(0, 3, 1, 2)
