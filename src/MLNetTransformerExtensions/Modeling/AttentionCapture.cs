using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Modeling;

/// <summary>
/// The inspection path behind <see cref="TransformerModel.Attentions"/>: while a capture is open on a thread,
/// <see cref="Layers.Attend"/> computes the attention weights explicitly (softmax of the scaled scores plus the mask)
/// instead of calling libtorch's fused kernel, which never materialises them, and keeps a copy of each layer's weights.
/// Training and scoring never open one, so they keep the fused kernel.
/// </summary>
internal sealed class AttentionCapture : IDisposable
{
    // Thread-static: a forward pass runs on its caller's thread, and captures on other threads must not see each other's.
    [ThreadStatic]
    private static AttentionCapture? current;

    private readonly AttentionCapture? outer;
    private readonly List<Tensor> weights = [];

    private AttentionCapture(AttentionCapture? outer) => this.outer = outer;

    /// <summary>The open capture on this thread, or null.</summary>
    public static AttentionCapture? Current => current;

    /// <summary>The captured weights, one (B, heads, T, S) tensor per attention call, in call order; the caller owns them.</summary>
    public IReadOnlyList<Tensor> Weights => weights;

    /// <summary>Opens a capture on this thread until disposed.</summary>
    /// <returns>The capture.</returns>
    public static AttentionCapture Begin() => current = new AttentionCapture(current);

    /// <summary>Keeps a copy of one call's weights, out of every dispose scope (they outlive the forward pass's scope).</summary>
    /// <param name="attention">(B, heads, T, S).</param>
    public void Add(Tensor attention) => weights.Add(attention.detach().clone().DetachFromDisposeScope());

    /// <inheritdoc/>
    public void Dispose() => current = outer;
}
