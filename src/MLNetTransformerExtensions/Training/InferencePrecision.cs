using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training;

/// <summary>The number format a classifier scores in. Training (validation included) always runs in float32.</summary>
public enum InferencePrecision
{
    /// <summary>float32: the weights exactly as trained and saved.</summary>
    Float32,

    /// <summary>
    /// bfloat16 weights and activations for the forward pass, with the logits turned back into float32 before the
    /// softmax. The bfloat16 weights are a copy (half the float32 size) made on first use; the float32 weights are
    /// never changed, so saving writes the same bytes. Several times faster on CPUs with bfloat16 matrix instructions
    /// (AVX-512 BF16, AMX); on others libtorch emulates them and it can be slower than float32. Probabilities move by
    /// about 10⁻² (bfloat16 keeps 8 significant bits), so a row whose classes are nearly tied can change its prediction.
    /// </summary>
    BFloat16,
}

/// <summary>
/// The model a classifier scores with: the float32 model itself, or a bfloat16 copy of it, made on first use and kept
/// until the float32 weights change (<see cref="Discard"/>) or float32 is chosen again. The copy shares no storage with
/// the float32 model, so bfloat16 scoring cannot alter what is trained or saved.
/// </summary>
/// <typeparam name="TModel">The model type.</typeparam>
/// <param name="weights">The float32 model, which the caller owns.</param>
/// <param name="create">Builds an empty model of the same architecture from a config.</param>
internal sealed class InferenceModel<TModel>(TModel weights, Func<TransformerConfig, TModel> create) : IDisposable
    where TModel : TransformerModel
{
    private TModel? _bfloat16;
    private InferencePrecision _precision;

    /// <summary>The precision the classifier scores in; choosing float32 frees the bfloat16 copy.</summary>
    public InferencePrecision Precision
    {
        get => _precision;
        set
        {
            if (!Enum.IsDefined(value))
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, $"The inference precision must be {nameof(InferencePrecision.Float32)} or {nameof(InferencePrecision.BFloat16)}.");
            }

            _precision = value;
            if (value == InferencePrecision.Float32)
            {
                Discard();
            }
        }
    }

    /// <summary>Whether a bfloat16 copy is alive (for tests).</summary>
    internal bool HasCopy => _bfloat16 is not null;

    /// <summary>The model to score with at <paramref name="precision"/>, in evaluation mode.</summary>
    public TModel ForScoring(InferencePrecision precision)
    {
        if (precision == InferencePrecision.Float32)
        {
            weights.eval();
            return weights;
        }

        return _bfloat16 ??= CopyAs(ScalarType.BFloat16);
    }

    /// <summary>Drops the bfloat16 copy, because the float32 weights are about to change or just did; the next bfloat16 use copies them again.</summary>
    public void Discard()
    {
        _bfloat16?.Dispose();
        _bfloat16 = null;
    }

    /// <summary>Frees the bfloat16 copy (the float32 model belongs to the caller).</summary>
    public void Dispose() => Discard();

    private TModel CopyAs(ScalarType dtype)
    {
        TorchRuntime.EnsureInitialized();

        // Building the model draws its (soon overwritten) initial weights from the global generator: put its state back,
        // so that scoring in bfloat16 does not change what a seeded run draws next (dropout, shuffles of later training).
        using var rngState = get_rng_state();
        var copy = create(weights.Config);
        set_rng_state(rngState);
        try
        {
            // Module.to converts the parameters in place, so tied weights (an LM head sharing the embeddings) stay tied.
            copy.to(dtype);
            copy.eval();
            using var _ = no_grad();
            var targets = copy.state_dict();
            foreach (var (name, source) in weights.state_dict())
            {
                targets[name].copy_(source);
            }

            foreach (var parameter in copy.parameters())
            {
                parameter.requires_grad = false;
            }

            return copy;
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }
}
