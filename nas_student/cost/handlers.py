"""fvcore op handlers: exact MAC counts for the ops we price, element counts for the rest.

Every handler returns a ``Counter`` whose keys are prefixed ``mac:`` (multiply-accumulates,
summed into ``Cost.macs``) or ``other:`` (output elements of a non-MAC op, reported in
``Cost.other_ops``). One fused multiply-add is one MAC; biases and the ``+`` of residual
adds are never MACs (the fvcore/torchvision convention).

fvcore's own matmul/einsum/conv handlers are replaced, not extended: its matmul crashes on
a matrix-vector product and undercounts when the *second* operand carries the broadcast
batch; its conv handler does not know ``aten::_convolution_mode`` (``padding="same"``); its
einsum allocates ``np.zeros`` of every operand and halves element-wise products.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable

Handle = Callable[[list[Any], list[Any]], Counter]


class ShapeUnknown(Exception):
    """A traced value had no complete tensor shape; profile() turns this into CostError."""


def shape(val: Any) -> list[int]:
    """Static shape of a traced ``torch._C.Value`` (raises ShapeUnknown if not a full tensor)."""
    if val.isCompleteTensor():
        return list(val.type().sizes())
    raise ShapeUnknown(f"value {val.debugName()} has no static shape")


def numel(val: Any) -> int:
    return math.prod(shape(val))


def _list_items(val: Any) -> list[Any]:
    """The element values of a traced ``Tensor[]`` argument built by ``prim::ListConstruct``."""
    node = val.node()
    if node.kind() != "prim::ListConstruct":
        raise ShapeUnknown(f"tensor list {val.debugName()} is not a literal list")
    return list(node.inputs())


def _mac(op: str, n: int) -> Counter:
    return Counter({f"mac:{op}": int(n)})


# --- matrix products ---------------------------------------------------------------------


def _contract(op: str, a_index: int) -> Handle:
    """numel(output) * K, where K is the contracted (last) dim of input ``a_index``.

    Exact for linear (any leading dims), matmul (1-D and broadcast operands), mm, bmm,
    addmm, baddbmm, mv, addmv and dot: every output element is one K-long dot product.
    """

    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        return _mac(op, numel(outputs[0]) * shape(inputs[a_index])[-1])

    return handle


def _addbmm(inputs: list[Any], outputs: list[Any]) -> Counter:
    # addbmm sums the batch of products into one matrix: B*N*K*M = numel(b1) * M.
    return _mac("addbmm", numel(inputs[1]) * shape(inputs[2])[-1])


def _conv(op: str, transposed_index: int | None) -> Handle:
    """Conv MACs = batch * numel(weight) * spatial, fvcore's formula (groups are in the weight).

    Spatial is the output's for a normal conv and the input's for a transposed conv.
    ``transposed_index`` is the argument holding the ``transposed`` flag, None if the op
    is never transposed, or -1 if it always is.
    """

    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        x, w, out = shape(inputs[0]), shape(inputs[1]), shape(outputs[0])
        if transposed_index is None:
            transposed = False
        elif transposed_index == -1:
            transposed = True
        else:
            transposed = bool(inputs[transposed_index].toIValue())
        batched = len(x) == len(w)  # conv2d also accepts unbatched (C, H, W) input
        batch = x[0] if batched else 1
        spatial = (x if transposed else out)[2 if batched else 1 :]
        return _mac("conv", batch * math.prod(w) * math.prod(spatial))

    return handle


def _einsum(inputs: list[Any], outputs: list[Any]) -> Counter:
    """Pairwise left-to-right contraction (torch's order without opt_einsum).

    Each pairwise step costs the product of the sizes of all indices of both operands;
    a one-operand einsum (transpose, trace, sum) costs 0 MACs.
    """
    equation = str(inputs[0].toIValue()).replace(" ", "")
    shapes = [shape(v) for v in _list_items(inputs[1])]
    lhs, _, rhs = equation.partition("->")
    terms = lhs.split(",")
    n_ell = max((len(s) - len(t.replace("...", "")) for t, s in zip(terms, shapes)), default=0)
    ell = [chr(0x100 + i) for i in range(n_ell)]  # stand-in letters for "..." dims
    expanded: list[list[str]] = []
    sizes: dict[str, int] = {}
    for term, shp in zip(terms, shapes):
        head, dots, tail = term.partition("...")
        k = len(shp) - len(head) - len(tail) if dots else 0
        letters = list(head) + (ell[n_ell - k :] if k else []) + list(tail)
        for letter, size in zip(letters, shp):
            sizes[letter] = max(sizes.get(letter, 1), size)
        expanded.append(letters)
    if rhs or "->" in equation:
        out = set(rhs.replace("...", "")) | set(ell)
    else:
        out = {c for c in lhs if c.isalpha() and lhs.count(c) == 1} | set(ell)
    total, current = 0, set(expanded[0])
    for i in range(1, len(expanded)):
        union = current | set(expanded[i])
        total += math.prod(sizes[c] for c in union)
        later = set().union(*expanded[i + 1 :]) if i + 1 < len(expanded) else set()
        current = {c for c in union if c in out or c in later}
    return _mac("einsum", total)


# --- recurrent nets -----------------------------------------------------------------------


def _rnn(op: str) -> Handle:
    """tokens * sum(numel of every 2-D weight): per step, layer and direction, each gate
    does input*hidden + hidden*hidden (hidden = proj_size for w_hh when projecting), plus
    hidden*proj_size for LSTM's ``w_hr``. tokens = seq_len * batch for padded input or the
    packed length for a PackedSequence (overload ``.data``).
    """

    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        packed = inputs[1].type().kind() == "TensorType" and inputs[1].type().scalarType() == "Long"
        params = _list_items(inputs[3] if packed else inputs[2])
        x = shape(inputs[0])
        tokens = math.prod(x[:-1])
        weights = sum(numel(p) for p in params if len(shape(p)) == 2)
        return _mac(op, tokens * weights)

    return handle


# --- attention ---------------------------------------------------------------------------


def _sdpa(inputs: list[Any], outputs: list[Any]) -> Counter:
    """QK^T + AV: batch * L * S * (E + Ev), the full score matrix even when causal."""
    q, k, out = shape(inputs[0]), shape(inputs[1]), shape(outputs[0])
    batch, length, e = math.prod(out[:-2]), q[-2], q[-1]
    return _mac("scaled_dot_product_attention", batch * length * k[-2] * (e + out[-1]))


def _native_mha(inputs: list[Any], outputs: list[Any]) -> Counter:
    """aten::_native_multi_head_attention(q, k, v, embed_dim, num_head, qkv_w, qkv_b,
    proj_w, proj_b, ...): q/k/v projections (one E*E block each), QK^T, AV, out projection.
    Equals the unfused path: linear(s) + bmm/sdpa + linear."""
    q, k = shape(inputs[0]), shape(inputs[1])
    e = int(inputs[3].toIValue())
    tokens_q, length_k = math.prod(q[:-1]), k[-2]
    proj = (numel(inputs[0]) + numel(inputs[1]) + numel(inputs[2])) * e + tokens_q * e * e
    attn = 2 * tokens_q * length_k * e
    return Counter({"mac:linear": proj, "mac:attention": attn})


def _encoder_layer(inputs: list[Any], outputs: list[Any]) -> Counter:
    """aten::_transformer_encoder_layer_fwd: tokens * (qkv + out + ffn1 + ffn2 weights)
    plus QK^T and AV (2 * B * L * L * E). Its norms/activation/adds go to other_ops."""
    x = shape(inputs[0])
    e, tokens = x[-1], math.prod(x[:-1])
    weights = sum(numel(inputs[i]) for i in (3, 5, 14, 16))
    return Counter(
        {
            "mac:linear": tokens * weights,
            "mac:attention": 2 * tokens * x[-2] * e,
            "other:layer_norm": 2 * tokens * e,
        }
    )


# --- everything that is not a MAC ---------------------------------------------------------


def _other(name: str) -> Handle:
    def handle(inputs: list[Any], outputs: list[Any]) -> Counter:
        val = outputs[0] if outputs and outputs[0].isCompleteTensor() else inputs[0]
        return Counter({f"other:{name}": numel(val) if val.isCompleteTensor() else 0})

    return handle


MAC_HANDLES: dict[str, Handle] = {
    "aten::linear": _contract("linear", 0),
    "aten::matmul": _contract("matmul", 0),
    "aten::mm": _contract("mm", 0),
    "aten::bmm": _contract("bmm", 0),
    "aten::mv": _contract("mv", 0),
    "aten::dot": _contract("dot", 0),
    "aten::addmm": _contract("addmm", 1),
    "aten::baddbmm": _contract("baddbmm", 1),
    "aten::addmv": _contract("addmv", 1),
    "aten::addbmm": _addbmm,
    "aten::einsum": _einsum,
    "aten::_convolution": _conv("conv", 6),
    "aten::convolution": _conv("conv", 6),
    "aten::_convolution_mode": _conv("conv", None),
    "aten::conv1d": _conv("conv", None),
    "aten::conv2d": _conv("conv", None),
    "aten::conv3d": _conv("conv", None),
    "aten::conv_transpose1d": _conv("conv", -1),
    "aten::conv_transpose2d": _conv("conv", -1),
    "aten::conv_transpose3d": _conv("conv", -1),
    "aten::lstm": _rnn("lstm"),
    "aten::gru": _rnn("gru"),
    "aten::rnn_tanh": _rnn("rnn"),
    "aten::rnn_relu": _rnn("rnn"),
    "aten::scaled_dot_product_attention": _sdpa,
    "aten::_native_multi_head_attention": _native_mha,
    "aten::_transformer_encoder_layer_fwd": _encoder_layer,
}

# Non-MAC compute: reported in other_ops as output elements (in-place ``x_`` variants too).
OTHER_OPS: tuple[str, ...] = (
    *"batch_norm layer_norm group_norm instance_norm rms_norm native_layer_norm".split(),
    *"linalg_vector_norm norm frobenius_norm renorm embedding_bag".split(),
    *"relu relu6 leaky_relu elu selu celu gelu silu mish sigmoid tanh hardtanh hardswish".split(),
    *"hardsigmoid softplus softsign softshrink hardshrink tanhshrink prelu glu".split(),
    *"log_sigmoid threshold logit softmax log_softmax _softmax _log_softmax".split(),
    *"max_pool1d max_pool2d max_pool3d max_pool1d_with_indices max_pool2d_with_indices".split(),
    *"max_pool3d_with_indices avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d".split(),
    *"adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d".split(),
    *"adaptive_max_pool3d upsample_nearest1d upsample_nearest2d upsample_nearest3d".split(),
    *"_upsample_nearest_exact1d _upsample_nearest_exact2d _upsample_nearest_exact3d".split(),
    *"upsample_linear1d upsample_bilinear2d upsample_bicubic2d upsample_trilinear3d".split(),
    *"grid_sampler affine_grid_generator".split(),
    *"add sub rsub mul div true_divide floor_divide remainder fmod pow maximum minimum".split(),
    *"fmax fmin atan2 hypot lerp addcmul addcdiv where clamp clamp_min clamp_max clip".split(),
    *"masked_fill square abs neg exp exp2 expm1 log log2 log10 log1p sqrt rsqrt".split(),
    *"reciprocal sin cos tan asin acos atan sinh cosh erf erfc erfinv sign sgn floor".split(),
    *"ceil round trunc frac nan_to_num lt le gt ge eq ne logical_and logical_or".split(),
    *"logical_xor logical_not bitwise_and bitwise_or bitwise_xor bitwise_not __and__".split(),
    *"__or__ isnan isinf isfinite sum mean prod amax amin max min argmax argmin std".split(),
    *"var std_mean var_mean logsumexp cumsum cumprod all any count_nonzero topk sort".split(),
    *"argsort kthvalue median cross_entropy_loss nll_loss nll_loss_nd mse_loss l1_loss".split(),
    *"smooth_l1_loss huber_loss kl_div binary_cross_entropy_with_logits".split(),
)

# Zero-cost ops: shape, view, copy, indexing, creation, lookup (embedding is 0 MACs).
FREE_OPS: tuple[str, ...] = (
    *"view reshape _reshape_alias _unsafe_view flatten unflatten squeeze unsqueeze".split(),
    *"permute transpose t numpy_T contiguous clone detach expand expand_as view_as".split(),
    *"reshape_as repeat repeat_interleave tile cat concat concatenate stack hstack".split(),
    *"vstack split split_with_sizes unsafe_split chunk unsafe_chunk tensor_split unbind".split(),
    *"narrow slice select index index_select gather scatter scatter_add index_put".split(),
    *"index_add index_copy masked_select masked_scatter take embedding flip roll rot90".split(),
    *"pad constant_pad_nd reflection_pad1d reflection_pad2d reflection_pad3d".split(),
    *"replication_pad1d replication_pad2d replication_pad3d zeros zeros_like ones".split(),
    *"ones_like full full_like empty empty_like new_empty new_zeros new_ones new_full".split(),
    *"arange linspace rand randn rand_like randn_like randint bernoulli tril triu".split(),
    *"diag diagonal to type_as copy fill zero size numel dim Int Float Bool".split(),
    *"ScalarImplicit item lift_fresh alias real imag view_as_real view_as_complex".split(),
    *"pixel_shuffle pixel_unshuffle channel_shuffle one_hot _pack_padded_sequence".split(),
    *"_pad_packed_sequence dropout feature_dropout alpha_dropout feature_alpha_dropout".split(),
    *"native_dropout meshgrid broadcast_tensors movedim moveaxis swapaxes swapdims".split(),
    *"unfold im2col col2im as_strided resolve_conj resolve_neg requires_grad".split(),
    *"_shape_as_tensor len __getitem__ is_nonzero _assert_async nonzero".split(),
)


def build_handles() -> tuple[dict[str, Handle], list[str]]:
    """All handles for ``FlopCountAnalysis.set_op_handle`` and the op names to ignore."""
    handles: dict[str, Handle] = dict(MAC_HANDLES)
    for name in OTHER_OPS:
        for variant in (name, name + "_"):
            handles.setdefault(f"aten::{variant}", _other(name))
    ignored = [f"aten::{v}" for n in FREE_OPS for v in (n, n + "_")]
    return handles, [op for op in ignored if op not in handles]
